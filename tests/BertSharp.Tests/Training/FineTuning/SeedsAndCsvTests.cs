using System.Text.Json.Nodes;
using BertSharp.Inference;
using BertSharp.Training.FineTuning;
using Xunit;

namespace BertSharp.Tests.Training.FineTuning;

public class SeedsAndCsvTests
{
    [Fact]
    public void Mean_and_sample_std_by_hand()
    {
        var (m, s) = FineTuner.MeanStd([1, 2, 3, 4]);
        Assert.Equal(2.5, m);
        Assert.Equal(Math.Sqrt(5.0 / 3), s, 12);   // Σ(x−2.5)² = 5, n − 1 = 3
        Assert.Equal((0.7, 0.0), FineTuner.MeanStd([0.7]));
        Assert.Equal([1L, 2, 3], new FineTuneTaskConfig { Seeds = "1, 2,3" }.ParseSeeds());
        Assert.Throws<ArgumentException>(() => new FineTuneTaskConfig { Seeds = "1,x" }.ParseSeeds());
        Assert.Throws<ArgumentException>(() => new FineTuneTaskConfig { Seeds = "2,2" }.ParseSeeds());
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void Seeds_run_into_seed_dirs_and_the_summary_is_their_mean_and_std()
    {
        using var files = new TinyTaskFiles();
        var tsv = files.Sst2();
        var dev = files.Sst2("dev.tsv", count: 16, seed: 9);
        var cfg = new FineTuneTaskConfig { Task = "sst2", Model = TestAssets.Path(TestAssets.TinyRandom), Train = tsv, Dev = dev, MaxLength = 32, Seeds = "1,2" };
        var train = FineTuneTaskConfig.DefaultTrain with
        {
            LearningRate = 1e-3, Epochs = null, TotalSteps = 12, BatchSize = 8, TensorBoard = false, Plots = false, LogEvery = 6,
        };
        var outDir = files.PathOf("out");
        var summary = FineTuner.RunSeeds(cfg, train, outDir, cfg.ParseSeeds()!);

        var perSeed = new[] { 1, 2 }.Select(s => JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, $"seed-{s}", FineTuner.DevMetricsFile)))!).ToArray();
        var acc = perSeed.Select(j => (double)j["accuracy"]!).ToArray();
        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, FineTuner.SeedSummaryFile)))!;
        Assert.Equal(acc.Average(), (double)json["mean"]!["accuracy"]!, 12);
        Assert.Equal(Math.Abs(acc[0] - acc[1]) / Math.Sqrt(2), (double)json["stddev"]!["accuracy"]!, 12); // n = 2
        Assert.Equal("accuracy", (string)json["primary"]!);
        Assert.Equal(2, summary.Runs.Count);
        // Each run used its own seed (data order and head init differ).
        var cfg1 = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, "seed-2", "checkpoint-12", BertSharp.Training.Checkpoint.ConfigFile)))!;
        Assert.Equal(2, (long)cfg1["train_cfg"]!["seed"]!);
        Assert.Contains("2 seeds (1, 2): accuracy", summary.Describe());
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void Csv_column_flags_pick_the_columns_and_share_label_ids_between_train_and_dev()
    {
        using var files = new TinyTaskFiles();
        var train = files.PathOf("train.csv");
        var dev = files.PathOf("dev.csv");
        var rows = new List<string> { "id,review,verdict" };
        for (int i = 0; i < 32; i++) rows.Add($"{i},\"the film was {(i % 2 == 0 ? "awful, really" : "great")} .\",{(i % 2 == 0 ? "bad" : "good")}");
        File.WriteAllLines(train, rows);
        File.WriteAllLines(dev, ["id,review,verdict", "0,\"a great film .\",good", "1,\"so awful .\",bad", "2,\"meh .\",meh"]);
        var cfg = new FineTuneTaskConfig
        {
            Task = "csv", Model = TestAssets.Path(TestAssets.TinyRandom), Train = train, Dev = dev, MaxLength = 32,
            TextColumn = "review", LabelColumn = "verdict",
        };
        var t = FineTuneTaskConfig.DefaultTrain with { LearningRate = 1e-3, Epochs = null, TotalSteps = 4, BatchSize = 8, TensorBoard = false, Plots = false };
        var r = FineTuner.Run(cfg, t, files.PathOf("out"));
        // The label set is the union of both files, in ordinal order; the dev-only label gets an id too.
        Assert.Equal(["bad", "good", "meh"], ModelDirectory.Open(r.BestDir).Config.Labels);
        Assert.Contains("f1_macro", r.DevScores!.Keys);
        var again = FineTuner.Evaluate(r.BestDir, "csv", dev, maxLength: 32, options: cfg);
        Assert.Equal(r.DevScores["accuracy"], again["accuracy"]);

        var e = Assert.Throws<FormatException>(() => FineTuner.Run(cfg with { TextColumn = "text" }, t, files.PathOf("out2")));
        Assert.Contains("no column 'text'", e.Message);
    }

    [Fact]
    public void Cli_rejects_bad_seeds_and_patience_without_dev()
    {
        var (code, _, err) = Cli.CliHarness.Run(["finetune", "--task", "sst2", "--model", "m", "--train", "t", "--dev", "d", "--seeds", "1,a", "-o", "o"]);
        Assert.Equal(2, code);
        Assert.Contains("--seeds: expected comma-separated", err);
        (code, _, err) = Cli.CliHarness.Run(["finetune", "--task", "sst2", "--model", "m", "--train", "t", "--early-stopping-patience", "2", "-o", "o"]);
        Assert.Equal(2, code);
        Assert.Contains("needs dev data", err);
    }
}
