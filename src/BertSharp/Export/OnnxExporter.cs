using System.Globalization;
using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Export;

/// <summary>Which Hugging Face model class the exported graph computes.</summary>
public enum OnnxExportTask
{
    /// <summary>Decide from the state-dict keys (<see cref="OnnxExporter.DetectTask"/>).</summary>
    Auto,
    /// <summary><c>BertModel</c>: last_hidden_state (+ pooler_output when the weights have a pooler).</summary>
    Base,
    /// <summary><c>BertForPreTraining</c>: prediction_logits, seq_relationship_logits.</summary>
    Pretraining,
    /// <summary><c>BertForMaskedLM</c>: logits [B, L, V].</summary>
    MaskedLM,
    /// <summary><c>BertForSequenceClassification</c>: logits [B, num_labels] on the pooled output.</summary>
    SequenceClassification,
    /// <summary><c>BertForTokenClassification</c>: logits [B, L, num_labels].</summary>
    TokenClassification,
    /// <summary><c>BertForQuestionAnswering</c>: start_logits, end_logits [B, L].</summary>
    QuestionAnswering,
}

/// <summary>How the encoder's Linear layers are stored in the exported graph.</summary>
public enum OnnxQuantization
{
    /// <summary>float32 weights, float MatMul (the default).</summary>
    None,
    /// <summary>
    /// Dynamic int8, as <c>onnxruntime.quantization.quantize_dynamic</c> does: each encoder Linear's weight symmetric
    /// int8 per output channel, activations quantized to uint8 at run time. Embeddings and task heads stay float.
    /// </summary>
    Int8Dynamic,
}

/// <summary>Settings of <see cref="OnnxExporter.Export"/>.</summary>
public sealed record OnnxExportOptions
{
    public OnnxExportTask Task { get; init; } = OnnxExportTask.Auto;

    /// <summary>ONNX opset: 13, 14 (default, as torch.onnx.export) or 17 (LayerNormalization as one op).</summary>
    public int Opset { get; init; } = 14;

    /// <summary>
    /// When the initializers exceed this many bytes, every initializer of at least
    /// <see cref="ExternalDataMinBytes"/> goes to <c>FILE.onnx_data</c> (protobuf cannot hold 2 GiB). Tests lower it.
    /// </summary>
    public long ExternalDataThreshold { get; init; } = 2_000_000_000;

    /// <summary>Initializers smaller than this stay inline even when external data is used (as onnx's own default).</summary>
    public long ExternalDataMinBytes { get; init; } = 1024;

    /// <summary>Reports bytes written while the file(s) are written (reported synchronously, every few MB).</summary>
    public IProgress<OnnxExportProgress>? Progress { get; init; }

    /// <summary>
    /// Write the encoder with ONNX Runtime's <c>com.microsoft</c> contrib ops (<c>EmbedLayerNormalization</c>,
    /// <c>Attention</c>, <c>SkipLayerNormalization</c>, <c>BiasGelu</c>/<c>FastGelu</c>), as ORT's transformer
    /// optimizer would; the file then needs ONNX Runtime. Same inputs and outputs as the plain graph.
    /// </summary>
    public bool Fused { get; init; }

    /// <summary>Quantization of the encoder's Linear layers (plain or fused graph).</summary>
    public OnnxQuantization Quantize { get; init; } = OnnxQuantization.None;
}

/// <summary>How far writing the ONNX file(s) has got.</summary>
public readonly record struct OnnxExportProgress(long BytesWritten, long TotalBytes);

/// <summary>What an export wrote.</summary>
/// <param name="ExternalDataPath">the <c>.onnx_data</c> file, or null when all weights are inline</param>
public sealed record OnnxExportResult(
    string Path, string? ExternalDataPath, OnnxExportTask Task, int Opset,
    IReadOnlyList<string> Inputs, IReadOnlyList<string> Outputs, int Nodes, int Initializers, long InitializerBytes);

/// <summary>
/// Writes a BERT model as the plain ONNX graph <c>torch.onnx.export</c> makes of the Hugging Face model (transformers
/// v4.5.1, eval mode): the same input/output names, standard ops only, weights as torch leaves them (MatMul weights
/// anonymous and transposed, biases/embeddings/LayerNorm/Gemm weights under their state-dict names). Works from a
/// config and an HF-named state dict, so any head the checkpoint has can be exported.
/// </summary>
public static class OnnxExporter
{
    public static readonly IReadOnlyList<int> SupportedOpsets = [13, 14, 17];

    public static readonly IReadOnlyList<string> TaskNames =
        ["auto", "base", "pretraining", "masked-lm", "sequence-classification", "token-classification", "question-answering"];

    public static OnnxExportTask ParseTask(string name) => name.ToLowerInvariant() switch
    {
        "auto" => OnnxExportTask.Auto,
        "base" => OnnxExportTask.Base,
        "pretraining" => OnnxExportTask.Pretraining,
        "masked-lm" => OnnxExportTask.MaskedLM,
        "sequence-classification" => OnnxExportTask.SequenceClassification,
        "token-classification" => OnnxExportTask.TokenClassification,
        "question-answering" => OnnxExportTask.QuestionAnswering,
        _ => throw new ArgumentException($"--task: unknown task '{name}' (expected one of: {string.Join(", ", TaskNames)})"),
    };

    public static string TaskName(OnnxExportTask task) => TaskNames[(int)task];

