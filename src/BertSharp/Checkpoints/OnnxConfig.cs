using System.Globalization;
using System.Text.RegularExpressions;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>
/// Infers a <see cref="BertConfig"/> from an ONNX BERT graph when no config.json is beside it: sizes from the
/// (recovered) parameter shapes, the head count from the Reshape shape constants feeding attention (or the
/// 1/√head_dim score scale), layer_norm_eps from the decomposed LayerNorm's Add constant (or the LayerNormalization
/// epsilon), hidden_act from the ops between the intermediate dense layer and the next MatMul.
/// </summary>
public static partial class OnnxConfig
{
    [GeneratedRegex(@"(?:^|\.)encoder\.layer\.(\d+)\.")]
    private static partial Regex LayerIndex();

    /// <summary>What the graph says; a field is null when the graph does not show it.</summary>
    public sealed record Evidence(
        int? Layers, int? Hidden, int? Heads, int? Intermediate, int? Vocab, int? Positions, int? Types, double? LayerNormEps, string? HiddenAct);

    /// <summary>Collects the evidence; never throws for missing patterns.</summary>
    public static Evidence Inspect(OnnxWeights w)
    {
        var shapes = new Dictionary<string, long[]>(StringComparer.Ordinal);
        foreach (var r in w.Names)
        {
            var dims = w.Model.Initializers[r.OnnxName].Dims;
            var key = r.HfName.StartsWith("bert.", StringComparison.Ordinal) ? r.HfName["bert.".Length..] : r.HfName;
            shapes[StateDictLoader.Canonical(key)] = r.Transposed && dims.Length == 2 ? [dims[1], dims[0]] : dims;
        }
        int? Dim(string key, int axis) => shapes.TryGetValue(key, out var d) && d.Length > axis && d[axis] <= int.MaxValue ? (int)d[axis] : null;

        var layerIdx = shapes.Keys.Select(k => LayerIndex().Match(k)).Where(m => m.Success)
            .Select(m => int.TryParse(m.Groups[1].Value, NumberStyles.None, CultureInfo.InvariantCulture, out var i) ? i : -1)
            .Where(i => i >= 0).Distinct().ToList();
        int? layers = layerIdx.Count > 0 && layerIdx.Max() + 1 == layerIdx.Count ? layerIdx.Count : null;
        var hidden = Dim("embeddings.word_embeddings.weight", 1) ?? Dim("encoder.layer.0.attention.self.query.weight", 1);
        return new Evidence(
            layers, hidden, hidden is { } h ? Heads(w, h) : null,
            Dim("encoder.layer.0.intermediate.dense.bias", 0) ?? Dim("encoder.layer.0.intermediate.dense.weight", 0),
            Dim("embeddings.word_embeddings.weight", 0), Dim("embeddings.position_embeddings.weight", 0),
            Dim("embeddings.token_type_embeddings.weight", 0), Eps(w), Act(w));
    }

    /// <summary>The inferred config; an <see cref="InvalidDataException"/> naming what could not be inferred.</summary>
    public static BertConfig Infer(OnnxWeights w)
    {
        var e = Inspect(w);
        var missing = new List<string>();
        int Need(int? v, string what) { if (v is null) missing.Add(what); return v ?? 1; }
        var cfg = new BertConfig
        {
            NumHiddenLayers = Need(e.Layers, "num_hidden_layers (encoder.layer.N.* weights)"),
            HiddenSize = Need(e.Hidden, "hidden_size (the word embeddings)"),
            NumAttentionHeads = Need(e.Heads, "num_attention_heads (the attention Reshape constants)"),
            IntermediateSize = Need(e.Intermediate, "intermediate_size (encoder.layer.0.intermediate.dense)"),
            VocabSize = Need(e.Vocab, "vocab_size (embeddings.word_embeddings.weight)"),
            MaxPositionEmbeddings = Need(e.Positions, "max_position_embeddings (embeddings.position_embeddings.weight)"),
            TypeVocabSize = Need(e.Types, "type_vocab_size (embeddings.token_type_embeddings.weight)"),
            LayerNormEps = e.LayerNormEps ?? 1e-12,
            HiddenAct = e.HiddenAct ?? "",
            PadTokenId = 0,
        };
        if (e.LayerNormEps is null) missing.Add("layer_norm_eps (the LayerNorm epsilon)");
        if (e.HiddenAct is null) missing.Add("hidden_act (the ops after the intermediate dense layer)");
        if (missing.Count > 0)
            throw new InvalidDataException($"{w.Model.Path}: cannot infer the config from the ONNX graph: no {string.Join(", no ", missing)}; put the model's config.json beside the file");
        try { cfg.Validate($"{w.Model.Path} (inferred config)"); }
        catch (FormatException ex) { throw new InvalidDataException(ex.Message, ex); }
        return cfg;
    }

