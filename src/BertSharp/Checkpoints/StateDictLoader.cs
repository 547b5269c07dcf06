using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>What loading a checkpoint into a model did, in HF's terms.</summary>
/// <param name="Missing">model parameters the checkpoint did not provide (tied aliases excluded)</param>
/// <param name="Unexpected">checkpoint tensors the model has no place for</param>
public sealed record LoadReport(IReadOnlyList<string> Missing, IReadOnlyList<string> Unexpected, int Loaded)
{
    public bool IsComplete => Missing.Count == 0;
}

/// <summary>
/// Copies checkpoint tensors into a model by Hugging Face name, tolerant like HF's <c>from_pretrained</c>:
/// an optional <c>bert.</c> prefix on either side, old <c>LayerNorm.gamma/beta</c> names, buffers HF ignores
/// (<c>position_ids</c>). A shape mismatch is an error naming the tensor and both shapes.
/// </summary>
public static class StateDictLoader
{
    const string Prefix = "bert.";

    /// <summary>Keys HF itself ignores when unexpected.</summary>
    static bool IsIgnorable(string key) => key.EndsWith("embeddings.position_ids", StringComparison.Ordinal);

    /// <summary>Canonical HF name for an old-style key (TF-era <c>gamma</c>/<c>beta</c>).</summary>
    public static string Canonical(string key)
    {
        if (key.EndsWith(".gamma", StringComparison.Ordinal)) return key[..^".gamma".Length] + ".weight";
        if (key.EndsWith(".beta", StringComparison.Ordinal)) return key[..^".beta".Length] + ".bias";
        return key;
    }

    public static LoadReport Load(nn.Module model, IReadOnlyDictionary<string, Tensor> checkpoint, string source = "checkpoint")
    {
        var byName = new Dictionary<string, (string Original, Tensor Tensor)>(StringComparer.Ordinal);
        foreach (var (k, t) in checkpoint) byName[Canonical(k)] = (k, t);

        var used = new HashSet<string>(StringComparer.Ordinal);
        var missing = new List<string>();
        int loaded = 0;
        var modelKeys = model.state_dict();
        using (no_grad())
        {
            foreach (var (key, target) in modelKeys)
            {
                string? found = null;
                foreach (var candidate in Candidates(key))
                    if (byName.ContainsKey(candidate)) { found = candidate; break; }
                if (found is null)
                {
                    if (!ModelUtils.IsTiedAlias(key)) missing.Add(key);
                    continue;
                }
                var (original, source_) = byName[found];
                used.Add(found);
                if (!source_.shape.SequenceEqual(target.shape))
                    throw new InvalidDataException(
                        $"{source}: shape mismatch for '{original}': checkpoint has [{string.Join(", ", source_.shape)}], " +
                        $"the model (config) expects [{string.Join(", ", target.shape)}] for '{key}'");
                target.copy_(source_);
                loaded++;
            }
        }
        var unexpected = byName.Keys.Where(k => !used.Contains(k) && !IsIgnorable(k)).Select(k => byName[k].Original).OrderBy(k => k, StringComparer.Ordinal).ToList();
        return new LoadReport(missing, unexpected, loaded);
    }

    static IEnumerable<string> Candidates(string key)
    {
        yield return key;
        if (key.StartsWith(Prefix, StringComparison.Ordinal)) yield return key[Prefix.Length..];
        else yield return Prefix + key;
    }
}
