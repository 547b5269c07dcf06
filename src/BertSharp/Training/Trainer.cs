using System.Diagnostics;
using System.Text.Json.Nodes;
using BertSharp.Inference;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training;

/// <summary>Everything a <see cref="Trainer{TBatch}"/> needs besides the task and the data.</summary>
public sealed record TrainerOptions
{
    public required TrainConfig Config { get; init; }
    /// <summary>Receives checkpoint-&lt;step&gt;/, metrics.jsonl, tensorboard/, plots/.</summary>
    public required string OutputDir { get; init; }
    /// <summary>
    /// The effective configuration saved as <c>train_config.json</c> in every checkpoint; when null,
    /// <c>{"train_cfg": Config}</c>.
    /// </summary>
    public JsonObject? EffectiveConfig { get; init; }
    public IReadOnlyList<ITrainingObserver> Observers { get; init; } = [];
    /// <summary>Key/value pairs stored in the checkpoint's model metadata.</summary>
    public IReadOnlyDictionary<string, string>? Metadata { get; init; }
    /// <summary>
    /// A whole-set evaluation (e.g. fine-tuning's F1 on the dev file) used instead of the eval batch source's batch
    /// means; the trainer calls it every <c>eval_every</c> updates and at the end, and reports it as an eval record.
    /// </summary>
    public Func<long, IReadOnlyDictionary<string, double>>? Evaluator { get; init; }
    /// <summary>Called after every evaluation with its step and metrics; returning true stops the run there
    /// (early stopping): a checkpoint of that step is written and the result says <c>StoppedEarly</c>.</summary>
    public Func<long, IReadOnlyDictionary<string, double>, bool>? AfterEval { get; init; }
    /// <summary>Writes caller state (early-stopping bookkeeping …) into a checkpoint's temporary folder.</summary>
    public Action<string>? SaveExtraState { get; init; }
    /// <summary>Reads back what <see cref="SaveExtraState"/> wrote, from the checkpoint a run resumes from.</summary>
    public Action<string>? LoadExtraState { get; init; }
}

/// <summary>
/// The training loop shared by pretraining and fine-tuning: gradient accumulation, AdamW with linear warm-up and
/// decay, global-norm clipping, periodic evaluation, atomic checkpoints with exact resume, Ctrl-C handling and
/// metric outputs. Randomness is a pure function of (seed, step): before each update the torch generator is
/// re-seeded from both, and the data source maps (epoch, index) to a batch deterministically, so resuming from a
/// checkpoint replays exactly the updates an uninterrupted run would have made.
/// </summary>
public sealed class Trainer<TBatch>
{
    readonly ITrainingTask<TBatch> _task;
    readonly IBatchSource<TBatch> _train;
    readonly IBatchSource<TBatch>? _eval;
    readonly TrainerOptions _options;
    readonly List<ITrainingObserver> _observers;

    public Trainer(ITrainingTask<TBatch> task, IBatchSource<TBatch> train, IBatchSource<TBatch>? eval, TrainerOptions options)
    {
        _task = task;
        _train = train;
        _eval = eval;
        _options = options;
        options.Config.Validate();
        if (train.BatchesPerEpoch <= 0) throw new ArgumentException("the training data yields no batch (corpus too small for the batch size?)");
        _observers = [.. options.Observers];
    }

    TrainConfig Config => _options.Config;

    /// <summary>The seed of the torch generator before update <paramref name="step"/> (0-based).</summary>
    public static long StepSeed(long seed, long step) => (long)(Data.DataRng.MixPair((ulong)seed, (ulong)step) & 0x7FFF_FFFF_FFFF_FFFFUL);