    /// <summary>Checks a given config (config.json) against what the graph shows; a clear error on a mismatch the shapes cannot catch.</summary>
    public static void Check(OnnxWeights w, BertConfig config, string configPath)
    {
        var e = Inspect(w);
        void Same<T>(T? graph, T cfg, string key) where T : struct
        {
            if (graph is { } g && !g.Equals(cfg))
                throw new InvalidDataException($"{configPath}: {key} is {cfg}, but the ONNX graph '{w.Model.Path}' has {g}");
        }
        Same(e.Layers, config.NumHiddenLayers, "num_hidden_layers");
        Same(e.Heads, config.NumAttentionHeads, "num_attention_heads");
        if (e.HiddenAct is { } act && Family(act) != Family(config.HiddenAct))
            throw new InvalidDataException($"{configPath}: hidden_act is '{config.HiddenAct}', but the ONNX graph '{w.Model.Path}' computes '{act}'");
    }

    static string Family(string act) => act switch { "gelu_fast" => "gelu_new", "gelu_python" => "gelu", _ => act };

    /// <summary>Values of a 1-D shape tensor with unknown (dynamic) entries as null; null when it cannot be followed.</summary>
    static List<long?>? ShapeValues(OnnxWeights w, string value, Dictionary<string, OnnxTensor> consts, int depth = 0)
    {
        if (depth > 8) return null;
        if (consts.TryGetValue(value, out var c)) return c.ReadInt64s()?.Select(v => (long?)v).ToList();
        if (!w.Producer.TryGetValue(value, out var p)) return null;
        switch (p.OpType)
        {
            case "Constant" when p.Attr("value_ints") is { Ints.Count: > 0 } a: return a.Ints.Select(v => (long?)v).ToList();
            case "Concat":
            {
                var all = new List<long?>();
                foreach (var i in p.Inputs)
                {
                    var part = ShapeValues(w, i, consts, depth + 1);
                    if (part is null) return null;
                    all.AddRange(part);
                }
                return all;
            }
            case "Unsqueeze": return ShapeValues(w, p.Inputs[0], consts, depth + 1) ?? [null];
            case "Cast": return ShapeValues(w, p.Inputs[0], consts, depth + 1);
            default: return null;
        }
    }

    static int? Heads(OnnxWeights w, int hidden)
    {
        var consts = w.Model.Constants();
        var votes = new Dictionary<int, int>();
        foreach (var n in w.Model.Nodes)
        {
            if (n.OpType != "Reshape" || n.Inputs.Count < 2) continue;
            var shape = ShapeValues(w, n.Inputs[1], consts);
            if (shape is not { Count: 4 } || shape[2] is not { } h || shape[3] is not { } d || h <= 0 || d <= 0 || h * d != hidden) continue;
            votes[(int)h] = votes.GetValueOrDefault((int)h) + 1;
        }
        if (votes.Count > 0) return votes.MaxBy(kv => kv.Value).Key;
        // Fallback: the attention scores are divided by sqrt(head_dim) right after the Q·Kᵀ MatMul.
        foreach (var n in w.Model.Nodes)
        {
            if (n.OpType != "Div" || n.Inputs.Count != 2 || !w.Producer.TryGetValue(n.Inputs[0], out var mm) || mm.OpType != "MatMul") continue;
            if (Scalar(w, n.Inputs[1], consts) is not { } s || s <= 1) continue;
            var d = (int)Math.Round(s * s);
            if (d > 0 && Math.Abs(Math.Sqrt(d) - s) < 1e-3 && hidden % d == 0) return hidden / d;
        }
        return null;
    }

    static double? Scalar(OnnxWeights w, string value, Dictionary<string, OnnxTensor> consts)
    {
        if (consts.TryGetValue(value, out var t)) return t.ReadScalar();
        if (w.Producer.TryGetValue(value, out var p) && p.OpType == "Constant" && p.Attr("value_float")?.F is { } f) return f;
        return null;
    }

    /// <summary>A float32 constant as the decimal it was written as (1e-12, not 9.99999996e-13).</summary>
    static double Decimal(double v) => double.Parse(((float)v).ToString("R", CultureInfo.InvariantCulture), CultureInfo.InvariantCulture);

