using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using BertSharp.Inference;
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
        var split = new Option<bool>("--split-by-article") { Description = "squad: score the eval side of the article split `finetune --split-by-article` made" };
        var fraction = new Option<double>("--split-eval-fraction") { Description = "squad: the split's eval fraction (default 0.2)", DefaultValueFactory = _ => 0.2 };
        var windows = new Option<int?>("--stride") { Description = "Text classification/regression: split inputs longer than --max-length into windows overlapping by S tokens and average their logits (default: cut them)", HelpName = "S" };
        var stride = new Option<int?>("--doc-stride") { Description = "squad: window overlap in tokens (default max-length / 3)" };
        var answer = new Option<int>("--max-answer-length") { Description = "squad: longest answer in tokens (default 30)", DefaultValueFactory = _ => 30 };
        var text = new Option<string>("--text-column") { Description = "csv: text column (default text)", DefaultValueFactory = _ => "text" };
        var pair = new Option<string?>("--text-pair-column") { Description = "csv: second text column" };
        var label = new Option<string>("--label-column") { Description = "csv: label column (default label)", DefaultValueFactory = _ => "label" };
        var threads = new Option<int?>("--threads") { Description = "Intra-op threads (default: all cores)" };
        var cmd = new Command("eval", "Score a fine-tuned model on a task file with the task's metrics")
            { model, task, data, maxLength, windows, json, split, fraction, stride, answer, text, pair, label, threads };
        var engine = new ModelOptions();
        engine.AddEngineTo(cmd);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            Runtime.SetThreads(parse.GetValue(threads));
            var options = new FineTuneTaskConfig
            {
                Task = parse.GetValue(task)!, Model = parse.GetValue(model)!, Train = parse.GetValue(data)!, MaxLength = parse.GetValue(maxLength),
                SplitByArticle = parse.GetValue(split), SplitEvalFraction = parse.GetValue(fraction), DocStride = parse.GetValue(stride), Stride = parse.GetValue(windows),
                MaxAnswerLength = parse.GetValue(answer), TextColumn = parse.GetValue(text)!, TextPairColumn = parse.GetValue(pair),
                LabelColumn = parse.GetValue(label)!,
            };
            options.Validate();
            var scores = FineTuner.Evaluate(options.Model, options.Task, options.Train, options.MaxLength, options: options,
                log: m => Console.Error.WriteLine("bert: note: " + m), engine: engine.ParseEngine(parse), quantize: engine.ParseQuantization(parse));
            if (parse.GetValue(json)) Console.WriteLine(JsonSerializer.Serialize(scores, Cli.Json));
            else foreach (var (k, v) in scores) Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{k}\t{v:0.0000}"));
            return 0;
        }));
        return cmd;
    }
}
