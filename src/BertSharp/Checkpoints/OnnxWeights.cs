using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>How one Hugging Face parameter was found in an ONNX graph.</summary>
/// <param name="HfName">the state-dict key (as named in the file: with or without <c>bert.</c>)</param>
/// <param name="OnnxName">the initializer that holds it</param>
/// <param name="Transposed">whether the initializer is stored <c>[in, out]</c> and is transposed on load</param>
/// <param name="Rule">which rule matched, in words</param>
public sealed record OnnxNameRule(string HfName, string OnnxName, bool Transposed, string Rule);

/// <summary>
/// Recovers Hugging Face parameter names from a <c>torch.onnx.export</c> graph. Weights are named from how the graph
/// uses them, never from initializer order: the MatMul feeding an Add of a named <c>X.bias</c> gives <c>X.weight</c>
/// (stored <c>[in, out]</c>, transposed back), Gemm likewise (transB decides), Gather on <c>input_ids</c> /
/// <c>token_type_ids</c> / position ids gives the embedding tables, and the MatMul before <c>cls.predictions.bias</c>
/// is the tied MLM decoder. Initializers that already carry an HF name keep it. Anonymous floating-point tensors no
/// rule claims are reported (<see cref="Unnamed"/>), not guessed.
/// </summary>
public sealed partial class OnnxWeights
{
    [GeneratedRegex(@"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z0-9_]+)*\.(weight|bias|gamma|beta)$")]
    private static partial Regex HfNamePattern();

    /// <summary>True for names of the Hugging Face state-dict form (<c>a.b.c.weight</c>, <c>…bias</c>).</summary>
    public static bool IsHfName(string name) => HfNamePattern().IsMatch(name);

    public OnnxModel Model { get; }
    /// <summary>Every recovered or kept parameter, in graph order.</summary>
    public IReadOnlyList<OnnxNameRule> Names { get; }
    /// <summary>HF name → rule description (for <c>bert info</c>).</summary>
    public IReadOnlyDictionary<string, string> Rules { get; }
    /// <summary>Anonymous floating-point initializers (more than one element) that no rule names; loaded under their ONNX names, so they show up as unexpected.</summary>
    public IReadOnlyList<string> Unnamed { get; }

    internal readonly Dictionary<string, OnnxNode> Producer = new(StringComparer.Ordinal);
    internal readonly Dictionary<string, List<OnnxNode>> Consumers = new(StringComparer.Ordinal);

    static readonly HashSet<string> QuantizedOps = new(StringComparer.Ordinal)
    {
        "QuantizeLinear", "DequantizeLinear", "DynamicQuantizeLinear", "MatMulInteger", "QLinearMatMul", "ConvInteger", "QLinearConv",
    };

