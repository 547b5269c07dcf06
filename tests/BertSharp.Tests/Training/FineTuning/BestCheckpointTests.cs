using System.Text.Json.Nodes;
using BertSharp.Inference;
using BertSharp.Training;
using BertSharp.Training.FineTuning;
using Xunit;

namespace BertSharp.Tests.Training.FineTuning;

/// <summary>Dev evaluation during training, best/ by the task's main metric, early stopping and exact resume.</summary>
public class BestCheckpointTests
{
    [Fact]
    public void Tracker_keeps_the_first_maximum_treats_nan_as_worst_and_stops_after_patience()
    {
        var t = new BestTracker("f1", patience: 2);
        Dictionary<string, double> S(double v) => new() { ["f1"] = v, ["accuracy"] = 0.5 };
        Assert.Equal((true, false), t.Observe(10, S(double.NaN)));  // the first evaluation is always the best so far
        Assert.Equal((true, false), t.Observe(20, S(0.5)));         // any number beats NaN
        Assert.Equal((true, false), t.Observe(30, S(0.7)));
        Assert.Equal((false, false), t.Observe(40, S(0.7)));        // a tie is no improvement
        Assert.Equal((false, true), t.Observe(50, S(0.6)));         // second in a row: stop
        Assert.Equal(30, t.BestStep);
        Assert.Equal(0.7, t.BestScore);
        Assert.Equal(5, t.Evaluations);

        // Round trip through the checkpoint file.
        using var files = new TinyTaskFiles();
        t.Save(files.Dir);
        var u = new BestTracker("f1", 2);
        u.Load(files.Dir);
        Assert.Equal(30, u.BestStep);
        Assert.Equal(0.7, u.BestScore);
        Assert.Equal(2, u.EvaluationsWithoutImprovement);
        Assert.Equal(0.7, u.BestScores!["f1"]);
        Assert.Throws<FormatException>(() => new BestTracker("accuracy", 2).Load(files.Dir));
    }

    static (FineTuneTaskConfig, TrainConfig) Setup(TinyTaskFiles files, int patience, long? steps, double? epochs, long evalEvery)
    {
        var tsv = files.Sst2();
        var cfg = new FineTuneTaskConfig
        {
            Task = "sst2", Model = TestAssets.Path(TestAssets.TinyRandom), Train = tsv, Dev = tsv, MaxLength = 32,
            EarlyStoppingPatience = patience,
        };
        var train = FineTuneTaskConfig.DefaultTrain with
        {
            LearningRate = 1e-3, Epochs = epochs, TotalSteps = steps, BatchSize = 8, WarmupProportion = 0.1,
            TensorBoard = false, Plots = false, LogEvery = 5, EvalEvery = evalEvery,
        };
        return (cfg, train);
    }

    static List<JsonObject> EvalRecords(string outDir) =>
        File.ReadAllLines(Path.Combine(outDir, MetricsWriter.FileName)).Select(l => JsonNode.Parse(l)!.AsObject())
            .Where(o => (string?)o["type"] == "eval").ToList();

