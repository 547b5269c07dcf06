using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BertSharp.Training.FineTuning;

namespace BertSharp.Cli;

/// <summary><c>bert eval</c>: a fine-tuned model's task metrics on a labelled file. Logic in <see cref="FineTuner.Evaluate"/>.</summary>
public static class EvalCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "Fine-tuned model directory", HelpName = "DIR", Required = true };
        var task = new Option<string>("--task") { Description = "Task name", HelpName = "NAME", Required = true };
        var data = new Option<string>("--data") { Description = "Labelled file of the task", HelpName = "FILE", Required = true };
        var maxLength = new Option<int>("--max-length") { Description = "Tokens per window (default 128)", DefaultValueFactory = _ => 128 };
        var json = new Option<bool>("--json") { Description = "Print one JSON object" };
        var cmd = new Command("eval", "Score a fine-tuned model on a task file with the task's metrics") { model, task, data, maxLength, json };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var scores = FineTuner.Evaluate(parse.GetValue(model)!, parse.GetValue(task)!, parse.GetValue(data)!, parse.GetValue(maxLength));
            if (parse.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(scores, Cli.Json));
            else foreach (var (k, v) in scores) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{k}\t{v:0.0000}"));
            return 0;
        }));
        return cmd;
    }
}
