using System.Text.Json.Nodes;
using BertSharp.Data.Tasks;
using BertSharp.Modeling;
using BertSharp.Training.FineTuning;
using Xunit;

namespace BertSharp.Tests.Training.FineTuning;

/// <summary><c>finetune --task squad</c> end to end on the tiny-random encoder and a synthetic SQuAD v1.1 file.</summary>
public class SquadFineTuneTests
{
    static FineTuneTaskConfig Cfg(string file) => new()
    {
        Task = "squad", Model = TestAssets.Path(TestAssets.TinyRandom), Train = file, MaxLength = 32, DocStride = 8,
    };

    static BertSharp.Training.TrainConfig Train(long steps) => FineTuneTaskConfig.DefaultTrain with
    {
        LearningRate = 1e-3, Epochs = null, TotalSteps = steps, BatchSize = 8, WarmupProportion = 0.1,
        TensorBoard = false, Plots = false, LogEvery = 50,
    };

    [AssetFact(TestAssets.TinyRandom)]
    public void Overfits_32_questions_to_exact_match_100_through_windows()
    {
        using var files = new TinyTaskFiles();
        var json = files.Squad();
        var cfg = Cfg(json) with { Dev = json };
        // Some contexts do not fit one 32-token window: the answer is in one window and (0, 0) in the others.
        var tok = BertSharp.Inference.ModelDirectory.Open(cfg.Model).LoadTokenizer();
        var feats = SquadFeaturizer.Featurize(tok, SquadReader.Read(json).Examples, cfg.SquadFeatures);
        Assert.True(feats.Count > 32, $"{feats.Count} windows");

        var r = FineTuner.Run(cfg, Train(240), files.PathOf("out"));
        Assert.Equal(100.0, r.DevScores!["exact_match"]);
        Assert.Equal(100.0, r.DevScores["f1"]);
        Assert.Equal("f1", r.Metric);
        var best = BertSharp.Inference.ModelDirectory.Open(r.BestDir);
        Assert.Equal([nameof(BertForQuestionAnswering)], best.Config.Architectures);
        var again = FineTuner.Evaluate(r.BestDir, "squad", json, maxLength: 32, options: cfg);
        Assert.Equal(r.DevScores["exact_match"], again["exact_match"]);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void Split_by_article_keeps_articles_apart_and_eval_rescores_the_same_split()
    {
        using var files = new TinyTaskFiles();
        var json = files.Squad();
        var cfg = Cfg(json) with { SplitByArticle = true, SplitEvalFraction = 0.25 };
        var messages = new List<string>();
        var r = FineTuner.Run(cfg, Train(6), files.PathOf("out"), log: messages.Add);

        var split = JsonNode.Parse(File.ReadAllText(Path.Combine(files.PathOf("out"), FineTuner.SplitFile)))!;
        var trainTitles = split["train_articles"]!.AsArray().Select(t => (string)t!).ToArray();
        var evalTitles = split["eval_articles"]!.AsArray().Select(t => (string)t!).ToArray();
        Assert.Equal(2, evalTitles.Length);                    // 25 % of 8 articles
        Assert.Empty(trainTitles.Intersect(evalTitles));
        Assert.Equal(Enumerable.Range(0, 8).Select(i => $"Article_{i}").Order(), trainTitles.Concat(evalTitles).Order());
        Assert.Equal(8, (int)split["eval_questions"]!);
        Assert.Contains(messages, m => m.StartsWith("split by article", StringComparison.Ordinal) && m.Contains(evalTitles[0], StringComparison.Ordinal));

        var scores = r.DevScores!;
        Assert.InRange(scores["exact_match"], 0, 100);
        Assert.InRange(scores["f1"], scores["exact_match"], 100);
        // bert eval with --split-by-article scores the same 8 held-out questions.
        var again = FineTuner.Evaluate(r.BestDir, "squad", json, maxLength: 32, options: cfg);
        Assert.Equal(scores["f1"], again["f1"], 9);
    }

    [Fact]
    public void Split_by_article_needs_squad_and_no_dev()
    {
        var e = Assert.Throws<ArgumentException>(() => new FineTuneTaskConfig { Task = "sst2", Model = "m", Train = "t", SplitByArticle = true }.Validate());
        Assert.Contains("--task squad", e.Message);
        e = Assert.Throws<ArgumentException>(() => new FineTuneTaskConfig { Task = "squad", Model = "m", Train = "t", Dev = "d", SplitByArticle = true }.Validate());
        Assert.Contains("do not also give --dev", e.Message);
    }
}