    public static readonly IReadOnlyList<string> QuantizationNames = ["none", "int8"];

    /// <summary><c>none</c> or <c>int8</c> (dynamic int8, <see cref="OnnxQuantization.Int8Dynamic"/>).</summary>
    public static OnnxQuantization ParseQuantization(string name) => name.ToLowerInvariant() switch
    {
        "none" => OnnxQuantization.None,
        "int8" => OnnxQuantization.Int8Dynamic,
        _ => throw new ArgumentException($"--quantize: unknown value '{name}' (expected one of: {string.Join(", ", QuantizationNames)})"),
    };

    public static string QuantizationName(OnnxQuantization q) => q switch
    {
        OnnxQuantization.None => "none",
        OnnxQuantization.Int8Dynamic => "int8",
        _ => throw new ArgumentException($"unknown quantization {q}"),
    };

    /// <summary>The HF output names of a task's graph (Base: with pooler_output when <paramref name="pooler"/>).</summary>
    public static IReadOnlyList<string> OutputNames(OnnxExportTask task, bool pooler = true) => task switch
    {
        OnnxExportTask.Base => pooler ? ["last_hidden_state", "pooler_output"] : ["last_hidden_state"],
        OnnxExportTask.Pretraining => ["prediction_logits", "seq_relationship_logits"],
        OnnxExportTask.MaskedLM or OnnxExportTask.SequenceClassification or OnnxExportTask.TokenClassification => ["logits"],
        OnnxExportTask.QuestionAnswering => ["start_logits", "end_logits"],
        _ => throw new ArgumentException($"no outputs for task {task}"),
    };

    /// <summary>
    /// The task a state dict was saved from: <c>qa_outputs.*</c> → question answering; <c>classifier.weight</c> →
    /// token classification when the config's <c>architectures</c> says so or there is no pooler (HF's token head has
    /// none), else sequence classification; <c>cls.predictions.*</c> with <c>cls.seq_relationship.*</c> → pretraining,
    /// alone → masked LM; otherwise the bare encoder.
    /// </summary>
    public static OnnxExportTask DetectTask(BertConfig config, IEnumerable<string> keys)
    {
        var set = keys.Select(StateDictLoader.Canonical).ToHashSet(StringComparer.Ordinal);
        bool Has(string k) => set.Contains(k) || set.Contains("bert." + k);
        var arch = Architectures(config);
        if (Has("qa_outputs.weight")) return OnnxExportTask.QuestionAnswering;
        if (Has("classifier.weight"))
        {
            if (arch.Contains("BertForTokenClassification")) return OnnxExportTask.TokenClassification;
            if (arch.Contains("BertForSequenceClassification")) return OnnxExportTask.SequenceClassification;
            return Has("pooler.dense.weight") ? OnnxExportTask.SequenceClassification : OnnxExportTask.TokenClassification;
        }
        var mlm = Has("cls.predictions.bias") || Has("cls.predictions.decoder.bias") || Has("cls.predictions.transform.dense.weight");
        var nsp = Has("cls.seq_relationship.weight");
        if (mlm && nsp) return OnnxExportTask.Pretraining;
        if (mlm) return OnnxExportTask.MaskedLM;
        return OnnxExportTask.Base;
    }

    static HashSet<string> Architectures(BertConfig config)
    {
        var result = new HashSet<string>(StringComparer.Ordinal);
        if (config.Extra?.TryGetValue("architectures", out var a) == true && a.ValueKind == JsonValueKind.Array)
            foreach (var e in a.EnumerateArray())
                if (e.ValueKind == JsonValueKind.String) result.Add(e.GetString()!);
        return result;
    }

    /// <summary>Exports the model directory <paramref name="modelDir"/> (its config and weights) to <paramref name="outputPath"/>.</summary>
    public static OnnxExportResult ExportDirectory(string modelDir, string outputPath, OnnxExportOptions? options = null)
    {
        var dir = ModelDirectory.Open(modelDir);
        using var scope = NewDisposeScope();
        var weights = CheckpointFiles.LoadWeights(dir.WeightsPath);
        return Export(dir.Config, weights, outputPath, options, dir.WeightsPath);
    }

    /// <summary>
    /// Writes the ONNX graph of <paramref name="config"/> + <paramref name="stateDict"/> (HF names, with or without the
    /// <c>bert.</c> prefix; old <c>gamma</c>/<c>beta</c> accepted) to <paramref name="outputPath"/>, atomically (temp file,
    /// then rename). Weights are written as float32. <paramref name="source"/> names the weights in error messages.
    /// </summary>
    public static OnnxExportResult Export(BertConfig config, IReadOnlyDictionary<string, Tensor> stateDict, string outputPath,
        OnnxExportOptions? options = null, string source = "state dict")
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(stateDict);
        ArgumentException.ThrowIfNullOrEmpty(outputPath);
        options ??= new OnnxExportOptions();
        if (Directory.Exists(outputPath))
            throw new ArgumentException($"output '{outputPath}' is a directory; give a file path such as {System.IO.Path.Combine(outputPath, "model.onnx")}");
        if (!SupportedOpsets.Contains(options.Opset))
            throw new ArgumentException($"--opset: {options.Opset} is not supported (expected one of: {string.Join(", ", SupportedOpsets)})");
        if (!Enum.IsDefined(options.Quantize))
            throw new ArgumentException($"unknown quantization {options.Quantize}");
        config.Validate(source);
        var task = options.Task == OnnxExportTask.Auto ? DetectTask(config, stateDict.Keys) : options.Task;

