using System.Text.Json;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>The on-disk format of a weights file.</summary>
public enum CheckpointFormat
{
    /// <summary>Not recognised.</summary>
    Unknown,
    /// <summary>Hugging Face safetensors.</summary>
    SafeTensors,
    /// <summary>PyTorch zip (torch.save since 1.6).</summary>
    TorchZip,
    /// <summary>Legacy non-zip torch.save output (refused).</summary>
    TorchLegacy,
    /// <summary>TensorFlow tensor bundle (<c>prefix.index</c> + data shards).</summary>
    TfBundle,
    /// <summary>Hugging Face sharded-checkpoint index (<c>*.index.json</c> with a <c>weight_map</c>).</summary>
    ShardedIndex,
    /// <summary>ONNX model (<c>torch.onnx.export</c> of a Hugging Face BERT); names recovered by <see cref="OnnxWeights"/>.</summary>
    Onnx,
}

/// <summary>Finds and loads model weights in any supported format.</summary>
public static partial class CheckpointFiles
{
    /// <summary>File names <see cref="FindWeights"/> tries first, in order of preference.</summary>
    public static readonly IReadOnlyList<string> PreferredNames =
    [
        "model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json",
        "bert_model.ckpt.index",
    ];

    /// <summary>ONNX files <see cref="FindWeights"/> falls back to, after every other format.</summary>
    public static readonly IReadOnlyList<string> OnnxNames = ["model.onnx", "onnx/model.onnx"];

    [GeneratedRegex(@"^model_checkpoint_path:\s*""([^""]+)""", RegexOptions.Multiline)]
    private static partial Regex TfCheckpointState();

    [GeneratedRegex(@"\.ckpt-(\d+)\.index$")]
    private static partial Regex TfStepIndex();

    /// <summary>
    /// The weights file of a model directory: <c>model.safetensors</c>, then a sharded safetensors index, then
    /// <c>pytorch_model.bin</c> (or its sharded index), then a Google release's <c>bert_model.ckpt.index</c>, the
    /// checkpoint named by a TF <c>checkpoint</c> state file, or any <c>*.ckpt.index</c> / <c>*.ckpt-N.index</c>
    /// (highest N). Null when there is none.
    /// </summary>
    public static string? FindWeights(string modelDir)
    {
        if (!Directory.Exists(modelDir)) return null;
        foreach (var n in PreferredNames)
        {
            var p = Path.Combine(modelDir, n);
            if (File.Exists(p)) return p;
        }
        var state = Path.Combine(modelDir, "checkpoint");
        if (File.Exists(state))
        {
            var m = TfCheckpointState().Match(File.ReadAllText(state));
            if (m.Success)
            {
                var prefix = Path.IsPathRooted(m.Groups[1].Value) ? m.Groups[1].Value : Path.Combine(modelDir, m.Groups[1].Value);
                if (File.Exists(prefix + ".index")) return prefix + ".index";
            }
        }
        var indexes = Directory.GetFiles(modelDir, "*.index").Select(Path.GetFileName).OfType<string>().ToList();
        var plain = indexes.Where(f => f.EndsWith(".ckpt.index", StringComparison.Ordinal)).Order(StringComparer.Ordinal).FirstOrDefault();
        if (plain is not null) return Path.Combine(modelDir, plain);
        var stepped = indexes.Select(f => (File: f, M: TfStepIndex().Match(f))).Where(x => x.M.Success)
            .OrderByDescending(x => long.Parse(x.M.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture)).FirstOrDefault();
        if (stepped.File is not null) return Path.Combine(modelDir, stepped.File);
        foreach (var n in OnnxNames)
        {
            var p = Path.Combine(modelDir, n);
            if (File.Exists(p)) return p;
        }
        return null;
    }

    /// <summary>Detects the format of <paramref name="path"/> from its name and first bytes.</summary>
    public static CheckpointFormat DetectFormat(string path)
    {
        if (path.EndsWith(".index.json", StringComparison.Ordinal) && File.Exists(path)) return CheckpointFormat.ShardedIndex;
        if (path.EndsWith(".index", StringComparison.Ordinal) && File.Exists(path)) return CheckpointFormat.TfBundle;
        if (!File.Exists(path)) return File.Exists(path + ".index") ? CheckpointFormat.TfBundle : CheckpointFormat.Unknown;
        var head = ReadHead(path, 16);
        if (TorchPickle.LooksLikeZip(head)) return CheckpointFormat.TorchZip;
        if (TorchPickle.LooksLikeLegacyPickle(head)) return CheckpointFormat.TorchLegacy;
        if (path.EndsWith(".safetensors", StringComparison.Ordinal)) return CheckpointFormat.SafeTensors;
        if (head.Length >= 9 && head[8] == (byte)'{' && BitConverter.ToUInt64(head, 0) < (ulong)new FileInfo(path).Length)
            return CheckpointFormat.SafeTensors;
        if (OnnxImport.LooksLikeOnnx(path, head)) return CheckpointFormat.Onnx;
        return CheckpointFormat.Unknown;
    }

