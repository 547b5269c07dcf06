using System.Text.Json;
using BertSharp.Tests.Golden;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Cli;

public class InferenceCliTests
{
    static string Model => TestAssets.Path(TestAssets.TinyRandom);

    [AssetFact(TestAssets.TinyRandom)]
    public void FillMaskJsonMatchesGoldenTop5()
    {
        var (exit, stdout, stderr) = CliHarness.Run("fill-mask", "--model", Model, "The capital of France is [MASK].", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var mask = Assert.Single(doc.RootElement.GetProperty("masks").EnumerateArray());
        Assert.Equal(6, mask.GetProperty("position").GetInt32());
        var preds = mask.GetProperty("predictions").EnumerateArray().ToList();
        Assert.Equal(5, preds.Count);
        // HF's top-5 for this input (golden manifest, case single_mask).
        Assert.Equal(new[] { 19926, 17270, 1655, 5981, 25039 }, preds.Select(p => p.GetProperty("id").GetInt32()));
        Assert.Equal("horseback", preds[0].GetProperty("token").GetString());
        var scores = preds.Select(p => p.GetProperty("score").GetDouble()).ToList();
        Assert.All(scores, s => Assert.InRange(s, 0, 1));
        Assert.Equal(scores.OrderByDescending(s => s), scores);
        // The scores are HF's pipeline scores: softmax over the vocabulary of HF's logits at the mask (raw logits,
        // a softmax over the top 5 only, or a log-softmax would all fail here).
        var expected = GoldenSoftmaxAtMask("single_mask", preds.Select(p => p.GetProperty("id").GetInt32()).ToArray());
        for (var i = 0; i < 5; i++) Assert.True(Math.Abs(scores[i] - expected[i]) <= 1e-6 + 1e-4 * expected[i], $"rank {i}: {scores[i]} vs HF {expected[i]}");
    }

    /// <summary>softmax(HF's MLM logits at the case's first mask)[ids].</summary>
    static double[] GoldenSoftmaxAtMask(string caseName, int[] ids)
    {
        using var logits = GoldenCase.Get(caseName).Load("mlm_logits_at_masked");
        using var probs = logits[0].to_type(ScalarType.Float64).softmax(0);
        return ids.Select(i => probs[i].item<double>()).ToArray();
    }

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData("pair_is_next_masked")]
    [InlineData("pair_not_next")]
    public void NspJsonIsSoftmaxOfGoldenLogits(string caseName)
    {
        var golden = GoldenCase.Get(caseName);
        var (a, b) = golden.Items[0];
        var (exit, stdout, stderr) = CliHarness.Run("nsp", "--model", Model, "--text-a", a, "--text-b", b!, "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var logits = doc.RootElement.GetProperty("logits").EnumerateArray().Select(e => e.GetDouble()).ToArray();
        double p = doc.RootElement.GetProperty("is_next_probability").GetDouble();
        // Against HF's logits for this pair, not the CLI's own.
        using var hf = golden.Load("nsp_logits");
        var expected = hf[0].data<float>().ToArray();
        Assert.Equal(2, logits.Length);
        Assert.True(Math.Abs(logits[0] - expected[0]) <= 1e-4 && Math.Abs(logits[1] - expected[1]) <= 1e-4,
            $"logits [{logits[0]}, {logits[1]}] vs HF [{expected[0]}, {expected[1]}]");
        Assert.Equal(1 / (1 + Math.Exp(expected[1] - (double)expected[0])), p, 5);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void PretrainDemoPrintsPicoBertLines()
    {
        var (exit, stdout, stderr) = CliHarness.Run("pretrain-demo", "--model", Model, "--text-a", "the man went to the store to buy some milk",
            "--text-b", "he bought a gallon of milk and some bread", "--seed", "123", "--verbose");
        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Contains("[MASK]", lines[0]);
        Assert.Matches(@"^mlm_accuracy = (\d+)/(\d+) = [0-9.]+$", lines[^2]);
        Assert.Matches(@"^is_next_sentence = (True|False)$", lines[^1]);
        // 21 tokens → floor(21 × 0.15) = 3 picks, minus any that hit [CLS]/[SEP].
        int shown = lines.Count(l => l.Contains("actual: "));
        var m = System.Text.RegularExpressions.Regex.Match(lines[^2], @"= (\d+)/(\d+) =");
        Assert.Equal(shown, int.Parse(m.Groups[2].Value));
        Assert.InRange(shown, 1, 3);
        // Same seed, same output; the JSON form agrees.
        var again = CliHarness.Run("pretrain-demo", "--model", Model, "--text-a", "the man went to the store to buy some milk",
            "--text-b", "he bought a gallon of milk and some bread", "--seed", "123", "--verbose");
        Assert.Equal(stdout, again.Out);
        var json = CliHarness.Run("pretrain-demo", "--model", Model, "--text-a", "the man went to the store to buy some milk",
            "--text-b", "he bought a gallon of milk and some bread", "--seed", "123", "--json");
        Assert.True(json.Exit == 0, json.Err);
        using var doc = JsonDocument.Parse(json.Out);
        var root = doc.RootElement;
        Assert.Equal(lines[0], string.Join(" ", root.GetProperty("masked_tokens").EnumerateArray().Select(t => t.GetString())));
        var textPositions = lines.Where(l => l.Contains("actual: ")).ToList();
        var jsonPositions = root.GetProperty("positions").EnumerateArray()
            .Select(x => $"position {x.GetProperty("position").GetInt32()}: actual: {x.GetProperty("actual").GetString()} / pred: {x.GetProperty("predicted").GetString()}").ToList();
        Assert.Equal(textPositions, jsonPositions);
        Assert.Equal(int.Parse(m.Groups[1].Value), root.GetProperty("mlm_correct").GetInt32());
        Assert.Equal(shown, root.GetProperty("mlm_total").GetInt32());
        Assert.Equal(lines[^1] == "is_next_sentence = True", root.GetProperty("is_next_sentence").GetBoolean());
        Assert.Equal(root.GetProperty("is_next_sentence").GetBoolean(), root.GetProperty("is_next_probability").GetDouble() >= 0.5);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void InfoReportsHuggingFaceParameterCounts()
    {
        var (exit, stdout, stderr) = CliHarness.Run("info", "--preset", "base", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var p = doc.RootElement.GetProperty("parameters");
        Assert.Equal(109_482_240, p.GetProperty("BertModel").GetInt64());
        Assert.Equal(109_514_298, p.GetProperty("BertForMaskedLM").GetInt64());
        Assert.Equal(110_106_428, p.GetProperty("BertForPreTraining").GetInt64());
        Assert.Equal(768, doc.RootElement.GetProperty("config").GetProperty("hidden_size").GetInt32());
        var (exit2, stdout2, _) = CliHarness.Run("info", "--model", Model, "--json");
        Assert.Equal(0, exit2);
        Assert.Equal(128, JsonDocument.Parse(stdout2).RootElement.GetProperty("config").GetProperty("hidden_size").GetInt32());
    }

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData("no [MASK] token", "fill-mask", "--MODEL", "the text has nothing to predict")]
    [InlineData("model directory not found", "fill-mask", "--model", "/nonexistent/model", "a [MASK]")]
    [InlineData("--dtype 'float16' is not supported", "fill-mask", "--MODEL", "a [MASK]", "--dtype", "float16")]
    [InlineData("--device 'tpu' is not supported", "nsp", "--MODEL", "--text-a", "a", "--text-b", "b", "--device", "tpu")]
    [InlineData("at most 512", "fill-mask", "--MODEL", "LONG")]
    [InlineData("exactly one of --model DIR or --preset NAME", "info")]
    [InlineData("unknown preset 'huge'", "info", "--preset", "huge")]
    public void BadInputIsOneClearLineAndNonZeroExit(string expected, params string[] args)
    {
        args = args.SelectMany(a => a == "--MODEL" ? new[] { "--model", Model } : a == "LONG" ? new[] { string.Join(" ", Enumerable.Repeat("word", 600)) + " [MASK]" } : new[] { a }).ToArray();
        var (exit, stdout, stderr) = CliHarness.Run(args);
        Assert.NotEqual(0, exit);
        Assert.Contains(expected, stderr);
        Assert.DoesNotContain("   at ", stderr);     // no stack trace without --verbose
        Assert.Equal("", stdout.Trim());
    }
}

public class CliTreeTests
{
    [Fact]
    public void EveryVerbIsRegisteredAndHasHelp()
    {
        var names = BertSharp.Cli.BertCli.Build().Subcommands.Select(c => c.Name).ToHashSet();
        foreach (var verb in new[] { "info", "fill-mask", "nsp", "pretrain-demo", "tokenize", "vocab" })
        {
            Assert.Contains(verb, names);
            var (exit, stdout, _) = CliHarness.Run(verb, "--help");
            Assert.Equal(0, exit);
            Assert.Contains("Usage:", stdout);
        }
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void FillMaskTableOutputSucceeds()
    {
        // Regression: the table title contains "[MASK]", which Spectre markup must not parse as a style.
        var model = TestAssets.Path(TestAssets.TinyRandom);
        var (exit, stdout, stderr) = CliHarness.Run("fill-mask", "--model", model, "The capital of France is [MASK].");
        Assert.True(exit == 0, stderr);
        Assert.Contains("[MASK] at position 6", stdout);
        // The table's rows, in rank order, are the JSON output's predictions (HF's top 5 for this input).
        var json = CliHarness.Run("fill-mask", "--model", model, "The capital of France is [MASK].", "--json");
        using var doc = JsonDocument.Parse(json.Out);
        var preds = doc.RootElement.GetProperty("masks")[0].GetProperty("predictions").EnumerateArray().ToList();
        var rows = stdout.Split('\n').Select(l => l.Split('│', StringSplitOptions.TrimEntries)).Where(c => c.Length >= 5 && int.TryParse(c[1], out _)).ToList();
        Assert.Equal(5, rows.Count);
        for (var i = 0; i < 5; i++)
        {
            Assert.Equal((i + 1).ToString(), rows[i][1]);
            Assert.Equal(preds[i].GetProperty("token").GetString(), rows[i][2]);
            Assert.Equal(preds[i].GetProperty("id").GetInt32().ToString(), rows[i][3]);
            Assert.Equal(preds[i].GetProperty("score").GetDouble().ToString("F4"), rows[i][4]);
        }
        Assert.Equal(new[] { "19926", "17270", "1655", "5981", "25039" }, rows.Select(r => r[3]));
    }
}
