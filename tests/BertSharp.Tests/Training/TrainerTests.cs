using System.Diagnostics;
using System.Text.Json.Nodes;
using BertSharp.Data;
using BertSharp.Training;
using BertSharp.Training.Pretraining;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace BertSharp.Tests.Training;

public class TrainerTests(ITestOutputHelper log)
{
    sealed class Recorder : ITrainingObserver
    {
        public readonly List<StepInfo> Steps = new();
        public readonly List<EvalRecord> Evals = new();
        public readonly List<string> Messages = new();
        public Action<StepInfo>? Each;
        public void OnStep(StepInfo step) { Steps.Add(step); Each?.Invoke(step); }
        public void OnEval(EvalRecord eval) => Evals.Add(eval);
        public void OnMessage(string message) => Messages.Add(message);
    }

    static TrainingResult Run(TrainConfig cfg, string output, string? resume = null, ITrainingObserver? observer = null,
        CancellationToken cancel = default, List<PretrainingExample>? examples = null, int modelSeed = 1)
    {
        var config = TinyPretraining.Config();
        using var model = TinyPretraining.Model(config, modelSeed);
        var task = new PretrainingTask(model, config, tokenizer: null);
        examples ??= TinyPretraining.Examples(40, seed: 3);
        var train = TinyPretraining.Source(examples, cfg.MicroBatchSize, cfg.Seed);
        var eval = TinyPretraining.Source(TinyPretraining.Examples(16, seed: 4), 8, 0, shuffle: false);
        var trainer = new Trainer<PretrainingBatch>(task, train, eval, new TrainerOptions
        {
            Config = cfg, OutputDir = output, Observers = observer is null ? [] : [observer],
        });
        return trainer.Run(resume, cancel);
    }

    [Fact]
    public void ResumeReproducesAnUninterruptedRunExactly()
    {
        // 5 micro-batches per epoch with accumulation 2: the resume point falls mid-epoch and the run crosses epochs.
        var cfg = TinyPretraining.Train(steps: 12, batch: 8) with { GradAccumSteps = 2, SaveEvery = 6, KeepCheckpoints = 5, EvalEvery = 6 };
        var straightDir = TinyPretraining.TempDir("straight");
        var straight = Run(cfg, straightDir);
        Assert.Equal(12, straight.StepLosses.Count);

        var splitDir = TinyPretraining.TempDir("split");
        var first = Run(cfg with { TotalSteps = 12 }, splitDir, cancel: CancelAfter(6, out var obs), observer: obs);
        Assert.True(first.Interrupted);
        Assert.Equal(6, first.Step);
        var second = Run(cfg, splitDir, resume: splitDir);
        Assert.False(second.Interrupted);
        var resumed = first.StepLosses.Concat(second.StepLosses).ToArray();
        Assert.Equal(12, resumed.Length);
        for (int i = 0; i < 12; i++)
        {
            log.WriteLine($"step {i + 1}: {straight.StepLosses[i]:R} vs {resumed[i]:R}");
            Assert.True(Math.Abs(straight.StepLosses[i] - resumed[i]) <= 1e-6, $"step {i + 1}: {straight.StepLosses[i]:R} != {resumed[i]:R}");
        }
        // And the final eval agrees too.
        Assert.Equal(straight.LastEval!["mlm_loss"], second.LastEval!["mlm_loss"], 6);
    }

    static CancellationToken CancelAfter(long step, out Recorder recorder)
    {
        var cts = new CancellationTokenSource();
        recorder = new Recorder { Each = s => { if (s.Step == step) cts.Cancel(); } };
        return cts.Token;
    }