    OnnxWeights(OnnxModel model)
    {
        Model = model;
        foreach (var n in model.Nodes)
        {
            if (n.Domain is not ("" or "ai.onnx"))
                throw new InvalidDataException(
                    $"{model.Path}: node '{n.Name}' uses operator {n.Domain}.{n.OpType}: this is an ONNX Runtime-optimized (fused) graph; " +
                    "BertSharp imports the plain torch.onnx.export output — use the unoptimized export");
            if (QuantizedOps.Contains(n.OpType))
                throw new InvalidDataException($"{model.Path}: node '{n.Name}' is {n.OpType}: quantized ONNX models are not supported; use the float export");
            foreach (var o in n.Outputs) Producer[o] = n;
            foreach (var i in n.Inputs)
            {
                if (i.Length == 0) continue;
                if (!Consumers.TryGetValue(i, out var list)) Consumers[i] = list = [];
                list.Add(n);
            }
        }
        var names = new List<OnnxNameRule>();
        var byHf = new Dictionary<string, OnnxNameRule>(StringComparer.Ordinal);
        var claimed = new HashSet<string>(StringComparer.Ordinal);
        void Add(OnnxNameRule r)
        {
            if (byHf.TryGetValue(r.HfName, out var prev))
            {
                if (prev.OnnxName == r.OnnxName && prev.Transposed == r.Transposed) return;
                throw new InvalidDataException($"{model.Path}: two tensors claim the name '{r.HfName}': '{prev.OnnxName}' ({prev.Rule}) and '{r.OnnxName}' ({r.Rule})");
            }
            byHf[r.HfName] = r;
            names.Add(r);
            claimed.Add(r.OnnxName);
        }

        foreach (var t in model.Initializers.Values)
            if (t.IsFloatingPoint && IsHfName(t.Name))
                Add(new OnnxNameRule(t.Name, t.Name, false, "named initializer"));

        foreach (var n in model.Nodes)
        {
            switch (n.OpType)
            {
                case "MatMul" when n.Inputs.Count == 2 && n.Outputs.Count == 1:
                {
                    if (WeightSource(n.Inputs[1]) is not { } w) break;
                    if (BiasAfter(n.Outputs[0]) is not { } bias) break;
                    var (hf, what) = WeightNameForBias(bias);
                    // Stored [in, out] for x @ W; a Transpose node in front means the initializer is already [out, in].
                    Propose(hf, w.Init, transposed: !w.ViaTranspose, $"{what}: MatMul weight feeding Add({bias})" + (w.ViaTranspose ? " via Transpose" : ", [in, out] transposed"));
                    break;
                }
                case "Gemm" when n.Inputs.Count == 3:
                {
                    if (WeightSource(n.Inputs[1]) is not { } w) break;
                    var bias = n.Inputs[2];
                    if (!model.Initializers.ContainsKey(bias) || !IsHfName(bias) || !bias.EndsWith(".bias", StringComparison.Ordinal)) break;
                    var transB = (n.Attr("transB")?.I ?? 0) != 0;
                    // Gemm computes A·B' + C with B' = transB ? Bᵀ : B; B' is [in, out], so the HF [out, in] matrix is B when transB=1.
                    var transposed = transB == w.ViaTranspose;
                    var (hf, what) = WeightNameForBias(bias);
                    Propose(hf, w.Init, transposed, $"{what}: Gemm(transB={(transB ? 1 : 0)}) weight with C={bias}" + (w.ViaTranspose ? " via Transpose" : "") + (transposed ? ", transposed" : ""));
                    break;
                }
                case "Gather" when n.Inputs.Count == 2:
                {
                    if (!model.Initializers.TryGetValue(n.Inputs[0], out var table) || !table.IsFloatingPoint || table.Dims.Length != 2) break;
                    if (IsHfName(table.Name)) break;
                    var origin = TraceIndices(n.Inputs[1]);
                    string? which = origin switch
                    {
                        null => null,
                        _ when origin.Contains("input_ids", StringComparison.Ordinal) => "word_embeddings",
                        _ when origin.Contains("token_type", StringComparison.Ordinal) => "token_type_embeddings",
                        _ when origin.Contains("position", StringComparison.Ordinal) => "position_embeddings",
                        _ => null,
                    };
                    if (which is null) break;
                    var prefix = names.Any(r => r.HfName.StartsWith("bert.", StringComparison.Ordinal)) ? "bert." : "";
                    Propose($"{prefix}embeddings.{which}.weight", table.Name, false, $"Gather on {origin}");
                    break;
                }
            }
        }

        void Propose(string hf, string init, bool transposed, string rule)
        {
            if (IsHfName(init))
            {
                // Already named (e.g. a Gemm on pooler.dense.weight, or the decoder tied via Transpose(word_embeddings)): keep it.
                if (transposed && StateDictLoader.Canonical(init) == StateDictLoader.Canonical(hf))
                    throw new InvalidDataException($"{model.Path}: initializer '{init}' is used transposed ({rule}); BertSharp expects HF-named weights in [out, in] layout");
                return;
            }
            Add(new OnnxNameRule(hf, init, transposed, rule));
        }

        var unnamed = model.Initializers.Values
            .Where(t => t.IsFloatingPoint && !claimed.Contains(t.Name) && SafeNumel(t) > 1)
            .Select(t => t.Name).ToList();
        Names = names;
        Rules = names.ToDictionary(r => r.HfName, r => r.Rule, StringComparer.Ordinal);
        Unnamed = unnamed;
    }

    static long SafeNumel(OnnxTensor t)
    {
        try { return t.Numel; } catch (InvalidDataException) { return long.MaxValue; }
    }