    /// <summary>
    /// Trains until the configured number of updates, or until <paramref name="cancel"/> fires (then a checkpoint
    /// of the last completed update is written). <paramref name="resumeFrom"/>: a checkpoint directory, or an output
    /// directory whose latest checkpoint is used.
    /// </summary>
    public TrainingResult Run(string? resumeFrom = null, CancellationToken cancel = default)
    {
        var cfg = Config;
        // Threads are set once by the entry point (bert pretrain, the bench, Runtime.Initialize), not here.
        int threads = Runtime.Threads;
        Directory.CreateDirectory(_options.OutputDir);
        foreach (var stale in StaleTemporaries.Remove(_options.OutputDir)) Message($"cleaned up {Path.GetFileName(stale)}, left by a killed run");

        long totalSteps = cfg.ResolveTotalSteps(_train.BatchesPerEpoch);
        long warmup = LinearWarmupDecay.ResolveWarmup(totalSteps, cfg.WarmupProportion, cfg.WarmupSteps);
        var schedule = new LinearWarmupDecay(cfg.LearningRate, warmup, totalSteps);
        var model = _task.Model;
        model.train();

        using var optimizer = new AdamWOptimizer(model, cfg.ToAdamW());
        long step = 0;
        var pos = new DataPosition(0, 0);
        string? resumedFrom = null;
        if (resumeFrom is not null)
        {
            var dir = Checkpoint.Resolve(resumeFrom);
            var state = Checkpoint.LoadState(dir);
            if (state.MicroBatchSize != cfg.MicroBatchSize || state.GradAccumSteps != cfg.GradAccumSteps)
                Message($"warning: resuming with batch {cfg.MicroBatchSize}×{cfg.GradAccumSteps} but the checkpoint used " +
                        $"{state.MicroBatchSize}×{state.GradAccumSteps}; the data order will differ from an uninterrupted run");
            _task.LoadModel(dir);
            var tensors = ModelDirectory.LoadTensors(Path.Combine(dir, Checkpoint.OptimizerFile));
            try { optimizer.LoadState(tensors, state.OptimizerStep); }
            finally { foreach (var t in tensors.Values) t.Dispose(); }
            step = state.GlobalStep;
            pos = new DataPosition(state.Epoch, state.BatchIndex);
            resumedFrom = dir;
            _options.LoadExtraState?.Invoke(dir);
        }

        using var metrics = new MetricsWriter(_options.OutputDir, cfg, step, resumedFrom is not null, Message);
        _observers.Insert(0, metrics);
        var start = new TrainingStart(step, totalSteps, warmup, _train.BatchesPerEpoch, cfg.BatchSize,
            ModelUtils.CountParameters(model), _options.OutputDir, resumedFrom, threads, Configuration.ConfigJson.EnumName(cfg.DType));
        foreach (var o in _observers) o.OnStart(start);

        var losses = new List<double>();
        var interval = new MetricAccumulator();
        IReadOnlyDictionary<string, double>? lastEval = null;
        string? lastCheckpoint = null;
        long startStep = step, intervalTokens = 0, sessionTokens = 0;
        double gradNorm = 0, lr = 0;
        var clock = Stopwatch.StartNew();
        var intervalClock = Stopwatch.StartNew();
        bool interrupted = false, stoppedEarly = false;
        bool hasEval = _eval is not null || _options.Evaluator is not null;

        while (step < totalSteps)
        {
            if (cancel.IsCancellationRequested) { interrupted = true; break; }
            double stepLoss = 0;
            using (var scope = NewDisposeScope())
            {
                torch.random.manual_seed(StepSeed(cfg.Seed, step));
                for (int micro = 0; micro < cfg.GradAccumSteps; micro++)
                {
                    var batch = _train.GetBatch(pos.Epoch, pos.Index);
                    pos = pos.Next(_train.BatchesPerEpoch);
                    var output = _task.Forward(batch, training: true);
                    var loss = cfg.GradAccumSteps == 1 ? output.Loss : output.Loss / cfg.GradAccumSteps;
                    loss.backward();
                    stepLoss += output.Loss.item<float>() / cfg.GradAccumSteps;
                    interval.Add(output.Metrics);
                    long tokens = _task.TokenCount(batch);
                    intervalTokens += tokens;
                    sessionTokens += tokens;
                }
                lr = schedule.At(step);
                gradNorm = optimizer.Step(lr);
                optimizer.ZeroGrad();
            }
            step++;
            losses.Add(stepLoss);

            var elapsed = clock.Elapsed;
            double tps = sessionTokens / Math.Max(1e-9, elapsed.TotalSeconds);
            TimeSpan? eta = step > startStep ? TimeSpan.FromSeconds(elapsed.TotalSeconds / (step - startStep) * (totalSteps - step)) : null;
            var info = new StepInfo(step, totalSteps, pos, stepLoss, lr, gradNorm, tps, elapsed, eta);
            foreach (var o in _observers) o.OnStep(info);

            if (step % cfg.LogEvery == 0 || step == totalSteps)
            {
                var means = interval.Means();
                means["grad_norm"] = gradNorm;
                var rec = new LogRecord(step, pos, lr, gradNorm, means,
                    intervalTokens / Math.Max(1e-9, intervalClock.Elapsed.TotalSeconds), elapsed.TotalSeconds);
                foreach (var o in _observers) o.OnLog(rec);
                interval.Clear();
                intervalTokens = 0;
                intervalClock.Restart();
            }

            bool last = step == totalSteps;
            if (hasEval && (last || (cfg.EvalEvery > 0 && step % cfg.EvalEvery == 0)))
            {
                lastEval = Evaluate(step);
                if (_options.AfterEval?.Invoke(step, lastEval) == true && !last)
                {
                    stoppedEarly = true;
                    Message($"early stopping at step {step}");
                }
            }
            if (last || stoppedEarly || (cfg.SaveEvery > 0 && step % cfg.SaveEvery == 0))
                lastCheckpoint = SaveCheckpoint(step, totalSteps, pos, optimizer, lr, lastEval, clock.Elapsed);
            if (stoppedEarly) break;
        }

        if (interrupted && step > startStep)
        {
            Message($"interrupted: saving a checkpoint at step {step}");
            lastCheckpoint = SaveCheckpoint(step, totalSteps, pos, optimizer, lr, lastEval, clock.Elapsed);
        }
        var result = new TrainingResult(step, totalSteps, interrupted, lastEval, lastCheckpoint, losses, stoppedEarly);
        foreach (var o in _observers) o.OnEnd(result);
        _observers.Remove(metrics);
        return result;
    }

