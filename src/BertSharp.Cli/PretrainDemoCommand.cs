using System.CommandLine;

namespace BertSharp.Cli;

/// <summary><c>bert pretrain-demo</c>: the picoBERT demo (mask, predict, score; plus NSP for a pair).</summary>
static class PretrainDemoCommand
{
    public static Command Create()
    {
        var m = new ModelOptions();
        var a = new Option<string>("--text-a") { Description = "First sentence", Required = true };
        var b = new Option<string?>("--text-b") { Description = "Optional second sentence (enables NSP)" };
        var prob = new Option<double>("--mask-prob") { Description = "Fraction of tokens to mask", DefaultValueFactory = _ => 0.15 };
        var seed = new Option<int>("--seed") { Description = "Random seed for choosing positions", DefaultValueFactory = _ => 123 };
        var cmd = new Command("pretrain-demo", "Mask random tokens of a text (pair), predict them with the MLM head and score NSP");
        cmd.Options.Add(a);
        cmd.Options.Add(b);
        cmd.Options.Add(prob);
        cmd.Options.Add(seed);
        m.AddTo(cmd);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            using var pipeline = m.LoadPipeline(parse);
            var r = pipeline.PretrainDemo(parse.GetValue(a)!, parse.GetValue(b), parse.GetValue(prob), parse.GetValue(seed));
            if (parse.GetValue(m.Json))
            {
                Cli.WriteJson(new
                {
                    masked_tokens = r.MaskedTokens,
                    positions = r.Positions.Select(p => new { position = p.Position, actual = p.Actual, predicted = p.Predicted }),
                    mlm_correct = r.Correct,
                    mlm_total = r.Positions.Count,
                    mlm_accuracy = r.MlmAccuracy,
                    is_next_sentence = r.NextSentence is null ? (bool?)null : r.NextSentence.IsNextProbability >= 0.5,
                    is_next_probability = r.NextSentence?.IsNextProbability,
                });
                return 0;
            }
            Console.WriteLine(string.Join(" ", r.MaskedTokens));
            foreach (var p in r.Positions) Console.WriteLine($"position {p.Position}: actual: {p.Actual} / pred: {p.Predicted}");
            Console.WriteLine($"mlm_accuracy = {r.Correct}/{r.Positions.Count} = {r.MlmAccuracy:0.####}");
            if (r.NextSentence is { } nsp) Console.WriteLine($"is_next_sentence = {(nsp.IsNextProbability >= 0.5 ? "True" : "False")}");
            return 0;
        }));
        return cmd;
    }
}
