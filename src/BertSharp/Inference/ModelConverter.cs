using BertSharp.Checkpoints;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Inference;

/// <summary>What <see cref="ModelConverter.Convert"/> wrote.</summary>
/// <param name="Tensors">tensors in the new model.safetensors</param>
/// <param name="Dropped">checkpoint tensors not written: tied aliases (stored once, as Hugging Face does)</param>
/// <param name="CopiedFiles">sentence-transformers and tokenizer side files copied as they are</param>
public sealed record ConversionResult(string Source, string Output, string SourceFormat, int Tensors, IReadOnlyList<string> Dropped,
    IReadOnlyList<string> CopiedFiles);

/// <summary>
/// Rewrites any model directory <see cref="ModelDirectory.Open"/> accepts (safetensors, PyTorch zip, sharded, a
/// Google TF release, …) in Hugging Face layout through <see cref="ModelDirectory.Save"/>: every tensor the
/// checkpoint has — task heads, pretraining heads, buffers — under its Hugging Face name and in its stored dtype, the
/// config, the vocabulary, and the sentence-transformers files (modules.json, 1_Pooling/, …) when present.
/// </summary>
public static class ModelConverter
{
    /// <summary>Side files copied verbatim when present (besides the sentence-transformers module folders).</summary>
    static readonly string[] SideFiles = ["special_tokens_map.json"];

    /// <summary>The checkpoint's tensors under Hugging Face names (old gamma/beta renamed), as every loader maps them.</summary>
    public static Dictionary<string, Tensor> LoadNamedWeights(ModelDirectory dir)
    {
        var raw = CheckpointFiles.LoadWeights(dir.WeightsPath);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var (name, t) in raw)
            {
                var hf = StateDictLoader.Canonical(name);
                if (!result.TryAdd(hf, t))
                    throw new InvalidDataException($"{dir.WeightsPath}: two tensors map to the Hugging Face name '{hf}'");
            }
            return result;
        }
        catch
        {
            foreach (var t in raw.Values) t.Dispose();
            throw;
        }
    }

    public static ConversionResult Convert(string modelPathOrId, string output)
    {
        ArgumentException.ThrowIfNullOrWhiteSpace(output);
        var path = ModelResolver.Resolve(modelPathOrId);
        var dir = ModelDirectory.Open(path);
        var outFull = System.IO.Path.GetFullPath(output);
        if (string.Equals(System.IO.Path.GetFullPath(path).TrimEnd('/'), outFull.TrimEnd('/'), StringComparison.Ordinal))
            throw new ArgumentException($"--output {output} is the model directory itself; write the converted model somewhere else");
        if (File.Exists(outFull)) throw new ArgumentException($"--output {output} is a file; expected a directory");
        var tokenizer = dir.LoadTokenizer();
        var format = ModelInfo.FormatName(dir.WeightsPath);
        var weights = LoadNamedWeights(dir);
        try
        {
            if (!weights.Keys.Any(CheckpointNames.IsBert))
                throw new InvalidDataException($"{dir.WeightsPath}: none of its {weights.Count} tensors has a BERT (Hugging Face) name; nothing to convert");
            CheckTiedDecoder(weights, dir.WeightsPath);
            using var tree = new TensorTree();
            foreach (var (name, t) in weights) tree.Add(name, t);
            var dropped = weights.Keys.Where(ModelUtils.IsTiedAlias).Order(StringComparer.Ordinal).ToList();

            // ModelDirectory.Save renames its own temporary directory into place; the side files go into that result
            // while it still lives under a temporary name here, so the final directory appears complete or not at all.
            var parent = System.IO.Path.GetDirectoryName(outFull)!;
            Directory.CreateDirectory(parent);
            var staging = System.IO.Path.Combine(parent, $".{System.IO.Path.GetFileName(outFull)}.convert-{Guid.NewGuid():N}");
            var copied = new List<string>();
            try
            {
                ModelDirectory.Save(tree, dir.Config, tokenizer, staging, new Dictionary<string, string>
                {
                    ["converted_from"] = format,
                });
                foreach (var rel in SentenceTransformersConfig.FilesIn(path).Concat(SideFiles.Where(f => File.Exists(System.IO.Path.Combine(path, f)))).Distinct())
                {
                    var dst = System.IO.Path.Combine(staging, rel);
                    if (File.Exists(dst)) continue;   // never overwrite what Save wrote
                    Directory.CreateDirectory(System.IO.Path.GetDirectoryName(dst)!);
                    File.Copy(System.IO.Path.Combine(path, rel), dst);
                    copied.Add(rel);
                }
                string? old = null;
                if (Directory.Exists(outFull))
                {
                    old = outFull + $".old-{Guid.NewGuid():N}";
                    Directory.Move(outFull, old);
                }
                Directory.Move(staging, outFull);
                if (old is not null) Directory.Delete(old, recursive: true);
            }
            catch
            {
                if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
                throw;
            }
            return new ConversionResult(path, outFull, format, weights.Count - dropped.Count, dropped, copied);
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    /// <summary>A decoder that is not the word-embedding matrix cannot be stored as a tied alias without losing it.</summary>
    static void CheckTiedDecoder(Dictionary<string, Tensor> w, string source)
    {
        using var scope = NewDisposeScope();
        foreach (var prefix in new[] { "cls.predictions.", "predictions." })
        {
            if (!w.TryGetValue(prefix + "decoder.weight", out var dec)) continue;
            var emb = w.GetValueOrDefault("bert.embeddings.word_embeddings.weight") ?? w.GetValueOrDefault("embeddings.word_embeddings.weight");
            if (emb is null || !dec.shape.SequenceEqual(emb.shape) || !dec.to(emb.dtype).equal(emb).all().item<bool>())
                throw new NotSupportedException(
                    $"{source}: {prefix}decoder.weight differs from the word embeddings (an untied MLM decoder); BertSharp ties them, so converting would change the model");
            if (w.TryGetValue(prefix + "decoder.bias", out var db) && w.TryGetValue(prefix + "bias", out var b) && (!db.shape.SequenceEqual(b.shape) || !db.to(b.dtype).equal(b).all().item<bool>()))
                throw new NotSupportedException($"{source}: {prefix}decoder.bias differs from {prefix}bias; BertSharp ties them, so converting would change the model");
        }
    }

    /// <summary>A module whose state dict is exactly a given set of dotted names (a tree of submodules with buffers).</summary>
    sealed class TensorTree : nn.Module
    {
        readonly Dictionary<string, TensorTree> _children = new(StringComparer.Ordinal);
        readonly HashSet<string> _leaves = new(StringComparer.Ordinal);

        public TensorTree() : base(nameof(TensorTree)) { }

        public void Add(string dotted, Tensor t)
        {
            var parts = dotted.Split('.');
            if (parts.Any(p => p.Length == 0)) throw new InvalidDataException($"tensor name '{dotted}' has an empty component");
            var node = this;
            for (int i = 0; i < parts.Length - 1; i++) node = node.Child(parts[i], dotted);
            if (node._children.ContainsKey(parts[^1]) || !node._leaves.Add(parts[^1]))
                throw new InvalidDataException($"tensor name '{dotted}' clashes with another tensor's name");
            node.register_buffer(parts[^1], t, persistent: true);
        }

        TensorTree Child(string name, string full)
        {
            if (_leaves.Contains(name)) throw new InvalidDataException($"tensor name '{full}' clashes with another tensor's name");
            if (!_children.TryGetValue(name, out var c))
            {
                c = new TensorTree();
                _children[name] = c;
                register_module(name, c);
            }
            return c;
        }
    }
}
