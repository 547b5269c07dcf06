using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>
/// Maps the variables of a Google BERT TensorFlow checkpoint (<c>bert/...</c>, <c>cls/...</c>) to Hugging Face
/// <c>BertForPreTraining</c> state-dict names, following Hugging Face's <c>load_tf_weights_in_bert</c>:
/// path components joined with '.', <c>layer_N</c> → <c>layer.N</c>, <c>kernel</c>/<c>gamma</c>/<c>output_weights</c>
/// → <c>weight</c>, <c>beta</c>/<c>output_bias</c> → <c>bias</c>, <c>*_embeddings</c> → <c>*_embeddings.weight</c>,
/// dense kernels transposed (TF stores [in, out], PyTorch [out, in]); optimizer slots and step counters skipped.
/// </summary>
public static partial class GoogleBertNames
{
    /// <summary>Path components that mark a variable HF skips (optimizer state and counters).</summary>
    public static readonly IReadOnlyList<string> SkippedComponents =
        ["adam_v", "adam_m", "AdamWeightDecayOptimizer", "AdamWeightDecayOptimizer_1", "global_step"];

    [GeneratedRegex(@"^[A-Za-z]+_\d+$")]
    private static partial Regex ScopeWithIndex();

    [GeneratedRegex(@"^(bert\.embeddings\.(word_embeddings|position_embeddings|token_type_embeddings)\.weight" +
                    @"|bert\.embeddings\.LayerNorm\.(weight|bias)" +
                    @"|bert\.encoder\.layer\.\d+\.attention\.self\.(query|key|value)\.(weight|bias)" +
                    @"|bert\.encoder\.layer\.\d+\.attention\.output\.(dense|LayerNorm)\.(weight|bias)" +
                    @"|bert\.encoder\.layer\.\d+\.(intermediate|output)\.dense\.(weight|bias)" +
                    @"|bert\.encoder\.layer\.\d+\.output\.LayerNorm\.(weight|bias)" +
                    @"|bert\.pooler\.dense\.(weight|bias)" +
                    @"|cls\.predictions\.bias" +
                    @"|cls\.predictions\.transform\.(dense|LayerNorm)\.(weight|bias)" +
                    @"|cls\.seq_relationship\.(weight|bias))$")]
    private static partial Regex PreTrainingParameter();

    /// <summary>
    /// The Hugging Face name for TF variable <paramref name="tfName"/>, or null when HF's loader skips it (optimizer
    /// slots, <c>global_step</c>, or anything that is not a <c>BertForPreTraining</c> parameter).
    /// <paramref name="transpose"/> is true for dense kernels.
    /// </summary>
    public static string? ToHuggingFace(string tfName, out bool transpose)
    {
        transpose = false;
        var parts = tfName.Split('/');
        if (parts.Any(p => SkippedComponents.Contains(p))) return null;
        var names = new List<string>();
        foreach (var part in parts)
        {
            string scope = part;
            string? index = null;
            if (ScopeWithIndex().IsMatch(part))
            {
                var us = part.LastIndexOf('_');
                scope = part[..us];
                index = part[(us + 1)..];
            }
            names.Add(scope switch
            {
                "kernel" or "gamma" or "output_weights" => "weight",
                "output_bias" or "beta" => "bias",
                "squad" => "classifier",
                _ => scope,
            });
            if (index is not null) names.Add(int.Parse(index, System.Globalization.CultureInfo.InvariantCulture).ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        var last = parts[^1];
        if (last.EndsWith("_embeddings", StringComparison.Ordinal)) names.Add("weight");
        else if (last == "kernel") transpose = true;
        var hf = string.Join('.', names);
        return PreTrainingParameter().IsMatch(hf) ? hf : null;
    }

    /// <summary>True when the bundle looks like a Google BERT checkpoint (has <c>bert/...</c> variables).</summary>
    public static bool IsGoogleBert(TfBundleReader reader) =>
        reader.Tensors.Any(t => t.Name.StartsWith("bert/embeddings/", StringComparison.Ordinal));

    /// <summary>
    /// Reads every <c>BertForPreTraining</c> parameter of <paramref name="reader"/> under its Hugging Face name, as
    /// float32 (dense kernels transposed). TF names that map to nothing are added to <paramref name="skipped"/>.
    /// The tied decoder (<c>cls.predictions.decoder.*</c>) is not produced: it is the word embedding matrix and
    /// <c>cls.predictions.bias</c>.
    /// </summary>
    public static Dictionary<string, Tensor> Load(TfBundleReader reader, ICollection<string>? skipped = null)
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var from = new Dictionary<string, string>(StringComparer.Ordinal);
        try
        {
            foreach (var info in reader.Tensors)
            {
                var hf = ToHuggingFace(info.Name, out var transpose);
                if (hf is null || info.DType == TfDataType.String)
                {
                    skipped?.Add(info.Name);
                    continue;
                }
                if (from.TryGetValue(hf, out var other))
                    throw new InvalidDataException($"TF checkpoint '{reader.Prefix}': both '{other}' and '{info.Name}' map to '{hf}'");
                from[hf] = info.Name;
                if (info.DType is not (TfDataType.Float or TfDataType.Half or TfDataType.BFloat16 or TfDataType.Double))
                    throw new InvalidDataException(
                        $"TF checkpoint '{reader.Prefix}': tensor '{info.Name}' (for '{hf}') is stored as {info.DTypeName}, expected DT_FLOAT " +
                        "(DT_HALF, DT_BFLOAT16 and DT_DOUBLE are converted); an integer tensor cannot be a weight");
                var t = reader.ReadTensor(info.Name);
                if (t.dtype != ScalarType.Float32)
                {
                    var f = t.to_type(ScalarType.Float32);
                    t.Dispose();
                    t = f;
                }
                if (transpose && t.dim() >= 2)
                {
                    var dims = Enumerable.Range(0, (int)t.dim()).Reverse().Select(i => (long)i).ToArray();
                    using var p = t.permute(dims);
                    var c = p.contiguous();
                    t.Dispose();
                    t = c;
                }
                result[hf] = t;
            }
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }

    /// <summary>Opens the TF checkpoint at <paramref name="prefix"/> and maps it with <see cref="Load(TfBundleReader, ICollection{string}?)"/>.</summary>
    public static Dictionary<string, Tensor> Load(string prefix, ICollection<string>? skipped = null)
    {
        using var reader = TfBundleReader.Open(prefix);
        return Load(reader, skipped);
    }
}
