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

    /// <summary>
    /// The part of <see cref="Missing"/> that belongs to the encoder: everything except the heads a task model adds on
    /// top of an encoder checkpoint (<c>cls.*</c>, <c>classifier.*</c>, <c>qa_outputs.*</c>, and the pooler when the
    /// checkpoint has no pooler tensor at all). A model missing any of these would run with random weights inside.
    /// </summary>
    public IReadOnlyList<string> MissingEncoder { get; init; } = [];

    /// <summary>The missing tensors that are task heads, initialised as HF does (<see cref="Missing"/> minus <see cref="MissingEncoder"/>).</summary>
    public IEnumerable<string> MissingHeads => Missing.Except(MissingEncoder, StringComparer.Ordinal);
}

/// <summary>What a load may leave uninitialised. Inference refuses a checkpoint that lacks encoder weights.</summary>
/// <param name="AllowMissingEncoder">true: missing encoder weights are initialised and reported (HF's behaviour; <c>--allow-missing</c>)</param>
public sealed record LoadPolicy(bool AllowMissingEncoder)
{
    /// <summary>Missing heads are initialised; a missing encoder weight is an error.</summary>
    public static readonly LoadPolicy Strict = new(false);

    /// <summary>Anything missing is initialised and reported.</summary>
    public static readonly LoadPolicy AllowMissing = new(true);

    /// <summary>Throws (one line, naming <paramref name="source"/> and the missing tensors) when the policy refuses <paramref name="report"/>.</summary>
    public void Enforce(LoadReport report, string source)
    {
        if (AllowMissingEncoder || report.MissingEncoder.Count == 0) return;
        var names = string.Join(", ", report.MissingEncoder.Take(6)) + (report.MissingEncoder.Count > 6 ? ", …" : "");
        throw new InvalidDataException(
            $"{source}: {report.MissingEncoder.Count} encoder weight{(report.MissingEncoder.Count == 1 ? " is" : "s are")} missing from the checkpoint ({names}); " +
            "expected every encoder tensor (renamed or deleted?); pass --allow-missing to initialise them randomly anyway");
    }
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

    /// <summary>Prefixes of the heads a task model adds on top of an encoder checkpoint (always initialised when missing).</summary>
    static readonly string[] HeadPrefixes = ["cls.", "classifier.", "qa_outputs."];

    static bool IsPooler(string key) => key.StartsWith("pooler.", StringComparison.Ordinal) || key.StartsWith(Prefix + "pooler.", StringComparison.Ordinal);

    /// <summary>The encoder part of <paramref name="missing"/>, given every parameter key of the model.</summary>
    public static List<string> EncoderMissing(IReadOnlyList<string> missing, IEnumerable<string> modelKeys)
    {
        var poolerKeys = modelKeys.Where(IsPooler).Where(k => !ModelUtils.IsTiedAlias(k)).ToHashSet(StringComparer.Ordinal);
        var missingSet = missing.ToHashSet(StringComparer.Ordinal);
        var poolerAbsent = poolerKeys.Count > 0 && poolerKeys.All(missingSet.Contains);
        return missing.Where(k => !HeadPrefixes.Any(p => k.StartsWith(p, StringComparison.Ordinal)) && !(poolerAbsent && IsPooler(k))).ToList();
    }

    static bool IsFloat(ScalarType t) => t is ScalarType.Float32 or ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Float64;

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
                // Float16/BFloat16/Float64 → Float32 is a conversion; an integer or bool tensor where a float is
                // needed (or the reverse) is a different tensor, not a lossy copy of the right one.
                if (IsFloat(source_.dtype) != IsFloat(target.dtype))
                    throw new InvalidDataException(
                        $"{source}: tensor '{original}' is stored as {source_.dtype}, expected " +
                        (IsFloat(target.dtype) ? "a floating-point dtype (Float32; Float16, BFloat16 and Float64 are converted)" : $"{target.dtype}") +
                        $" for '{key}'");
                target.copy_(source_);
                loaded++;
            }
        }
        var unexpected = byName.Keys.Where(k => !used.Contains(k) && !IsIgnorable(k)).Select(k => byName[k].Original).OrderBy(k => k, StringComparer.Ordinal).ToList();
        return new LoadReport(missing, unexpected, loaded) { MissingEncoder = EncoderMissing(missing, modelKeys.Keys) };
    }

    static IEnumerable<string> Candidates(string key)
    {
        yield return key;
        if (key.StartsWith(Prefix, StringComparison.Ordinal)) yield return key[Prefix.Length..];
        else yield return Prefix + key;
    }
}
