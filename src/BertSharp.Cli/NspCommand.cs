using System.CommandLine;

namespace BertSharp.Cli;

/// <summary><c>bert nsp</c>: probability that text B follows text A.</summary>
static class NspCommand
{
    public static Command Create()
    {
        var m = new ModelOptions();
        var a = new Option<string>("--text-a") { Description = "First sentence", Required = true };
        var b = new Option<string>("--text-b") { Description = "Second sentence", Required = true };
        var cmd = new Command("nsp", "Next-sentence prediction: does text B follow text A?");
        cmd.Options.Add(a);
        cmd.Options.Add(b);
        m.AddTo(cmd);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            using var pipeline = m.LoadPipeline(parse);
            var r = pipeline.NextSentence(parse.GetValue(a)!, parse.GetValue(b)!);
            if (parse.GetValue(m.Json)) Cli.WriteJson(new { is_next_probability = r.IsNextProbability, logits = r.Logits });
            else Console.WriteLine($"is_next_probability = {r.IsNextProbability:F4} (logits [{r.Logits[0]:F4}, {r.Logits[1]:F4}])");
            return 0;
        }));
        return cmd;
    }
}