    /// <summary>Held-out batches one evaluation scores: all of them, or at most <c>eval_max_batches</c>.</summary>
    public long EvalBatchCount => _eval is null ? 0
        : Config.EvalMaxBatches > 0 ? Math.Min(Config.EvalMaxBatches, _eval.BatchesPerEpoch) : _eval.BatchesPerEpoch;

    /// <summary>Mean metrics over the held-out batches (model in eval mode, no gradients).</summary>
    public IReadOnlyDictionary<string, double> Evaluate(long step = 0)
    {
        var clock = Stopwatch.StartNew();
        if (_options.Evaluator is { } evaluator)
        {
            var scores = evaluator(step);
            var r = new EvalRecord(step, scores, clock.Elapsed.TotalSeconds);
            foreach (var o in _observers) o.OnEval(r);
            return scores;
        }
        if (_eval is null) throw new InvalidOperationException("no evaluation data");
        var model = _task.Model;
        bool wasTraining = model.training;
        model.eval();
        var acc = new MetricAccumulator();
        long n = EvalBatchCount;
        try
        {
            for (long i = 0; i < n; i++)
            {
                using var scope = NewDisposeScope();
                using var _ = no_grad();
                acc.Add(_task.Forward(_eval.GetBatch(0, i), training: false).Metrics);
            }
        }
        finally
        {
            if (wasTraining) model.train();
        }
        var means = acc.Means();
        _task.AddDerivedMetrics(means);
        var rec = new EvalRecord(step, means, clock.Elapsed.TotalSeconds);
        foreach (var o in _observers) o.OnEval(rec);
        return means;
    }

    string SaveCheckpoint(long step, long totalSteps, DataPosition pos, AdamWOptimizer optimizer, double lr,
        IReadOnlyDictionary<string, double>? lastEval, TimeSpan elapsed)
    {
        var cfg = Config;
        var state = new TrainerState
        {
            GlobalStep = step, OptimizerStep = optimizer.StepCount, TotalSteps = totalSteps,
            Epoch = pos.Epoch, BatchIndex = pos.Index, BatchesPerEpoch = _train.BatchesPerEpoch,
            MicroBatchSize = cfg.MicroBatchSize, GradAccumSteps = cfg.GradAccumSteps, Seed = cfg.Seed,
            LearningRate = lr, ElapsedSeconds = elapsed.TotalSeconds,
            LastEval = lastEval is null ? null : new Dictionary<string, double>(lastEval),
        };
        var effective = _options.EffectiveConfig?.DeepClone().AsObject()
            ?? new JsonObject { ["train_cfg"] = System.Text.Json.JsonSerializer.SerializeToNode(cfg, TrainConfig.Json) };
        var metadata = new Dictionary<string, string>(_options.Metadata ?? new Dictionary<string, string>())
        {
            ["global_step"] = step.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["trainer"] = "BertSharp.Training",
        };
        var dir = Checkpoint.Save(_options.OutputDir, step, tmp =>
        {
            _task.SaveModel(tmp, metadata);
            ModelDirectory.SaveTensors(Path.Combine(tmp, Checkpoint.OptimizerFile), optimizer.StateTensors());
            File.WriteAllText(Path.Combine(tmp, Checkpoint.StateFileName), state.ToJson());
            File.WriteAllText(Path.Combine(tmp, Checkpoint.ConfigFile), effective.ToJsonString(TrainConfig.Json));
            _options.SaveExtraState?.Invoke(tmp);
        }, cfg.KeepCheckpoints);
        foreach (var o in _observers) o.OnCheckpoint(step, dir);
        return dir;
    }

    void Message(string m)
    {
        foreach (var o in _observers) o.OnMessage(m);
    }
}