        using var scope = NewDisposeScope();
        using var _ = no_grad();
        using var graph = new OnnxGraphBuilder();
        new BertOnnxGraph(config, new Weights(stateDict, source), graph, options.Opset, options.Fused,
            options.Quantize == OnnxQuantization.Int8Dynamic).Build(task);
        return OnnxModelFile.Write(graph, outputPath, task, options);
    }

    /// <summary>State-dict access by HF name, tolerant of the <c>bert.</c> prefix and TF-era names; checks shapes.</summary>
    sealed class Weights
    {
        readonly Dictionary<string, Tensor> _byName = new(StringComparer.Ordinal);
        readonly string _source;

        public Weights(IReadOnlyDictionary<string, Tensor> stateDict, string source)
        {
            _source = source;
            foreach (var (k, t) in stateDict) _byName[StateDictLoader.Canonical(k)] = t;
        }

        public bool Has(string key) => Find(key) is not null;

        public long[]? ShapeOf(string key) => Find(key)?.shape;

        Tensor? Find(string key)
        {
            if (_byName.TryGetValue(key, out var t)) return t;
            var other = key.StartsWith("bert.", StringComparison.Ordinal) ? key["bert.".Length..] : "bert." + key;
            return _byName.GetValueOrDefault(other);
        }

        /// <summary>The tensor <paramref name="key"/> as a new contiguous float32 CPU tensor of the expected shape.</summary>
        public Tensor Get(string key, params long[] shape)
        {
            var t = Find(key) ?? throw new InvalidDataException($"{_source}: tensor '{key}' is missing (needed for the ONNX graph)");
            if (!t.shape.SequenceEqual(shape))
                throw new InvalidDataException(
                    $"{_source}: '{key}' has shape [{string.Join(", ", t.shape)}], the config expects [{string.Join(", ", shape)}]");
            if (!t.is_floating_point())
                throw new InvalidDataException($"{_source}: '{key}' has dtype {t.dtype}, expected a floating-point tensor");
            return t.detach().cpu().to(ScalarType.Float32).contiguous();
        }
    }

    /// <summary>
    /// The HF BERT forward pass, node by node, as torch.onnx.export traces it; with <paramref name="fused"/> the encoder
    /// as ORT's transformer optimizer fuses it, with <paramref name="int8"/> its Linear layers dynamically quantized.
    /// </summary>
    sealed class BertOnnxGraph(BertConfig c, Weights w, OnnxGraphBuilder g, int opset, bool fused = false, bool int8 = false)
    {
        const string Batch = "batch_size", Seq = "sequence_length";
        string _prefix = "";   // "bert." for task models, "" for BertModel
        string _scope = "";    // "/bert" or ""

        public void Build(OnnxExportTask task)
        {
            var withPrefix = task != OnnxExportTask.Base;
            _prefix = withPrefix ? "bert." : "";
            _scope = withPrefix ? "/bert" : "";
            var pooler = task switch
            {
                OnnxExportTask.Base => w.Has("pooler.dense.weight"),
                OnnxExportTask.Pretraining or OnnxExportTask.SequenceClassification => true,
                _ => false,
            };

            var ids = g.Input("input_ids", OnnxDataType.Int64, Batch, Seq);
            var mask = g.Input("attention_mask", OnnxDataType.Int64, Batch, Seq);
            var types = g.Input("token_type_ids", OnnxDataType.Int64, Batch, Seq);

            string hidden;
            if (fused)
            {
                var (emb, mask32) = FusedEmbeddings(ids, types, mask);
                hidden = emb;
                for (var i = 0; i < c.NumHiddenLayers; i++) hidden = FusedLayer(i, hidden, mask32, task == OnnxExportTask.Base && i == c.NumHiddenLayers - 1 ? "last_hidden_state" : null);
            }
            else
            {
                var extended = ExtendedMask(mask);
                hidden = Embeddings(ids, types);
                for (var i = 0; i < c.NumHiddenLayers; i++) hidden = Layer(i, hidden, extended, task == OnnxExportTask.Base && i == c.NumHiddenLayers - 1 ? "last_hidden_state" : null);
            }
            var pooled = pooler ? Pooler(hidden, task == OnnxExportTask.Base ? "pooler_output" : null) : null;

            var H = c.HiddenSize;
            switch (task)
            {
                case OnnxExportTask.Base:
                    g.Output("last_hidden_state", OnnxDataType.Float, Batch, Seq, H);
                    if (pooled is not null) g.Output("pooler_output", OnnxDataType.Float, Batch, H);
                    break;
                case OnnxExportTask.Pretraining:
                    LmHead(hidden, "prediction_logits");
                    g.Scope = "/cls/seq_relationship";
                    Gemm(pooled!, "cls.seq_relationship", 2, "seq_relationship_logits");
                    g.Output("prediction_logits", OnnxDataType.Float, Batch, Seq, c.VocabSize);
                    g.Output("seq_relationship_logits", OnnxDataType.Float, Batch, 2);
                    break;
                case OnnxExportTask.MaskedLM:
                    LmHead(hidden, "logits");
                    g.Output("logits", OnnxDataType.Float, Batch, Seq, c.VocabSize);
                    break;
                case OnnxExportTask.SequenceClassification:
                {
                    var labels = NumLabels();
                    g.Scope = "/classifier";
                    Gemm(pooled!, "classifier", labels, "logits");
                    g.Output("logits", OnnxDataType.Float, Batch, labels);
                    break;
                }
                case OnnxExportTask.TokenClassification:
                {
                    var labels = NumLabels();
                    g.Scope = "/classifier";
                    Linear(hidden, "classifier", H, labels, "logits");
                    g.Output("logits", OnnxDataType.Float, Batch, Seq, labels);
                    break;
                }
                case OnnxExportTask.QuestionAnswering:
                {
                    g.Scope = "/qa_outputs";
                    var both = Linear(hidden, "qa_outputs", H, 2);
                    g.Scope = "";
                    var parts = g.Ops("Split", [both, g.Longs(1, 1)], 2, null, OnnxAttribute.Int("axis", -1));
                    g.Op("Squeeze", [parts[0], g.Longs(-1)], "start_logits");
                    g.Op("Squeeze", [parts[1], g.Longs(-1)], "end_logits");
                    g.Output("start_logits", OnnxDataType.Float, Batch, Seq);
                    g.Output("end_logits", OnnxDataType.Float, Batch, Seq);
                    break;
                }
                default:
                    throw new ArgumentException($"cannot export task {task}");
            }
        }

        long NumLabels()
        {
            const string key = "classifier.weight";
            var shape = w.ShapeOf(key) ?? throw new InvalidDataException($"the weights have no '{key}': not a classification checkpoint");
            if (shape.Length != 2 || shape[0] < 1 || shape[1] != c.HiddenSize)
                throw new InvalidDataException($"'{key}' has shape [{string.Join(", ", shape)}], expected [num_labels, {c.HiddenSize}]");
            return shape[0];
        }

        // (1 - mask[:, None, None, :]) * -10000, as HF v4.5.1's get_extended_attention_mask.
        string ExtendedMask(string mask)
        {
            g.Scope = _scope;
            var u1 = g.Op("Unsqueeze", [mask, g.Longs(1)]);
            var u2 = g.Op("Unsqueeze", [u1, g.Longs(2)]);
            var f = g.Op("Cast", [u2], null, OnnxAttribute.Int("to", (long)OnnxDataType.Float));
            var inv = g.Op("Sub", [g.Scalar(1.0f), f]);
            return g.Op("Mul", [inv, g.Scalar(-10000.0f)]);
        }

        string Embeddings(string ids, string types)
        {
            var p = _prefix + "embeddings.";
            var s = _scope + "/embeddings";
            var H = c.HiddenSize;
            g.Scope = s + "/word_embeddings";
            var words = g.Op("Gather", [g.Initializer(p + "word_embeddings.weight", w.Get(p + "word_embeddings.weight", c.VocabSize, H)), ids]);

            // position_ids = self.position_ids[:, 0:seq_length]
            g.Scope = s;
            var shape = g.Op("Shape", [ids]);
            var len = g.Op("Gather", [shape, g.LongScalar(1)], null, OnnxAttribute.Int("axis", 0));
            var end = g.Op("Unsqueeze", [len, g.Longs(0)]);
            var positionIds = g.Initializer(p + "position_ids", arange(c.MaxPositionEmbeddings, dtype: ScalarType.Int64).unsqueeze(0).contiguous());
            var pos = g.Op("Slice", [positionIds, g.Longs(0), end, g.Longs(1), g.Longs(1)]);

            g.Scope = s + "/token_type_embeddings";
            var typeEmb = g.Op("Gather", [g.Initializer(p + "token_type_embeddings.weight", w.Get(p + "token_type_embeddings.weight", c.TypeVocabSize, H)), types]);
            g.Scope = s;
            var sum = g.Op("Add", [words, typeEmb]);
            g.Scope = s + "/position_embeddings";
            var posEmb = g.Op("Gather", [g.Initializer(p + "position_embeddings.weight", w.Get(p + "position_embeddings.weight", c.MaxPositionEmbeddings, H)), pos]);
            g.Scope = s;
            var all = g.Op("Add", [sum, posEmb]);
            return LayerNorm(all, p + "LayerNorm", s + "/LayerNorm");
        }

        string Layer(int i, string hidden, string mask, string? outputName)
        {
            var k = $"{_prefix}encoder.layer.{i}.";
            var s = $"{_scope}/encoder/layer.{i}";
            var H = c.HiddenSize;
            var A = c.NumAttentionHeads;
            var D = c.HeadDim;

            string Heads(string name, long[] perm)
            {
                g.Scope = $"{s}/attention/self/{name}";
                var x = EncoderLinear(hidden, $"{k}attention.self.{name}", H, H);
                g.Scope = $"{s}/attention/self";
                var r = g.Op("Reshape", [x, g.Longs(0, 0, A, D)]);
                return g.Op("Transpose", [r], null, OnnxAttribute.IntList("perm", perm));
            }

            var q = Heads("query", [0, 2, 1, 3]);
            var kT = Heads("key", [0, 2, 3, 1]);
            var v = Heads("value", [0, 2, 1, 3]);
            g.Scope = $"{s}/attention/self";
            var scores = g.Op("MatMul", [q, kT]);
            var scaled = g.Op("Div", [scores, g.Scalar((float)Math.Sqrt(D))]);
            var masked = g.Op("Add", [scaled, mask]);
            var probs = g.Op("Softmax", [masked], null, OnnxAttribute.Int("axis", -1));
            var ctx = g.Op("MatMul", [probs, v]);
            var t = g.Op("Transpose", [ctx], null, OnnxAttribute.IntList("perm", 0, 2, 1, 3));
            var merged = g.Op("Reshape", [t, g.Longs(0, 0, H)]);

            g.Scope = $"{s}/attention/output/dense";
            var ao = EncoderLinear(merged, $"{k}attention.output.dense", H, H);
            g.Scope = $"{s}/attention/output";
            var res1 = g.Op("Add", [ao, hidden]);
            var attnOut = LayerNorm(res1, $"{k}attention.output.LayerNorm", $"{s}/attention/output/LayerNorm");

            g.Scope = $"{s}/intermediate/dense";
            var inter = EncoderLinear(attnOut, $"{k}intermediate.dense", H, c.IntermediateSize);
            g.Scope = $"{s}/intermediate/intermediate_act_fn";
            var act = Activation(inter);

            g.Scope = $"{s}/output/dense";
            var o = EncoderLinear(act, $"{k}output.dense", c.IntermediateSize, H);
            g.Scope = $"{s}/output";
            var res2 = g.Op("Add", [o, attnOut]);
            return LayerNorm(res2, $"{k}output.LayerNorm", $"{s}/output/LayerNorm", outputName);
        }

        // ---- Fused graph (com.microsoft contrib ops, as onnxruntime.transformers' optimizer emits for model_type bert) ----

        /// <summary>
        /// Casts the int64 inputs to int32 (what the contrib ops take) and runs <c>EmbedLayerNormalization</c>:
        /// LayerNorm(word[ids] + position[0..L) + token_type[types]). Returns the embeddings and the int32 mask.
        /// </summary>
        (string Hidden, string Mask32) FusedEmbeddings(string ids, string types, string mask)
        {
            var p = _prefix + "embeddings.";
            var H = c.HiddenSize;
            g.Scope = _scope;
            var to32 = OnnxAttribute.Int("to", (long)OnnxDataType.Int32);
            var mask32 = g.Op("Cast", [mask], null, to32);
            g.Scope = _scope + "/embeddings";
            var ids32 = g.Op("Cast", [ids], null, to32);
            var types32 = g.Op("Cast", [types], null, to32);
            var word = g.Initializer(p + "word_embeddings.weight", w.Get(p + "word_embeddings.weight", c.VocabSize, H));
            var pos = g.Initializer(p + "position_embeddings.weight", w.Get(p + "position_embeddings.weight", c.MaxPositionEmbeddings, H));
            var type = g.Initializer(p + "token_type_embeddings.weight", w.Get(p + "token_type_embeddings.weight", c.TypeVocabSize, H));
            var gamma = g.Initializer(p + "LayerNorm.weight", w.Get(p + "LayerNorm.weight", H));
            var beta = g.Initializer(p + "LayerNorm.bias", w.Get(p + "LayerNorm.bias", H));
            // Outputs: the embeddings and mask_index. mask_index ([B], the count of ones per row) is only right for
            // right-padded masks, so Attention reads the raw [B, L] mask instead (any mask, like the plain graph).
            var outs = g.ContribOps("EmbedLayerNormalization", [ids32, types32, word, pos, type, gamma, beta, mask32], 2,
                OnnxAttribute.Float("epsilon", (float)c.LayerNormEps));
            return (outs[0], mask32);
        }

        string FusedLayer(int i, string hidden, string mask32, string? outputName)
        {
            var k = $"{_prefix}encoder.layer.{i}.";
            var s = $"{_scope}/encoder/layer.{i}";
            var H = c.HiddenSize;
            var A = c.NumAttentionHeads;

            g.Scope = $"{s}/attention/self";
            var parts = new[] { "query", "key", "value" };
            var heads = OnnxAttribute.Int("num_heads", A);
            string ctx;
            if (int8)
            {
                // Q, K and V each as DynamicQuantizeMatMul (int8 weight, + bias), then MultiHeadAttention on them with
                // the raw mask: measured faster than QAttention, whose CPU kernel runs one small GEMM per head.
                var qkv = parts.Select(n =>
                {
                    using var weight = w.Get($"{k}attention.self.{n}.weight", H, H);
                    using var wT = weight.t().contiguous();
                    var (wq, ws) = QuantizedWeight($"{k}attention.self.{n}", wT);
                    var bias = g.Initializer($"{k}attention.self.{n}.bias", w.Get($"{k}attention.self.{n}.bias", H));
                    return g.Contrib("DynamicQuantizeMatMul", [hidden, wq, ws, "", bias]);
                }).ToArray();
                ctx = g.Contrib("MultiHeadAttention", [qkv[0], qkv[1], qkv[2], "", mask32], null, heads);
            }
            else
            {
                // Attention: Q, K, V packed into one [H, 3H] weight (columns q | k | v, heads contiguous) and a [3H]
                // bias; the raw [B, L] int32 mask (0 → mask_filter_value −10000 added to the scores, as HF v4.5).
                var qkvBias = g.Initializer($"{k}attention.self.qkv.bias",
                    cat(parts.Select(n => w.Get($"{k}attention.self.{n}.bias", H)).ToList(), 0).contiguous());
                var qkvT = g.Initializer($"{k}attention.self.qkv.weight",
                    cat(parts.Select(n => w.Get($"{k}attention.self.{n}.weight", H, H).t()).ToList(), 1).contiguous());
                ctx = g.Contrib("Attention", [hidden, qkvT, qkvBias, mask32], null, heads);
            }

            g.Scope = $"{s}/attention/output/dense";
            var ao = MatMulNoBias(ctx, $"{k}attention.output.dense", H, H);
            var attnOut = SkipLayerNorm(ao, hidden, $"{k}attention.output", $"{s}/attention/output/LayerNorm");

            g.Scope = $"{s}/intermediate/dense";
            var inter = MatMulNoBias(attnOut, $"{k}intermediate.dense", H, c.IntermediateSize);
            var interBias = g.Initializer($"{k}intermediate.dense.bias", w.Get($"{k}intermediate.dense.bias", c.IntermediateSize));
            g.Scope = $"{s}/intermediate/intermediate_act_fn";
            var act = c.HiddenAct switch
            {
                "gelu" or "gelu_python" => g.Contrib("BiasGelu", [inter, interBias]),        // exact erf GELU of (x + bias)
                "gelu_new" or "gelu_fast" => g.Contrib("FastGelu", [inter, interBias]),      // the tanh approximation
                "relu" => g.Op("Relu", [g.Op("Add", [interBias, inter])]),
                _ => throw new ArgumentException($"hidden_act '{c.HiddenAct}' cannot be exported"),
            };

            g.Scope = $"{s}/output/dense";
            var o = MatMulNoBias(act, $"{k}output.dense", c.IntermediateSize, H);
            return SkipLayerNorm(o, attnOut, $"{k}output", $"{s}/output/LayerNorm", outputName);
        }

        /// <summary>SkipLayerNormalization: LayerNorm(x + skip + <c>{module}.dense.bias</c>) with <c>{module}.LayerNorm.*</c>.</summary>
        string SkipLayerNorm(string x, string skip, string module, string scope, string? outputName = null)
        {
            var H = c.HiddenSize;
            var bias = g.Initializer(module + ".dense.bias", w.Get(module + ".dense.bias", H));
            g.Scope = scope;
            var gamma = g.Initializer(module + ".LayerNorm.weight", w.Get(module + ".LayerNorm.weight", H));
            var beta = g.Initializer(module + ".LayerNorm.bias", w.Get(module + ".LayerNorm.bias", H));
            return g.Contrib("SkipLayerNormalization", [x, skip, gamma, beta, bias], outputName,
                OnnxAttribute.Float("epsilon", (float)c.LayerNormEps));
        }

        /// <summary>x · Wᵀ without the bias (the fused op after it adds it): MatMul, or DynamicQuantizeMatMul when int8.</summary>
        string MatMulNoBias(string x, string module, long inFeatures, long outFeatures)
        {
            using var weight = w.Get(module + ".weight", outFeatures, inFeatures);
            using var wT = weight.t().contiguous();
            if (!int8) return g.Op("MatMul", [x, g.AnonymousInitializer("MatMul", wT.clone())]);
            var (wq, ws) = QuantizedWeight(module, wT);
            return g.Contrib("DynamicQuantizeMatMul", [x, wq, ws]);
        }

        // ---- Dynamic int8 (as onnxruntime.quantization.quantize_dynamic: uint8 activations, int8 weights) ----

        readonly Dictionary<string, (string Q, string Scale, string ZeroPoint)> _quantized = new(StringComparer.Ordinal);

        /// <summary>DynamicQuantizeLinear of an activation (uint8, per tensor, asymmetric); one per value, shared by its readers.</summary>
        (string Q, string Scale, string ZeroPoint) DynamicQuantize(string x)
        {
            if (_quantized.TryGetValue(x, out var q)) return q;
            var outs = g.Ops("DynamicQuantizeLinear", [x], 3, null);
            return _quantized[x] = (outs[0], outs[1], outs[2]);
        }

        /// <summary>
        /// A transposed [in, out] weight as symmetric int8 per output column (scale = max|w| / 127, zero point 0):
        /// initializers <c>{module}.weight_quantized</c> (int8) and <c>{module}.weight_scale</c> (float [out]).
        /// </summary>
        (string Q, string Scale) QuantizedWeight(string module, Tensor wT)
        {
            var amax = wT.abs().amax([0]);
            var scale = where(amax > 0, amax / 127f, ones_like(amax)).contiguous();
            var q = (wT / scale).round().clamp(-127, 127).to(ScalarType.Int8).contiguous();
            return (g.Initializer(module + ".weight_quantized", q), g.Initializer(module + ".weight_scale", scale));
        }

        /// <summary>An encoder nn.Linear on a 3-D activation: <see cref="Linear"/>, or its dynamic int8 form.</summary>
        string EncoderLinear(string x, string module, long inFeatures, long outFeatures)
        {
            if (!int8) return Linear(x, module, inFeatures, outFeatures);
            // DynamicQuantizeLinear → MatMulInteger → Cast → Mul(x_scale · w_scale) → Add(bias, ·): standard ONNX ops
            // (quantize_dynamic's graph); ORT fuses it into DynamicQuantizeMatMul at load.
            var (xq, xs, xzp) = DynamicQuantize(x);
            string wq, ws;
            using (var weight = w.Get(module + ".weight", outFeatures, inFeatures))
            using (var wT = weight.t().contiguous())
                (wq, ws) = QuantizedWeight(module, wT);
            var mm = g.Op("MatMulInteger", [xq, wq, xzp]);
            var f = g.Op("Cast", [mm], null, OnnxAttribute.Int("to", (long)OnnxDataType.Float));
            var scale = g.Op("Mul", [xs, ws]);
            var deq = g.Op("Mul", [f, scale]);
            return g.Op("Add", [g.Initializer(module + ".bias", w.Get(module + ".bias", outFeatures)), deq]);
        }

        string Pooler(string hidden, string? outputName)
        {
            g.Scope = _scope + "/pooler";
            var first = g.Op("Gather", [hidden, g.LongScalar(0)], null, OnnxAttribute.Int("axis", 1));
            g.Scope = _scope + "/pooler/dense";
            var d = Gemm(first, _prefix + "pooler.dense", c.HiddenSize);
            g.Scope = _scope + "/pooler/activation";
            return g.Op("Tanh", [d], outputName);
        }

        void LmHead(string hidden, string outputName)
        {
            var H = c.HiddenSize;
            g.Scope = "/cls/predictions/transform/dense";
            var d = Linear(hidden, "cls.predictions.transform.dense", H, H);
            g.Scope = "/cls/predictions/transform/transform_act_fn";
            var a = Activation(d);
            var n = LayerNorm(a, "cls.predictions.transform.LayerNorm", "/cls/predictions/transform/LayerNorm");
            // The decoder is tied to the word embeddings; torch exports it as its own transposed [H, V] weight.
            g.Scope = "/cls/predictions/decoder";
            var decoderKey = w.Has("cls.predictions.decoder.weight") ? "cls.predictions.decoder.weight" : _prefix + "embeddings.word_embeddings.weight";
            using var weight = w.Get(decoderKey, c.VocabSize, H);
            var mm = g.Op("MatMul", [n, g.AnonymousInitializer("MatMul", weight.t().contiguous())]);
            var biasKey = w.Has("cls.predictions.bias") ? "cls.predictions.bias" : "cls.predictions.decoder.bias";
            g.Op("Add", [g.Initializer(biasKey, w.Get(biasKey, c.VocabSize)), mm], outputName);
        }

        /// <summary>nn.Linear on a 3-D activation: MatMul with the anonymous transposed weight [in, out], then Add(bias, ·).</summary>
        string Linear(string x, string module, long inFeatures, long outFeatures, string? outputName = null)
        {
            using var weight = w.Get(module + ".weight", outFeatures, inFeatures);
            var mm = g.Op("MatMul", [x, g.AnonymousInitializer("MatMul", weight.t().contiguous())]);
            return g.Op("Add", [g.Initializer(module + ".bias", w.Get(module + ".bias", outFeatures)), mm], outputName);
        }

        /// <summary>nn.Linear on a 2-D activation: Gemm(x, W, b, transB=1) with the named weight and bias.</summary>
        string Gemm(string x, string module, long outFeatures, string? outputName = null)
        {
            var weight = g.Initializer(module + ".weight", w.Get(module + ".weight", outFeatures, c.HiddenSize));
            var bias = g.Initializer(module + ".bias", w.Get(module + ".bias", outFeatures));
            return g.Op("Gemm", [x, weight, bias], outputName,
                OnnxAttribute.Float("alpha", 1f), OnnxAttribute.Float("beta", 1f), OnnxAttribute.Int("transB", 1));
        }

        string LayerNorm(string x, string module, string scope, string? outputName = null)
        {
            g.Scope = scope;
            var weight = g.Initializer(module + ".weight", w.Get(module + ".weight", c.HiddenSize));
            var bias = g.Initializer(module + ".bias", w.Get(module + ".bias", c.HiddenSize));
            var eps = (float)c.LayerNormEps;
            if (opset >= 17)
                return g.Op("LayerNormalization", [x, weight, bias], outputName,
                    OnnxAttribute.Int("axis", -1), OnnxAttribute.Float("epsilon", eps));
            var mean = g.Op("ReduceMean", [x], null, OnnxAttribute.IntList("axes", -1));
            var d = g.Op("Sub", [x, mean]);
            var sq = g.Op("Pow", [d, g.Scalar(2f)]);
            var variance = g.Op("ReduceMean", [sq], null, OnnxAttribute.IntList("axes", -1));
            var plus = g.Op("Add", [variance, g.Scalar(eps)]);
            var std = g.Op("Sqrt", [plus]);
            var norm = g.Op("Div", [d, std]);
            var scaled = g.Op("Mul", [norm, weight]);
            return g.Op("Add", [scaled, bias], outputName);
        }

        string Activation(string x)
        {
            switch (c.HiddenAct)
            {
                case "gelu" or "gelu_python":
                {
                    // x * 0.5 * (1 + erf(x / sqrt(2))), as torch exports F.gelu.
                    var div = g.Op("Div", [x, g.Scalar(1.4142135381698608f)]);
                    var erf = g.Op("Erf", [div]);
                    var plus = g.Op("Add", [erf, g.Scalar(1f)]);
                    var mul = g.Op("Mul", [x, plus]);
                    return g.Op("Mul", [mul, g.Scalar(0.5f)]);
                }
                case "gelu_new" or "gelu_fast":
                {
                    // 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))), HF's gelu_new.
                    var half = g.Op("Mul", [g.Scalar(0.5f), x]);
                    var cube = g.Op("Pow", [x, g.Scalar(3f)]);
                    var scaled = g.Op("Mul", [g.Scalar(0.044715f), cube]);
                    var inner = g.Op("Add", [x, scaled]);
                    var arg = g.Op("Mul", [g.Scalar((float)Math.Sqrt(2.0 / Math.PI)), inner]);
                    var th = g.Op("Tanh", [arg]);
                    var plus = g.Op("Add", [g.Scalar(1f), th]);
                    return g.Op("Mul", [half, plus]);
                }
                case "relu":
                    return g.Op("Relu", [x]);
                default:
                    throw new ArgumentException($"hidden_act '{c.HiddenAct}' cannot be exported");
            }
        }
    }

    /// <summary>Serialises a built graph as a ModelProto file (+ external data when large), atomically.</summary>
    static class OnnxModelFile
    {
        // ModelProto: ir_version 1, producer_name 2, producer_version 3, graph 7, opset_import 8 (domain 1, version 2),
        // metadata_props 14 (key 1, value 2).
        static ProtoMessage ModelProto(OnnxGraphBuilder graph, OnnxExportTask task, OnnxExportOptions options)
        {
            var m = new ProtoMessage()
                .Int(1, options.Opset >= 17 ? 8 : 7)
                .String(2, "BertSharp")
                .String(3, typeof(OnnxExporter).Assembly.GetName().Version?.ToString() ?? "0")
                .Message(7, graph.ToProto("main_graph"))
                .Message(8, new ProtoMessage().Int(2, options.Opset));
            foreach (var domain in graph.Domains) m.Message(8, new ProtoMessage().String(1, domain).Int(2, 1));
            m.Message(14, new ProtoMessage().String(1, "bertsharp.task").String(2, TaskName(task)));
            if (options.Fused) m.Message(14, new ProtoMessage().String(1, "bertsharp.graph").String(2, "fused"));
            if (options.Quantize != OnnxQuantization.None)
                m.Message(14, new ProtoMessage().String(1, "bertsharp.quantize").String(2, QuantizationName(options.Quantize)));
            return m;
        }

        public static OnnxExportResult Write(OnnxGraphBuilder graph, string outputPath, OnnxExportTask task, OnnxExportOptions options)
        {
            var full = System.IO.Path.GetFullPath(outputPath);
            var dir = System.IO.Path.GetDirectoryName(full)!;
            Directory.CreateDirectory(dir);
            var dataName = System.IO.Path.GetFileName(full) + "_data";
            var dataPath = System.IO.Path.Combine(dir, dataName);
            var total = graph.Initializers.Sum(t => t.ByteLength);
            var external = total > options.ExternalDataThreshold
                ? graph.Initializers.Where(t => t.ByteLength >= options.ExternalDataMinBytes).ToList()
                : [];
            var progress = new ProgressCounter(options.Progress, total);

            var tag = Guid.NewGuid().ToString("N");
            var tmpModel = System.IO.Path.Combine(dir, $".{System.IO.Path.GetFileName(full)}.tmp-{tag}");
            var tmpData = System.IO.Path.Combine(dir, $".{dataName}.tmp-{tag}");
            try
            {
                if (external.Count > 0)
                {
                    using var fs = new FileStream(tmpData, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20);
                    var counted = new ProgressStream(fs, progress);
                    foreach (var t in external)
                    {
                        var pad = (64 - fs.Position % 64) % 64;   // keep tensors 64-byte aligned for mmap consumers
                        for (var i = 0; i < pad; i++) fs.WriteByte(0);
                        t.External = (dataName, fs.Position);
                        t.WriteData(counted);
                    }
                    fs.Flush(flushToDisk: true);
                }
                var model = ModelProto(graph, task, options);
                if (model.Size >= int.MaxValue)
                    throw new InvalidOperationException(
                        $"the ONNX model would be {model.Size:N0} bytes, over protobuf's 2 GiB limit; lower ExternalDataThreshold");
                progress.Total = progress.Done + model.Size;
                using (var fs = new FileStream(tmpModel, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
                {
                    model.WriteTo(new ProgressStream(fs, progress));
                    fs.Flush(flushToDisk: true);
                }
                progress.Finish();
                if (external.Count > 0) File.Move(tmpData, dataPath, overwrite: true);
                File.Move(tmpModel, full, overwrite: true);
            }
            catch
            {
                foreach (var p in new[] { tmpModel, tmpData })
                    try { File.Delete(p); } catch (IOException) { } catch (UnauthorizedAccessException) { }
                throw;
            }
            return new OnnxExportResult(full, external.Count > 0 ? dataPath : null, task, options.Opset,
                graph.Inputs.Select(i => i.Name).ToList(), graph.Outputs.Select(o => o.Name).ToList(),
                graph.NodeCount, graph.Initializers.Count, total);
        }
    }

    /// <summary>Bytes written so far, reported to an <see cref="IProgress{T}"/> at most every 4 MB.</summary>
    sealed class ProgressCounter(IProgress<OnnxExportProgress>? sink, long total)
    {
        long _reported = -1;
        public long Done { get; private set; }
        public long Total { get; set; } = total;

        public void Add(long n)
        {
            Done += n;
            if (sink is not null && Done - _reported >= 4 << 20) Report();
        }

        public void Finish() { if (sink is not null) Report(); }

        void Report()
        {
            _reported = Done;
            sink!.Report(new OnnxExportProgress(Done, Math.Max(Done, Total)));
        }
    }

    /// <summary>A write-only pass-through stream that counts what goes through it.</summary>
    sealed class ProgressStream(Stream inner, ProgressCounter counter) : Stream
    {
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => throw new NotSupportedException(); set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            counter.Add(buffer.Length);
        }
    }
}
