using System.Globalization;
using BertSharp.Data.Tasks;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tests.Cli;
using BertSharp.Tokenization;
using BertSharp.Training.FineTuning;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Training.FineTuning;

/// <summary>
/// Windows (<c>--stride</c>) for text/pair classification and regression inputs longer than max_length: the windows
/// are checked against slices of the untruncated token sequence built here, and eval/predict against a direct forward
/// pass of every hand-built window whose logits are averaged here.
/// </summary>
public class TextWindowTests(Xunit.Abstractions.ITestOutputHelper log)
{
    static readonly string[] Filler = ["the", "film", "was", "long", "and", "we", "saw", "it", "with", "friends", "at", "home", "today", "story", "music", "actor"];

    static string Words(Random rng, int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => Filler[rng.Next(Filler.Length)]));

    static BertTokenizer Tokenizer() => ModelDirectory.Open(TestAssets.Path(TestAssets.TinyRandom)).LoadTokenizer();

    /// <summary>The windows of (a, b) built from the untruncated ids: [CLS] a[s..e] [SEP] (b [SEP]), a's windows of
    /// max − specials − |b| tokens stepping by that minus <paramref name="stride"/> (b short enough to stay whole).</summary>
    static List<(int[] Ids, int[] Types)> HandWindows(BertTokenizer tok, string a, string? b, int maxLength, int stride)
    {
        var ia = tok.EncodeIds(a, null, addSpecialTokens: false);
        var ib = b is null ? [] : tok.EncodeIds(b, null, addSpecialTokens: false);
        int keep = maxLength - (b is null ? 2 : 3) - ib.Length;
        Assert.True(ib.Length <= (maxLength - 3) / 2, "the second text must be short enough to stay whole");
        var list = new List<(int[], int[])>();
        for (int start = 0; ; start += keep - stride)
        {
            int end = Math.Min(start + keep, ia.Length);
            int[] ids = [tok.ClsId, .. ia[start..end], tok.SepId, .. (b is null ? [] : (int[])[.. ib, tok.SepId])];
            var types = new int[ids.Length];
            if (b is not null) Array.Fill(types, 1, end - start + 2, ib.Length + 1);
            list.Add((ids, types));
            if (end >= ia.Length) break;
        }
        return list;
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void A_text_three_times_max_length_becomes_overlapping_windows_each_with_cls_and_sep()
    {
        var tok = Tokenizer();
        const int max = 16, stride = 4;
        var rng = new Random(1);
        var text = Words(rng, 48);
        var ids = tok.EncodeIds(text, null, addSpecialTokens: false);
        Assert.True(ids.Length >= 3 * max, $"{ids.Length} tokens");
        var examples = new[] { new TextExample("0", text, null, 1, null, 1), new TextExample("1", "a short one", null, 0, null, 2) };
        var feats = TextFeaturizer.Featurize(tok, examples, new TextFeatureOptions { MaxLength = max, Windows = true, Stride = stride }, out var report);

        int keep = max - 2, step = keep - stride;
        int expectedWindows = 1 + (ids.Length - keep + step - 1) / step;
        var windows = feats.Where(f => f.ExampleIndex == 0).ToList();
        Assert.Equal(expectedWindows, windows.Count);
        Assert.Equal(Enumerable.Range(0, expectedWindows), windows.Select(w => w.Window));
        for (int w = 0; w < windows.Count; w++)
        {
            var f = windows[w];
            Assert.True(f.Length <= max);
            Assert.Equal(tok.ClsId, f.InputIds[0]);
            Assert.Equal(tok.SepId, f.InputIds[^1]);
            Assert.Equal(1, f.InputIds.Count(t => t == tok.ClsId));
            Assert.Equal(1, f.InputIds.Count(t => t == tok.SepId));
            Assert.All(f.TokenTypeIds, t => Assert.Equal(0, t));
            Assert.Equal(1, f.Label);   // every window carries the example's label
            int start = w * step, end = Math.Min(start + keep, ids.Length);
            Assert.Equal(ids[start..end], f.InputIds[1..^1]);
            if (w > 0) Assert.Equal(windows[w - 1].InputIds[^(stride + 1)..^1], f.InputIds[1..(stride + 1)]);   // the overlap
        }
        Assert.Equal(ids[^1], windows[^1].InputIds[^2]);   // the last window reaches the end of the text
        Assert.Single(feats, f => f.ExampleIndex == 1);
        Assert.Equal(new TextWindowReport(2, 0, 1, expectedWindows + 1, max, stride), report);
        Assert.Contains("1 of 2 inputs were longer than 16 tokens and were split into windows overlapping by 4 tokens", report.Describe());

        // Without windows: one truncated row per example (the first window), and the cut is counted.
        var cut = TextFeaturizer.Featurize(tok, examples, new TextFeatureOptions { MaxLength = max }, out var cutReport);
        Assert.Equal(2, cut.Count);
        Assert.Equal(windows[0].InputIds, cut[0].InputIds);
        Assert.Equal(new TextWindowReport(2, 1, 0, 2, max, null), cutReport);
        Assert.Contains("1 of 2 inputs were longer than 16 tokens and were cut", cutReport.Describe());
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void Pair_windows_keep_the_whole_second_text_in_every_window()
    {
        var tok = Tokenizer();
        var a = Words(new Random(2), 40);
        const string b = "a cat sat";
        var feats = TextFeaturizer.Featurize(tok, [new TextExample("0", a, b, 0, null, 1)], new TextFeatureOptions { MaxLength = 20, Windows = true, Stride = 3 });
        var hand = HandWindows(tok, a, b, 20, 3);
        Assert.True(hand.Count >= 3);
        Assert.Equal(hand.Count, feats.Count);
        for (int w = 0; w < hand.Count; w++)
        {
            Assert.Equal(hand[w].Ids, feats[w].InputIds);
            Assert.Equal(hand[w].Types, feats[w].TokenTypeIds);
        }
    }

    // ---- eval and predict against hand-averaged logits ----

    static (string Dir, nn.Module Model, BertTokenizer Tok) Make(TinyTaskFiles files, string name, Func<BertConfig, BertConfig> configure)
    {
        var src = ModelDirectory.Open(TestAssets.Path(TestAssets.TinyRandom));
        var config = configure(src.Config);
        var model = BertTaskModels.Create(nameof(BertForSequenceClassification), config);
        ModelUtils.InitWeights(model, config, 11);
        src.LoadWeightsInto(model);
        var tok = src.LoadTokenizer();
        var dir = files.PathOf(name);
        ModelDirectory.Save(model, ((IBertTaskModel)model).Describe(config), tok, dir);
        model.eval();
        return (dir, model, tok);
    }

    /// <summary>The logits of every hand-built window (one forward pass each, no padding), averaged in double.</summary>
    static double[] MeanWindowLogits(nn.Module model, List<(int[] Ids, int[] Types)> windows)
    {
        double[]? sum = null;
        foreach (var (ids, types) in windows)
        {
            using var scope = NewDisposeScope();
            using var noGrad = inference_mode();
            var logits = ((BertForSequenceClassification)model).forward(
                tensor(ids.Select(i => (long)i).ToArray()).unsqueeze(0), tensor(types.Select(i => (long)i).ToArray()).unsqueeze(0)).Logits[0].data<float>().ToArray();
            sum ??= new double[logits.Length];
            for (int c = 0; c < logits.Length; c++) sum[c] += logits[c];
        }
        return sum!.Select(s => s / windows.Count).ToArray();
    }

    static double Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        double mx = x.Average(), my = y.Average(), sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < x.Count; i++) { sxy += (x[i] - mx) * (y[i] - my); sxx += (x[i] - mx) * (x[i] - mx); syy += (y[i] - my) * (y[i] - my); }
        return sxy / Math.Sqrt(sxx * syy);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void Eval_with_stride_equals_averaging_the_windows_logits_computed_by_hand()
    {
        using var files = new TinyTaskFiles();
        var (dir, model, tok) = Make(files, "stsb-model", c => c.WithNumLabels(1) with { ProblemType = "regression" });
        const int max = 24, stride = 6;
        var rng = new Random(7);
        var rows = Enumerable.Range(0, 12).Select(i => (A: Words(rng, 4 + rng.Next(50)), B: Words(rng, 2 + rng.Next(3)), Score: Math.Round(rng.NextDouble() * 5, 2))).ToList();
        var tsv = files.PathOf("dev.tsv");
        File.WriteAllLines(tsv, ["index\tsentence1\tsentence2\tscore", .. rows.Select((r, i) => string.Create(CultureInfo.InvariantCulture, $"{i}\t{r.A}\t{r.B}\t{r.Score}"))]);

        var windows = rows.Select(r => HandWindows(tok, r.A, r.B, max, stride)).ToList();
        Assert.True(windows.Count(w => w.Count > 1) >= 4, "several inputs must need windows");
        var hand = windows.Select(w => MeanWindowLogits(model, w)[0]).ToList();
        var firstOnly = windows.Select(w => MeanWindowLogits(model, w.Take(1).ToList())[0]).ToList();
        var gold = rows.Select(r => r.Score).ToList();

        var notes = new List<string>();
        var scores = FineTuner.Evaluate(dir, "stsb", tsv, maxLength: max, options: new FineTuneTaskConfig { Stride = stride }, log: notes.Add);
        // (batched, padded forward passes differ from one-at-a-time ones by ~1e-6 in the logits)
        Assert.True(Math.Abs(Pearson(hand, gold) - scores["pearson"]) <= 1e-4, $"eval {scores["pearson"]} vs hand {Pearson(hand, gold)}");
        Assert.Contains(notes, n => n.Contains($"{windows.Count(w => w.Count > 1)} of 12 inputs were longer than 24 tokens and were split into windows", StringComparison.Ordinal));
        // Truncation (the default) scores the first windows only, and says how many inputs it cut.
        notes.Clear();
        var cut = FineTuner.Evaluate(dir, "stsb", tsv, maxLength: max, log: notes.Add);
        Assert.True(Math.Abs(Pearson(firstOnly, gold) - cut["pearson"]) <= 1e-4, $"eval {cut["pearson"]} vs hand {Pearson(firstOnly, gold)}");
        log.WriteLine($"pearson: windows eval {scores["pearson"]:F6} / hand {Pearson(hand, gold):F6}; truncation eval {cut["pearson"]:F6} / hand {Pearson(firstOnly, gold):F6}");
        Assert.True(Math.Abs(cut["pearson"] - scores["pearson"]) > 1e-2, $"windows {scores["pearson"]} vs truncation {cut["pearson"]}: the test cannot tell them apart");
        Assert.Contains(notes, n => n.Contains($"{windows.Count(w => w.Count > 1)} of 12 inputs were longer than 24 tokens and were cut", StringComparison.Ordinal));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void Predict_with_stride_gives_the_softmax_of_the_averaged_window_logits()
    {
        using var files = new TinyTaskFiles();
        var (dir, model, tok) = Make(files, "cls-model", c => c.WithLabels(["neg", "mid", "pos"]));
        const int max = 16, stride = 4;
        var rng = new Random(3);
        var texts = new[] { Words(rng, 45), "short text", Words(rng, 20) };
        using var predictor = new FineTunedPredictor(dir, max, stride: stride);
        var preds = predictor.Predict(texts.Select(t => new PredictInput(t)).ToList());
        Assert.Equal(2, predictor.LastReport!.Windowed);
        double worst = 0;
        for (int i = 0; i < texts.Length; i++)
        {
            var w = HandWindows(tok, texts[i], null, max, stride);
            var mean = MeanWindowLogits(model, w);
            var exp = mean.Select(m => Math.Exp(m - mean.Max())).ToArray();
            var p = exp.Select(e => e / exp.Sum()).ToArray();
            int best = Array.IndexOf(p, p.Max());
            Assert.Equal(new[] { "neg", "mid", "pos" }[best], (string)preds[i]["label"]!);
            Assert.Equal(p[best], (double)preds[i]["score"]!, 5);
            Assert.Equal(p[0], (double)preds[i]["scores"]!["neg"]!, 5);
            Assert.Equal(p[2], (double)preds[i]["scores"]!["pos"]!, 5);
            worst = Math.Max(worst, new[] { "neg", "mid", "pos" }.Select((l, c) => Math.Abs(p[c] - (double)preds[i]["scores"]![l]!)).Max());
        }
        log.WriteLine($"predict: {texts.Length} inputs, {WindowCount(tok, texts, max, stride)} windows; max |Δ| of the probabilities vs hand-averaged logits {worst:E2}");
        using var truncating = new FineTunedPredictor(dir, max);
        truncating.Predict(texts.Select(t => new PredictInput(t)).ToList());
        Assert.Equal(new TextWindowReport(3, 2, 0, 3, max, null), truncating.LastReport);
    }

    static int WindowCount(BertTokenizer tok, string[] texts, int max, int stride) => texts.Sum(t => HandWindows(tok, t, null, max, stride).Count);

    [AssetFact(TestAssets.TinyRandom)]
    public void Cli_eval_and_predict_take_stride_and_report_windowed_and_cut_inputs()
    {
        using var files = new TinyTaskFiles();
        var (dir, _, _) = Make(files, "sst2-model", c => c.WithLabels(["negative", "positive"]));
        var rng = new Random(9);
        var tsv = files.PathOf("dev.tsv");
        File.WriteAllLines(tsv, ["sentence\tlabel", $"{Words(rng, 40)}\t1", "short one\t0", $"{Words(rng, 30)}\t0"]);
        var (exit, stdout, stderr) = CliHarness.Run("eval", "--model", dir, "--task", "sst2", "--data", tsv, "--max-length", "16", "--stride", "4", "--json");
        Assert.True(exit == 0, stderr);
        Assert.Contains("bert: note: 2 of 3 inputs were longer than 16 tokens and were split into windows overlapping by 4 tokens", stderr);
        Assert.Contains("accuracy", stdout);
        Assert.Contains("bert: note: engine onnx", stderr); // the default, auto, is ONNX Runtime for a float32 model
        var (torchExit, torchOut, torchErr) = CliHarness.Run("eval", "--model", dir, "--task", "sst2", "--data", tsv, "--max-length", "16", "--stride", "4", "--json", "--engine", "torch");
        Assert.True(torchExit == 0, torchErr);
        Assert.Contains("bert: note: engine torch", torchErr);
        Assert.Equal(stdout, torchOut);
        foreach (var verb in new[] { "eval", "predict" })
        {
            string[] args = verb == "eval" ? ["eval", "--model", dir, "--task", "sst2", "--data", tsv] : ["predict", "--model", dir, "--text", "x"];
            var (code, _, err) = CliHarness.Run([.. args, "--engine", "torch", "--quantize", "int8"]);
            Assert.Equal(2, code);
            Assert.Contains("--quantize int8 runs on the ONNX engine", err);
        }
        (exit, _, stderr) = CliHarness.Run("eval", "--model", dir, "--task", "sst2", "--data", tsv, "--max-length", "16");
        Assert.True(exit == 0, stderr);
        Assert.Contains("bert: note: 2 of 3 inputs were longer than 16 tokens and were cut", stderr);
        (exit, stdout, stderr) = CliHarness.Run("predict", "--model", dir, "--text", Words(rng, 40), "--max-length", "16", "--stride", "4", "--json");
        Assert.True(exit == 0, stderr);
        Assert.Contains("1 of 1 inputs were longer than 16 tokens and were split into windows", stderr);
        Assert.Contains("\"label\"", stdout);
        (exit, _, stderr) = CliHarness.Run("predict", "--model", dir, "--text", "x", "--max-length", "16", "--stride", "14");
        Assert.Equal(2, exit);
        Assert.Contains("--stride must be at least 0 and below --max-length − 2 = 14", stderr);
    }

    [Fact]
    public void Stride_is_refused_for_tagging_and_squad_and_out_of_range()
    {
        var baseCfg = new FineTuneTaskConfig { Model = "m", Train = "t", MaxLength = 32, Stride = 8 };
        Assert.Contains("tagging tasks always window", Assert.Throws<ArgumentException>(() => (baseCfg with { Task = "conll-ner" }).Validate()).Message);
        Assert.Contains("--doc-stride", Assert.Throws<ArgumentException>(() => (baseCfg with { Task = "squad" }).Validate()).Message);
        Assert.Contains("below --max-length − 2 = 30", Assert.Throws<ArgumentException>(() => (baseCfg with { Task = "sst2", Stride = 30 }).Validate()).Message);
        (baseCfg with { Task = "stsb" }).Validate();
        Assert.True((baseCfg with { Task = "sst2" }).TextFeatures.Windows);
        Assert.False((baseCfg with { Task = "sst2", Stride = null }).TextFeatures.Windows);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void Finetune_with_stride_trains_on_every_window_and_still_overfits_32_examples()
    {
        using var files = new TinyTaskFiles();
        // 32 SST-2 sentences whose label word is in every sentence; every fourth one is three sentences long, so it
        // needs several windows at max length 16 (each window still holds a label word).
        string[] good = ["good", "great", "fine", "nice"], bad = ["bad", "awful", "poor", "dull"];
        var rng = new Random(5);
        var lines = new List<string> { "sentence\tlabel" };
        for (int i = 0; i < 32; i++)
        {
            int label = i % 2;
            string One() => $"the film was {(label == 1 ? good : bad)[rng.Next(4)]} and the story {(rng.Next(2) == 0 ? "too" : "as well")} .";
            lines.Add($"{(i % 4 < 2 ? string.Join(' ', One(), One(), One()) : One())}\t{label}");
        }
        var tsv = files.PathOf("train.tsv");
        File.WriteAllLines(tsv, lines);
        var cfg = new FineTuneTaskConfig { Task = "sst2", Model = TestAssets.Path(TestAssets.TinyRandom), Train = tsv, Dev = tsv, MaxLength = 16, Stride = 4 };
        var train = FineTuneTaskConfig.DefaultTrain with
        {
            LearningRate = 1e-3, Epochs = null, TotalSteps = 60, BatchSize = 8, WarmupProportion = 0.1, TensorBoard = false, Plots = false, LogEvery = 20,
        };
        var messages = new List<string>();
        var result = FineTuner.Run(cfg, train, files.PathOf("out"), log: messages.Add);
        Assert.Contains(messages, m => m.StartsWith("train: 16 of 32 inputs were longer than 16 tokens and were split into windows", StringComparison.Ordinal));
        Assert.Equal(1.0, result.DevScores!["accuracy"]);
        Assert.Equal(1.0, FineTuner.Evaluate(result.BestDir, "sst2", tsv, maxLength: 16, options: new FineTuneTaskConfig { Stride = 4 })["accuracy"]);
    }
}
