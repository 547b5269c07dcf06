using System.Text.Json;
using System.Text.Json.Serialization;

namespace BertSharp.Training;

/// <summary>Training precision.</summary>
public enum Precision
{
    [JsonStringEnumMemberName("float32")] Float32,
    /// <summary>bf16 compute with float32 master weights in the optimizer.</summary>
    [JsonStringEnumMemberName("bfloat16")] BFloat16,
}

/// <summary>
/// Optimisation and bookkeeping settings of a training run — the <c>train_cfg</c> section of a configuration file
/// (pytorchic-bert style, snake_case keys). Every field has a default; command-line flags override file values.
/// </summary>
public sealed record TrainConfig
{
    [JsonPropertyName("seed")] public long Seed { get; init; } = 42;
    /// <summary>Sequences per optimizer update (split into <see cref="GradAccumSteps"/> micro-batches).</summary>
    [JsonPropertyName("batch_size")] public int BatchSize { get; init; } = 32;
    [JsonPropertyName("grad_accum_steps")] public int GradAccumSteps { get; init; } = 1;
    [JsonPropertyName("lr")] public double LearningRate { get; init; } = 1e-4;
    /// <summary>Number of optimizer updates; when null, <see cref="Epochs"/> decides.</summary>
    [JsonPropertyName("total_steps")] public long? TotalSteps { get; init; }
    [JsonPropertyName("epochs")] public double? Epochs { get; init; }
    [JsonPropertyName("warmup_proportion")] public double? WarmupProportion { get; init; }
    [JsonPropertyName("warmup_steps")] public long? WarmupSteps { get; init; }
    [JsonPropertyName("weight_decay")] public double WeightDecay { get; init; } = 0.01;
    [JsonPropertyName("adam_beta1")] public double AdamBeta1 { get; init; } = 0.9;
    [JsonPropertyName("adam_beta2")] public double AdamBeta2 { get; init; } = 0.999;
    [JsonPropertyName("adam_eps")] public double AdamEps { get; init; } = 1e-6;
    /// <summary>False = Google's / BertAdam's update without bias correction.</summary>
    [JsonPropertyName("bias_correction")] public bool BiasCorrection { get; init; } = true;
    [JsonPropertyName("max_grad_norm")] public double MaxGradNorm { get; init; } = 1.0;
    /// <summary>Evaluate every N updates (0: only at the end).</summary>
    [JsonPropertyName("eval_every")] public long EvalEvery { get; init; }
    /// <summary>Cap on evaluation batches (0: the whole held-out split).</summary>
    [JsonPropertyName("eval_max_batches")] public long EvalMaxBatches { get; init; }
    /// <summary>Save a checkpoint every N updates (0: only at the end).</summary>
    [JsonPropertyName("save_every")] public long SaveEvery { get; init; }
    [JsonPropertyName("keep_checkpoints")] public int KeepCheckpoints { get; init; } = 3;
    [JsonPropertyName("log_every")] public long LogEvery { get; init; } = 10;
    /// <summary>Torch intra-op threads (null: all cores), applied by the entry point through
    /// <see cref="Inference.Runtime.SetThreads"/> (the trainer itself never changes the process's thread count).</summary>
    [JsonPropertyName("threads")] public int? Threads { get; init; }
    /// <summary>float32 or bfloat16 (bf16 compute with float32 master weights).</summary>
    [JsonPropertyName("dtype")] public Precision DType { get; init; } = Precision.Float32;
    /// <summary>Write TensorBoard event files under output/tensorboard.</summary>
    [JsonPropertyName("tensorboard")] public bool TensorBoard { get; init; } = true;
    /// <summary>Write PNG plots under output/plots at each evaluation.</summary>
    [JsonPropertyName("plots")] public bool Plots { get; init; } = true;

    public AdamWOptions ToAdamW() => new()
    {
        Beta1 = AdamBeta1, Beta2 = AdamBeta2, Eps = AdamEps, WeightDecay = WeightDecay,
        BiasCorrection = BiasCorrection, MaxGradNorm = MaxGradNorm,
    };