    static double? Eps(OnnxWeights w)
    {
        var consts = w.Model.Constants();
        var votes = new Dictionary<double, int>();
        var sawZero = false;
        foreach (var n in w.Model.Nodes)
        {
            double? eps = null;
            if (n.OpType == "LayerNormalization") eps = n.Attr("epsilon")?.F ?? 1e-5f;
            else if (n.OpType == "Sqrt" && n.Inputs.Count == 1 && w.Producer.TryGetValue(n.Inputs[0], out var add) && add.OpType == "Add" && add.Inputs.Count == 2)
            {
                for (var k = 0; k < 2 && eps is null; k++)
                    if (w.Producer.TryGetValue(add.Inputs[k], out var rm) && rm.OpType == "ReduceMean")
                        eps = Scalar(w, add.Inputs[1 - k], consts);
            }
            if (eps is { } e && e > 0) votes[Decimal(e)] = votes.GetValueOrDefault(Decimal(e)) + 1;
            else if (eps == 0) sawZero = true;
        }
        if (votes.Count > 0) return votes.MaxBy(kv => kv.Value).Key;
        // A float16 export stores HF's 1e-12 as 0 (it underflows): the LayerNorm is there, its epsilon is HF's default.
        return sawZero ? 1e-12 : null;
    }

    static string? Act(OnnxWeights w)
    {
        var bias = w.Names.FirstOrDefault(r => StateDictLoader.Canonical(r.HfName).EndsWith("encoder.layer.0.intermediate.dense.bias", StringComparison.Ordinal))?.OnnxName;
        if (bias is null || !w.Consumers.TryGetValue(bias, out var users)) return null;
        var start = users.FirstOrDefault(u => u.OpType is "Add" or "Gemm");
        if (start is null) return null;
        // Walk forward from the intermediate dense output to the next MatMul (the output dense), collecting op types.
        var seen = new HashSet<OnnxNode>();
        var queue = new Queue<OnnxNode>();
        var ops = new HashSet<string>(StringComparer.Ordinal);
        string? geluAttr = null;
        queue.Enqueue(start);
        while (queue.Count > 0 && seen.Count < 32)
        {
            var n = queue.Dequeue();
            if (!seen.Add(n)) continue;
            if (n != start)
            {
                if (n.OpType is "MatMul" or "Gemm") continue;
                ops.Add(n.OpType);
                if (n.OpType == "Gelu") geluAttr = n.Attr("approximate")?.S ?? "none";
            }
            foreach (var o in n.Outputs)
                if (w.Consumers.TryGetValue(o, out var next))
                    foreach (var m in next) queue.Enqueue(m);
        }
        if (geluAttr is not null) return geluAttr == "tanh" ? "gelu_new" : "gelu";
        if (ops.Contains("Erf")) return "gelu";
        if (ops.Contains("Tanh")) return "gelu_new";
        if (ops.Contains("Relu")) return "relu";
        return null;
    }
}

/// <summary>The one entry point for ONNX files: weights under HF names, the inferred config, and the rule behind every name.</summary>
public sealed class OnnxImport : IDisposable
{
    /// <summary>HF-named tensors (plus unnamed leftovers under their ONNX names).</summary>
    public required Dictionary<string, Tensor> Weights { get; init; }
    /// <summary>The config inferred from the graph, or null when it could not be inferred (<see cref="ConfigError"/> says why).</summary>
    public BertConfig? InferredConfig { get; init; }
    public string? ConfigError { get; init; }
    /// <summary>HF name → which rule matched.</summary>
    public required IReadOnlyDictionary<string, string> Rules { get; init; }
    /// <summary>Anonymous tensors no rule named (reported as unexpected when loaded).</summary>
    public required IReadOnlyList<string> Unnamed { get; init; }

    /// <summary>Parses <paramref name="path"/>, recovers names, infers the config and reads every tensor.</summary>
    public static OnnxImport Load(string path)
    {
        var w = OnnxWeights.Analyze(path);
        BertConfig? cfg = null;
        string? err = null;
        try { cfg = OnnxConfig.Infer(w); }
        catch (InvalidDataException e) { err = e.Message; }
        return new OnnxImport { Weights = w.LoadTensors(), InferredConfig = cfg, ConfigError = err, Rules = w.Rules, Unnamed = w.Unnamed };
    }

    /// <summary>True when <paramref name="path"/> looks like an ONNX model (extension, or a ModelProto's first bytes).</summary>
    public static bool LooksLikeOnnx(string path, ReadOnlySpan<byte> head)
    {
        if (path.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) return true;
        // ModelProto starts with ir_version (field 1, varint; 3..15) and then producer_name (field 2) or an opset/graph.
        return head.Length >= 3 && head[0] == 0x08 && head[1] is >= 3 and <= 15 && head[2] is 0x12 or 0x1a or 0x22 or 0x3a or 0x42;
    }

    public void Dispose()
    {
        foreach (var t in Weights.Values) t.Dispose();
    }
}
