using System.Globalization;
using System.Text.Json;
using System.Text.Json.Serialization;
using BertSharp.Checkpoints;

namespace BertSharp.Training;

/// <summary>Trainer bookkeeping stored as <c>trainer_state.json</c> in every checkpoint.</summary>
public sealed record TrainerState
{
    [JsonPropertyName("format_version")] public int FormatVersion { get; init; } = 1;
    [JsonPropertyName("global_step")] public long GlobalStep { get; init; }
    [JsonPropertyName("optimizer_step")] public long OptimizerStep { get; init; }
    [JsonPropertyName("total_steps")] public long TotalSteps { get; init; }
    /// <summary>Next batch to read: epoch and micro-batch index within it.</summary>
    [JsonPropertyName("epoch")] public int Epoch { get; init; }
    [JsonPropertyName("batch_index")] public long BatchIndex { get; init; }
    [JsonPropertyName("batches_per_epoch")] public long BatchesPerEpoch { get; init; }
    [JsonPropertyName("micro_batch_size")] public int MicroBatchSize { get; init; }
    [JsonPropertyName("grad_accum_steps")] public int GradAccumSteps { get; init; }
    [JsonPropertyName("seed")] public long Seed { get; init; }
    /// <summary>How randomness is derived (documents that no generator state needs saving).</summary>
    [JsonPropertyName("rng")] public string Rng { get; init; } =
        "torch generator re-seeded before every update with splitmix(seed, step); data order and masking are functions of (seed, epoch, index)";
    [JsonPropertyName("learning_rate")] public double LearningRate { get; init; }
    [JsonPropertyName("elapsed_seconds")] public double ElapsedSeconds { get; init; }
    [JsonPropertyName("last_eval")] public Dictionary<string, double>? LastEval { get; init; }

    public string ToJson() => JsonSerializer.Serialize(this, Options);

    public static TrainerState Parse(string json, string source)
    {
        try
        {
            return JsonSerializer.Deserialize<TrainerState>(json, Options) ?? throw new FormatException($"{source}: empty trainer state");
        }
        catch (JsonException e)
        {
            throw new FormatException($"{source}: invalid trainer state ({e.Message})");
        }
    }

    static readonly JsonSerializerOptions Options = new() { WriteIndented = true };
}

/// <summary>
/// The checkpoint directory layout: <c>output/checkpoint-&lt;step&gt;/</c> holding the model in Hugging Face
/// layout (written by the task through <see cref="Inference.ModelDirectory.Write"/>), <see cref="OptimizerFile"/>,
/// <see cref="StateFileName"/> and <see cref="ConfigFile"/>. Directories are written through
/// <see cref="AtomicDirectory"/>, so a crash never leaves a half-written <c>checkpoint-*</c>.
/// </summary>
public static class Checkpoint
{
    public const string Prefix = "checkpoint-";
    public const string OptimizerFile = "optimizer.safetensors";
    public const string StateFileName = "trainer_state.json";
    public const string ConfigFile = "train_config.json";

    /// <summary>Writes a checkpoint through <paramref name="write"/> (given a temporary folder), renames it into place
    /// and removes all but the newest <paramref name="keep"/> checkpoints. Returns the final directory.</summary>
    public static string Save(string outputDir, long step, Action<string> write, int keep)
    {
        StaleTemporaries.Remove(outputDir); // temporaries of killed runs
        var final = AtomicDirectory.Write(Path.Combine(outputDir, Prefix + step.ToString(CultureInfo.InvariantCulture)), write);
        Prune(outputDir, keep);
        return final;
    }

    /// <summary>Checkpoint directories under <paramref name="outputDir"/>, oldest first.</summary>
    public static IReadOnlyList<(long Step, string Dir)> List(string outputDir)
    {
        if (!Directory.Exists(outputDir)) return [];
        var list = new List<(long, string)>();
        foreach (var d in Directory.GetDirectories(outputDir, Prefix + "*"))
        {
            var name = Path.GetFileName(d);
            if (long.TryParse(name.AsSpan(Prefix.Length), NumberStyles.None, CultureInfo.InvariantCulture, out var s) &&
                File.Exists(Path.Combine(d, StateFileName)))
                list.Add((s, d));
        }
        list.Sort((a, b) => a.Item1.CompareTo(b.Item1));
        return list;
    }

    static void Prune(string outputDir, int keep)
    {
        var all = List(outputDir);
        for (int i = 0; i < all.Count - keep; i++) AtomicDirectory.TryDelete(all[i].Dir);
    }

    /// <summary>A checkpoint directory itself, or the newest checkpoint of an output directory.</summary>
    public static string Resolve(string path)
    {
        if (File.Exists(Path.Combine(path, StateFileName))) return Path.GetFullPath(path);
        if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"resume: directory not found: {path}");
        var all = List(path);
        if (all.Count == 0) throw new FileNotFoundException($"resume: {path} holds no checkpoint (no {StateFileName} and no {Prefix}* folder)");
        return all[^1].Dir;
    }

    public static TrainerState LoadState(string checkpointDir)
    {
        var p = Path.Combine(checkpointDir, StateFileName);
        if (!File.Exists(p)) throw new FileNotFoundException($"not a checkpoint: {p} is missing", p);
        return TrainerState.Parse(File.ReadAllText(p), p);
    }
}