    [JsonIgnore] public int MicroBatchSize => BatchSize / GradAccumSteps;

    public void Validate()
    {
        void Require(bool ok, string what) { if (!ok) throw new ArgumentException(what); }
        Require(BatchSize > 0, $"batch_size must be positive (got {BatchSize})");
        Require(GradAccumSteps > 0 && BatchSize % GradAccumSteps == 0,
            $"batch_size ({BatchSize}) must be a multiple of grad_accum_steps ({GradAccumSteps})");
        Require(LearningRate > 0, $"lr must be positive (got {LearningRate})");
        Require(TotalSteps is null or > 0, $"total_steps must be positive (got {TotalSteps})");
        Require(Epochs is null or > 0, $"epochs must be positive (got {Epochs})");
        Require(WarmupProportion is null or (>= 0 and <= 1), $"warmup_proportion must be in [0, 1] (got {WarmupProportion})");
        Require(WarmupSteps is null or >= 0, $"warmup_steps must be >= 0 (got {WarmupSteps})");
        Require(KeepCheckpoints >= 1, $"keep_checkpoints must be >= 1 (got {KeepCheckpoints})");
        Require(LogEvery >= 1, $"log_every must be >= 1 (got {LogEvery})");
        Require(Threads is null or > 0, $"threads must be positive (got {Threads})");
    }

    /// <summary>Total optimizer updates for a data source of <paramref name="batchesPerEpoch"/> micro-batches.</summary>
    public long ResolveTotalSteps(long batchesPerEpoch)
    {
        if (TotalSteps is { } s) return s;
        var epochs = Epochs ?? 1.0;
        return Math.Max(1, (long)Math.Ceiling(epochs * batchesPerEpoch / GradAccumSteps));
    }

    internal static JsonSerializerOptions Json => Configuration.ConfigJson.Options;

    /// <summary>The flags of the train_cfg section (one line each; help, defaults and JSON keys come from this record).</summary>
    public static readonly Configuration.ConfigSection<TrainConfig> Flags = new Configuration.ConfigSection<TrainConfig>("train_cfg")
        .Flag("--batch-size", c => c.BatchSize, "Sequences per update")
        .Flag("--grad-accum", c => c.GradAccumSteps, "Micro-batches per update")
        .Flag("--lr", c => c.LearningRate, "Peak learning rate")
        .Flag("--steps", c => c.TotalSteps, "Number of updates (instead of --epochs)", replaces: c => c.Epochs)
        .Flag("--epochs", c => c.Epochs, "Number of epochs when --steps is not given (default 1)", replaces: c => c.TotalSteps)
        .Flag("--warmup", c => c.WarmupProportion, "Warm-up proportion of the updates (default 0.1)", replaces: c => c.WarmupSteps)
        .Flag("--warmup-steps", c => c.WarmupSteps, "Warm-up updates (instead of --warmup)", replaces: c => c.WarmupProportion)
        .Flag("--eval-every", c => c.EvalEvery, "Evaluate every N updates (0: at the end)")
        .Flag("--eval-batches", c => c.EvalMaxBatches, "Cap on held-out batches per evaluation (0: all)")
        .Flag("--save-every", c => c.SaveEvery, "Checkpoint every N updates (0: at the end)")
        .Flag("--keep", c => c.KeepCheckpoints, "Checkpoints to keep")
        .Flag("--log-every", c => c.LogEvery, "Log every N updates")
        .Flag("--seed", c => c.Seed, "Seed for weights, data order, masking, dropout")
        .Flag("--threads", c => c.Threads, "Torch threads (default: all cores)")
        .Flag("--dtype", c => c.DType, "bfloat16: bf16 compute, float32 master weights")
        .Switch("--no-tensorboard", c => c.TensorBoard, false, "Do not write TensorBoard event files")
        .Switch("--no-plots", c => c.Plots, false, "Do not write PNG plots");
}