    [AssetFact(TestAssets.TinyRandom)]
    public void Best_is_the_highest_dev_evaluation_and_patience_stops_the_run()
    {
        using var files = new TinyTaskFiles();
        var (cfg, train) = Setup(files, patience: 6, steps: 200, epochs: null, evalEvery: 4);
        var outDir = files.PathOf("out");
        var messages = new List<string>();
        var r = FineTuner.Run(cfg, train, outDir, log: messages.Add);

        var evals = EvalRecords(outDir);
        Assert.Equal((int)(r.Training.Step / 4), evals.Count);          // one metrics.jsonl record per evaluation
        var acc = evals.Select(e => (double)e["accuracy"]!).ToArray();
        int firstMax = Array.IndexOf(acc, acc.Max());
        Assert.Equal((long)evals[firstMax]["step"]!, r.BestStep);
        Assert.Equal(acc.Max(), r.DevScores!["accuracy"]);
        Assert.Equal(1.0, acc.Max());                                     // 32 sentences are learnt

        // Stopped early: exactly `patience` evaluations after the best, none of them better.
        Assert.True(r.Training.StoppedEarly);
        Assert.True(r.Training.Step < 200);
        Assert.Equal(r.BestStep + 6 * 4, r.Training.Step);
        Assert.Contains(messages, m => m.StartsWith($"best: step {r.BestStep}, accuracy 1.0000", StringComparison.Ordinal));
        Assert.True(Directory.Exists(Path.Combine(outDir, $"checkpoint-{r.Training.Step}")));

        // best/ is the model of the best step: its metadata says so and scoring it reproduces that evaluation.
        var meta = BertSharp.Checkpoints.SafeTensors.ReadMetadata(Path.Combine(r.BestDir, "model.safetensors"));
        Assert.Equal(r.BestStep.ToString(), meta["global_step"]);
        var dev = JsonNode.Parse(File.ReadAllText(Path.Combine(outDir, FineTuner.DevMetricsFile)))!;
        Assert.Equal(r.BestStep, (long)dev["best_step"]!);
        var again = FineTuner.Evaluate(r.BestDir, "sst2", cfg.Train, maxLength: 32);
        Assert.Equal(r.DevScores["accuracy"], again["accuracy"]);
        Assert.Equal(r.DevScores["f1_macro"], again["f1_macro"], 12);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void Two_epochs_straight_equal_one_epoch_then_resume()
    {
        using var files = new TinyTaskFiles();
        // 32 sentences, batch 8: 4 updates per epoch; dev evaluated each epoch (eval_every 0); dropout on (tiny-random has 0.1).
        var (cfg, train) = Setup(files, patience: 0, steps: null, epochs: 2, evalEvery: 0);
        var straight = FineTuner.Run(cfg, train, files.PathOf("a"));
        Assert.Equal(8, straight.Training.Step);

        using var cancel = new CancellationTokenSource();
        var stopAfterEpoch = new StopAt(4, cancel);
        var first = FineTuner.Run(cfg, train, files.PathOf("b"), [stopAfterEpoch], cancel: cancel.Token);
        Assert.True(first.Training.Interrupted);
        Assert.Equal(4, first.Training.Step);
        var resumed = FineTuner.Run(cfg, train, files.PathOf("b"), resume: true);
        Assert.False(resumed.Training.Interrupted);
        Assert.Equal(8, resumed.Training.Step);

        using var a = new DisposableTensors(ModelDirectory.LoadTensors(Path.Combine(files.PathOf("a"), "checkpoint-8", "model.safetensors")));
        using var b = new DisposableTensors(ModelDirectory.LoadTensors(Path.Combine(files.PathOf("b"), "checkpoint-8", "model.safetensors")));
        Assert.Equal(a.Tensors.Keys.Order(), b.Tensors.Keys.Order());
        double maxDiff = a.Tensors.Max(kv => TensorAssert.MaxAbsDiff(kv.Value, b.Tensors[kv.Key]));
        Assert.True(maxDiff <= 1e-6, $"max |Δ| {maxDiff}");
        // The optimizer state and the best/ bookkeeping continue too.
        using var oa = new DisposableTensors(ModelDirectory.LoadTensors(Path.Combine(files.PathOf("a"), "checkpoint-8", Checkpoint.OptimizerFile)));
        using var ob = new DisposableTensors(ModelDirectory.LoadTensors(Path.Combine(files.PathOf("b"), "checkpoint-8", Checkpoint.OptimizerFile)));
        Assert.True(oa.Tensors.Max(kv => TensorAssert.MaxAbsDiff(kv.Value, ob.Tensors[kv.Key])) <= 1e-6);
        Assert.Equal(straight.BestStep, resumed.BestStep);
        Assert.Equal(straight.DevScores!["accuracy"], resumed.DevScores!["accuracy"]);
    }

    sealed class StopAt(long step, CancellationTokenSource cancel) : ITrainingObserver
    {
        public void OnStep(StepInfo s) { if (s.Step == step) cancel.Cancel(); }
    }

    sealed class DisposableTensors(Dictionary<string, TorchSharp.torch.Tensor> tensors) : IDisposable
    {
        public Dictionary<string, TorchSharp.torch.Tensor> Tensors { get; } = tensors;
        public void Dispose() { foreach (var t in Tensors.Values) t.Dispose(); }
    }
}