    /// <summary>Parses <paramref name="path"/> and recovers names (no tensor data is read).</summary>
    public static OnnxWeights Analyze(string path) => new(OnnxModel.Load(path));

    /// <summary>Recovers names on an already parsed model.</summary>
    public static OnnxWeights Analyze(OnnxModel model) => new(model);

    (string Hf, string What) WeightNameForBias(string bias)
    {
        var x = bias[..^".bias".Length];
        // BertLMPredictionHead: decoder.bias IS cls.predictions.bias, so the export names the decoder's bias that way.
        if (x.EndsWith("cls.predictions", StringComparison.Ordinal) || x == "predictions")
            return (x + ".decoder.weight", "tied MLM decoder");
        return (x + ".weight", "linear");
    }

    (string Init, bool ViaTranspose)? WeightSource(string input)
    {
        if (Model.Initializers.TryGetValue(input, out var t))
            return t.IsFloatingPoint && t.Dims.Length == 2 ? (input, false) : null;
        if (Producer.TryGetValue(input, out var p) && p.OpType == "Transpose" && p.Inputs.Count == 1
            && Model.Initializers.TryGetValue(p.Inputs[0], out var src) && src.IsFloatingPoint && src.Dims.Length == 2
            && (p.Attr("perm") is not { } perm || perm.Ints.SequenceEqual([1L, 0L])))
            return (src.Name, true);
        return null;
    }

    /// <summary>The HF-named bias initializer added to <paramref name="value"/> by its only consumer, an Add (either input order).</summary>
    string? BiasAfter(string value)
    {
        if (!Consumers.TryGetValue(value, out var users) || users.Count != 1) return null;
        var add = users[0];
        if (add.OpType != "Add" || add.Inputs.Count != 2) return null;
        var other = add.Inputs[0] == value ? add.Inputs[1] : add.Inputs[0];
        return Model.Initializers.TryGetValue(other, out var b) && b.IsFloatingPoint && b.Dims.Length == 1
               && IsHfName(other) && other.EndsWith(".bias", StringComparison.Ordinal) ? other : null;
    }

    static readonly HashSet<string> PassThrough = new(StringComparer.Ordinal) { "Cast", "Slice", "Expand", "Unsqueeze", "Squeeze", "Reshape", "Identity", "Flatten" };

    /// <summary>The graph input or initializer the indices of a Gather come from (through shape-only ops), or null.</summary>
    string? TraceIndices(string value)
    {
        for (var depth = 0; depth < 16; depth++)
        {
            if (Model.Inputs.Contains(value) || Model.Initializers.ContainsKey(value)) return value;
            if (!Producer.TryGetValue(value, out var p) || !PassThrough.Contains(p.OpType) || p.Inputs.Count == 0) return null;
            value = p.Inputs[0];
        }
        return null;
    }

    /// <summary>
    /// Reads every named tensor: HF names (transposed where the rule says so; float16/bfloat16/double as float32),
    /// plus the <see cref="Unnamed"/> leftovers under their ONNX names. A tied decoder must equal the word embeddings.
    /// </summary>
    public Dictionary<string, Tensor> LoadTensors()
    {
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var r in Names)
            {
                var t = Model.Initializers[r.OnnxName].ToTensor();
                if (r.Transposed)
                {
                    using var stored = t;
                    using var transposed = stored.t();
                    t = transposed.contiguous();
                }
                result[r.HfName] = t;
            }
            foreach (var u in Unnamed) result[u] = Model.Initializers[u].ToTensor();
            foreach (var r in Names.Where(r => r.Rule.StartsWith("tied MLM decoder", StringComparison.Ordinal)))
            {
                var emb = result.Keys.FirstOrDefault(k => k.EndsWith("embeddings.word_embeddings.weight", StringComparison.Ordinal));
                if (emb is null) continue;
                var dec = result[r.HfName];
                if (!dec.shape.SequenceEqual(result[emb].shape) || !dec.allclose(result[emb], 0, 0))
                    throw new InvalidDataException(
                        $"{Model.Path}: the MLM decoder ('{r.OnnxName}', {r.Rule}) differs from {emb}: BertSharp ties the decoder to the word embeddings as HF does, so an untied decoder cannot be loaded");
            }
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
    }
}