    /// <summary>
    /// Loads the weights at <paramref name="path"/> — a <c>.safetensors</c> file, a PyTorch zip <c>.bin</c>/<c>.pt</c>,
    /// a TF checkpoint prefix or <c>.index</c>, a sharded <c>*.index.json</c>, or a model directory (see
    /// <see cref="FindWeights"/>). Google BERT TF checkpoints come back under Hugging Face names
    /// (<see cref="GoogleBertNames"/>); other TF checkpoints under their TF variable names (string tensors left out).
    /// The readers run inside a dispose scope, so every temporary they make is freed here, deterministically, and
    /// never by the finalizer thread (docs/native.md); the returned tensors are the caller's to dispose.
    /// </summary>
    public static Dictionary<string, Tensor> LoadWeights(string path)
    {
        using var scope = NewDisposeScope();
        var weights = LoadWeightsInScope(path);
        foreach (var t in weights.Values) t.DetachFromDisposeScope();
        return weights;
    }

    static Dictionary<string, Tensor> LoadWeightsInScope(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (Directory.Exists(path))
        {
            var found = FindWeights(path)
                ?? throw new FileNotFoundException($"no weights found in directory '{path}' (looked for {string.Join(", ", PreferredNames)}, a TF 'checkpoint' state file, *.ckpt.index, {string.Join(", ", OnnxNames)})");
            return LoadWeightsInScope(found);
        }
        var format = DetectFormat(path);
        switch (format)
        {
            case CheckpointFormat.SafeTensors:
                return SafeTensors.Load(path);
            case CheckpointFormat.TorchZip:
            case CheckpointFormat.TorchLegacy:
                return TorchPickle.Load(path);
            case CheckpointFormat.TfBundle:
            {
                using var reader = TfBundleReader.Open(path);
                if (GoogleBertNames.IsGoogleBert(reader)) return GoogleBertNames.Load(reader);
                var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
                try
                {
                    foreach (var t in reader.Tensors)
                        if (TfBundleReader.ToScalarType(t.DType) is not null && !t.IsSliced)
                            result[t.Name] = reader.ReadTensor(t.Name);
                }
                catch
                {
                    foreach (var t in result.Values) t.Dispose();
                    throw;
                }
                return result;
            }
            case CheckpointFormat.ShardedIndex:
                return LoadSharded(path);
            case CheckpointFormat.Onnx:
                return OnnxWeights.Analyze(path).LoadTensors();
            default:
                if (!File.Exists(path))
                    throw new FileNotFoundException($"weights file '{path}' does not exist (nor does '{path}.index')", path);
                throw new InvalidDataException(
                    $"'{path}' is not a recognised checkpoint format: expected .safetensors, a PyTorch zip (.bin/.pt), a TF checkpoint " +
                    $"prefix (.index + .data-* shards), a sharded *.index.json or an ONNX model (.onnx); its first bytes are {TorchPickle.Hex(ReadHead(path, 8))}");
        }
    }

    static Dictionary<string, Tensor> LoadSharded(string indexPath)
    {
        Dictionary<string, string> map;
        try
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(indexPath));
            if (!doc.RootElement.TryGetProperty("weight_map", out var wm) || wm.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"sharded checkpoint index '{indexPath}' has no 'weight_map' object");
            map = new Dictionary<string, string>(StringComparer.Ordinal);
            foreach (var p in wm.EnumerateObject())
                map[p.Name] = p.Value.ValueKind == JsonValueKind.String ? p.Value.GetString()!
                    : throw new InvalidDataException($"sharded checkpoint index '{indexPath}': weight_map['{p.Name}'] is not a file name");
        }
        catch (Exception ex) when (ex is JsonException or InvalidOperationException)
        {
            throw new InvalidDataException($"sharded checkpoint index '{indexPath}' is not valid JSON ({ex.Message})", ex);
        }
        var dir = Path.GetDirectoryName(Path.GetFullPath(indexPath))!;
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var file in map.Values.Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal))
            {
                if (file.Contains("..", StringComparison.Ordinal) || Path.IsPathRooted(file))
                    throw new InvalidDataException($"sharded checkpoint index '{indexPath}': shard name '{file}' must be a plain file name in the same directory");
                var shardPath = Path.Combine(dir, file);
                if (!File.Exists(shardPath))
                    throw new FileNotFoundException($"sharded checkpoint index '{indexPath}': shard '{shardPath}' is missing", shardPath);
                var format = DetectFormat(shardPath);
                if (format is not (CheckpointFormat.SafeTensors or CheckpointFormat.TorchZip or CheckpointFormat.TorchLegacy))
                    throw new InvalidDataException($"sharded checkpoint index '{indexPath}': shard '{shardPath}' is neither safetensors nor a PyTorch zip");
                var shard = LoadWeightsInScope(shardPath);
                foreach (var (name, t) in shard)
                {
                    if (!result.TryAdd(name, t))
                    {
                        t.Dispose();
                        throw new InvalidDataException($"sharded checkpoint index '{indexPath}': tensor '{name}' appears in more than one shard (again in '{file}')");
                    }
                }
            }
            foreach (var (name, file) in map)
                if (!result.ContainsKey(name))
                    throw new InvalidDataException($"sharded checkpoint index '{indexPath}': weight_map puts '{name}' in '{file}', but that shard has no such tensor");
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    static byte[] ReadHead(string path, int n)
    {
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var buf = new byte[n];
        var got = fs.ReadAtLeast(buf, n, throwOnEndOfStream: false);
        return buf[..got];
    }
}
