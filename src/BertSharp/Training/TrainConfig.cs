using System.Text.Json;
using System.Text.Json.Serialization;

namespace BertSharp.Training;

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
    /// <summary>Torch intra-op threads (null: all cores).</summary>
    [JsonPropertyName("threads")] public int? Threads { get; init; }
    /// <summary>"float32" or "bfloat16" (bf16 compute with float32 master weights).</summary>
    [JsonPropertyName("dtype")] public string DType { get; init; } = "float32";
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
        Require(DType is "float32" or "bfloat16", $"dtype must be float32 or bfloat16 (got '{DType}')");
    }

    /// <summary>Total optimizer updates for a data source of <paramref name="batchesPerEpoch"/> micro-batches.</summary>
    public long ResolveTotalSteps(long batchesPerEpoch)
    {
        if (TotalSteps is { } s) return s;
        var epochs = Epochs ?? 1.0;
        return Math.Max(1, (long)Math.Ceiling(epochs * batchesPerEpoch / GradAccumSteps));
    }

    internal static readonly JsonSerializerOptions Json = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
    };
}