    [Fact]
    public void CheckpointsHaveTheDocumentedLayoutAndKeepLastK()
    {
        var dir = TinyPretraining.TempDir("layout");
        var cfg = TinyPretraining.Train(steps: 10) with { SaveEvery = 2, KeepCheckpoints = 2, EvalEvery = 5, TensorBoard = true, Plots = true };
        var r = Run(cfg, dir);
        var cps = Checkpoint.List(dir);
        Assert.Equal([8L, 10L], cps.Select(c => c.Step).ToArray());
        Assert.Equal(Path.Combine(dir, "checkpoint-10"), r.LastCheckpoint);
        foreach (var f in new[] { "config.json", "model.safetensors", Checkpoint.OptimizerFile, Checkpoint.StateFileName, Checkpoint.ConfigFile })
            Assert.True(File.Exists(Path.Combine(r.LastCheckpoint!, f)), f);
        Assert.Empty(Directory.GetDirectories(dir, ".tmp-*"));
        var state = Checkpoint.LoadState(r.LastCheckpoint!);
        Assert.Equal(10, state.GlobalStep);
        Assert.Equal(10, state.OptimizerStep);
        // 40 examples / 8 = 5 batches per epoch: after 10 updates the next batch is epoch 2, index 0.
        Assert.Equal((2, 0L), (state.Epoch, state.BatchIndex));
        var trainCfg = JsonNode.Parse(File.ReadAllText(Path.Combine(r.LastCheckpoint!, Checkpoint.ConfigFile)))!;
        Assert.Equal(8, (int)trainCfg["train_cfg"]!["batch_size"]!);

        var lines = File.ReadAllLines(Path.Combine(dir, MetricsWriter.FileName)).Select(l => JsonNode.Parse(l)!).ToList();
        Assert.Equal(2, lines.Count(l => (string?)l["type"] == "train"));  // log_every 5
        var evals = lines.Where(l => (string?)l["type"] == "eval").ToList();
        Assert.Equal(2, evals.Count);
        foreach (var key in new[] { "mlm_loss", "mlm_acc", "perplexity", "nsp_loss", "nsp_acc" }) Assert.NotNull(evals[0][key]);
        Assert.Equal(Math.Exp((double)evals[1]["mlm_loss"]!), (double)evals[1]["perplexity"]!, 6);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(dir, "tensorboard"), "*tfevents*", SearchOption.AllDirectories));
        foreach (var png in new[] { "train_loss.png", "eval_loss.png", "eval_accuracy.png", "eval_perplexity.png", "lr.png" })
            Assert.True(new FileInfo(Path.Combine(dir, "plots", png)).Length > 1000, png);
    }

    [Fact]
    public void LiveTensorCountDoesNotGrowOver500Steps()
    {
        var dir = TinyPretraining.TempDir("memory");
        var cfg = TinyPretraining.Train(steps: 520, batch: 4) with { LogEvery = 50, EvalEvery = 100, EvalMaxBatches = 2, Threads = 1 };
        var counts = new Dictionary<long, long>();
        var rec = new Recorder
        {
            Each = s =>
            {
                if (s.Step is not (20 or 100 or 300 or 520)) return;
                // Wrappers that something dropped without disposing would be finalized here and leave the count.
                GC.Collect();
                GC.WaitForPendingFinalizers();
                counts[s.Step] = torch.Tensor.TotalCount;
            },
        };
        var sw = Stopwatch.StartNew();
        var r = Run(cfg, dir, observer: rec, examples: TinyPretraining.Examples(64, seed: 5, minLen: 10, maxLen: 16));
        log.WriteLine($"520 steps in {sw.Elapsed.TotalSeconds:F1} s; live tensors {string.Join(", ", counts.Select(kv => $"{kv.Key}: {kv.Value}"))}");
        Assert.Equal(520, r.Step);
        Assert.Equal(counts[20], counts[100]);
        Assert.Equal(counts[20], counts[300]);
        Assert.Equal(counts[20], counts[520]);
    }

    [Fact]
    public void TinyModelOverfitsATinyCorpus()
    {
        var dir = TinyPretraining.TempDir("overfit");
        var examples = TinyPretraining.Examples(8, seed: 11, minLen: 16, maxLen: 16);
        var cfg = TinyPretraining.Train(steps: 300, batch: 8, lr: 3e-3) with { WarmupProportion = 0.05, Threads = 1, LogEvery = 50 };
        var config = TinyPretraining.Config(dropout: 0.0);
        using var model = TinyPretraining.Model(config);
        var task = new PretrainingTask(model, config, tokenizer: null);
        var source = TinyPretraining.Source(examples, 8, 1);
        var trainer = new Trainer<PretrainingBatch>(task, source, TinyPretraining.Source(examples, 8, 0, shuffle: false),
            new TrainerOptions { Config = cfg, OutputDir = dir });
        var r = trainer.Run();
        var eval = r.LastEval!;
        log.WriteLine($"final train loss {r.StepLosses[^1]:F4}; eval mlm_loss {eval["mlm_loss"]:F4} acc {eval["mlm_acc"]:F3} nsp_acc {eval["nsp_acc"]:F3}");
        Assert.True(eval["mlm_loss"] < 0.05, $"mlm_loss {eval["mlm_loss"]}");
        Assert.Equal(1.0, eval["mlm_acc"]);
    }

    [Fact]
    public void TinyModelLearnsContextItCanOnlyGetFromNeighbours()
    {
        // Held-out sequences of the same Markov chain: memorising the training rows does not help, attention does.
        var dir = TinyPretraining.TempDir("markov");
        var train = TinyPretraining.MarkovExamples(4000, chainSeed: 5, sampleSeed: 1);
        var heldOut = TinyPretraining.MarkovExamples(256, chainSeed: 5, sampleSeed: 2);
        var cfg = TinyPretraining.Train(steps: 800, batch: 32, lr: 3e-3) with { WarmupProportion = 0.05, Threads = 1, EvalEvery = 800 };
        var config = TinyPretraining.Config(dropout: 0.0);
        using var model = TinyPretraining.Model(config);
        var task = new PretrainingTask(model, config, tokenizer: null);
        var trainer = new Trainer<PretrainingBatch>(task, TinyPretraining.Source(train, 32, 1), TinyPretraining.Source(heldOut, 64, 0, shuffle: false),
            new TrainerOptions { Config = cfg, OutputDir = dir });
        var eval = trainer.Run().LastEval!;
        log.WriteLine($"held-out mlm_loss {eval["mlm_loss"]:F4} acc {eval["mlm_acc"]:F3} (uniform over 59 words: loss 4.08, acc 0.017)");
        Assert.True(eval["mlm_acc"] > 0.5, $"held-out MLM accuracy {eval["mlm_acc"]:F3}: the model did not learn to use its neighbours");
    }

    [Fact]
    public void EvaluationReportsTheShareOfIsNextLabels()
    {
        // nsp_acc means little without the majority-class baseline; evaluation reports the label share (training does not).
        var config = TinyPretraining.Config(dropout: 0.0);
        using var model = TinyPretraining.Model(config);
        var task = new PretrainingTask(model, config, tokenizer: null);
        var labels = new[] { 0, 0, 1, 0, 1, 0, 0, 0 };
        var examples = TinyPretraining.Examples(8, seed: 3).Select((e, i) => new PretrainingExample
        {
            InputIds = e.InputIds, TokenTypeIds = e.TokenTypeIds, MaskedPositions = e.MaskedPositions, MaskedLabels = e.MaskedLabels,
            NextSentenceLabel = labels[i],
        }).ToList();
        using var batch = PretrainingCollator.Collate(examples, TinyPretraining.Pad);
        using (torch.no_grad())
        {
            var eval = task.Forward(batch, training: false).Metrics.Single(m => m.Name == "nsp_is_next");
            Assert.Equal(6.0 / 8, eval.Sum / eval.Count);
            Assert.DoesNotContain(task.Forward(batch, training: true).Metrics, m => m.Name == "nsp_is_next");
        }
    }

    [Fact]
    public void BFloat16MixedPrecisionTrains()
    {
        var dir = TinyPretraining.TempDir("bf16");
        var cfg = TinyPretraining.Train(steps: 30, batch: 8, lr: 3e-3) with { DType = Precision.BFloat16, Threads = 1 };
        var config = TinyPretraining.Config(dropout: 0.0);
        using var model = TinyPretraining.Model(config);
        model.to(ScalarType.BFloat16);
        var task = new PretrainingTask(model, config, tokenizer: null);
        var examples = TinyPretraining.Examples(8, seed: 11, minLen: 16, maxLen: 16);
        var trainer = new Trainer<PretrainingBatch>(task, TinyPretraining.Source(examples, 8, 1), null,
            new TrainerOptions { Config = cfg, OutputDir = dir });
        var r = trainer.Run();
        log.WriteLine($"bf16 losses {r.StepLosses[0]:F3} → {r.StepLosses[^1]:F3}");
        Assert.True(r.StepLosses[^1] < r.StepLosses[0] - 0.5);

        // The same training with an lr below bf16 resolution: the fp32 masters the trainer saves must have moved from
        // the initial weights while the model's bf16 weights stay equal to master.to(bf16). A trainer that updated the
        // bf16 weights directly would leave them (and masters copied from them) where they started.
        var dir2 = TinyPretraining.TempDir("bf16-tiny-lr");
        using var model2 = TinyPretraining.Model(config);
        model2.to(ScalarType.BFloat16);
        var initial = model2.named_parameters().ToDictionary(kv => kv.name, kv => kv.parameter.detach().to(ScalarType.Float32));
        var trainer2 = new Trainer<PretrainingBatch>(new PretrainingTask(model2, config, tokenizer: null), TinyPretraining.Source(examples, 8, 1), null,
            new TrainerOptions { Config = TinyPretraining.Train(steps: 4, batch: 8, lr: 1e-6) with { DType = Precision.BFloat16, Threads = 1, WarmupProportion = 0 }, OutputDir = dir2 });
        var r2 = trainer2.Run();
        var state = BertSharp.Inference.ModelDirectory.LoadTensors(Path.Combine(r2.LastCheckpoint!, Checkpoint.OptimizerFile));
        long moved = 0, total = 0;
        foreach (var (name, p) in model2.named_parameters())
        {
            if (BertSharp.Modeling.ModelUtils.IsTiedAlias(name)) continue;
            var master = state["master." + name];
            Assert.Equal(ScalarType.Float32, master.dtype);
            Assert.True(p.detach().eq(master.to(ScalarType.BFloat16)).all().item<bool>(), $"{name}: bf16 weights differ from master.to(bf16)");
            moved += (master - initial[name]).abs().gt(0).sum().item<long>();
            total += master.numel();
        }
        Assert.True(moved > total / 2, $"only {moved} of {total} fp32 master elements moved");
        foreach (var t in state.Values.Concat(initial.Values)) t.Dispose();
    }
}
