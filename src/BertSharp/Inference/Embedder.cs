using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using Microsoft.Extensions.AI;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Inference;

/// <summary>How <see cref="Embedder"/> runs; every null field takes the model directory's default.</summary>
public sealed record EmbedderOptions
{
    /// <summary>Pooling; default: the sentence-transformers Pooling module when the directory has one, else mean.</summary>
    public EmbeddingPooling? Pooling { get; init; }

    /// <summary>L2-normalise each vector; default: on when modules.json lists a Normalize module, else off.</summary>
    public bool? Normalize { get; init; }

    /// <summary>Texts per forward pass (texts are sorted by length first, so padding stays small).</summary>
    public int BatchSize { get; init; } = 32;

    /// <summary>
    /// Tokens per text, [CLS]/[SEP] included; longer texts are cut (and counted). Default: sentence_bert_config.json's
    /// max_seq_length, else tokenizer_config.json's model_max_length, else max_position_embeddings.
    /// </summary>
    public int? MaxLength { get; init; }

    /// <summary>float32, or bfloat16 for the transformer layers' matrix products (see ModelUtils.ToInferenceDType).</summary>
    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>Where the model runs (default CPU).</summary>
    public Device? Device { get; init; }

    /// <summary>Which hidden states are pooled: the last layer (default), an earlier one, or the average of the last four.</summary>
    public EmbeddingLayer Layer { get; init; } = EmbeddingLayer.Last;

    /// <summary>
    /// Null (default): texts longer than <see cref="MaxLength"/> are cut. A number S: they are split into windows of
    /// MaxLength tokens ([CLS] + MaxLength−2 text tokens + [SEP]) that overlap by S text tokens, and the window
    /// vectors are averaged weighted by their token counts (before normalisation).
    /// </summary>
    public int? Stride { get; init; }

    /// <summary>
    /// Which runtime runs the encoder: <see cref="InferenceEngine.Auto"/> (default: the measured fastest for the
    /// dtype, float32 → ONNX Runtime, bfloat16 → TorchSharp; earlier layers or a GPU → TorchSharp),
    /// <see cref="InferenceEngine.Torch"/>, or <see cref="InferenceEngine.Onnx"/> (ONNX Runtime on a cached export;
    /// float32, CPU, last layer only — anything else is an error). The vectors are the same either way (≤ 1e-5).
    /// </summary>
    public InferenceEngine Engine { get; init; } = InferenceEngine.Auto;

    /// <summary>
    /// Settings of the ONNX engine (cache folder, export options, threads); null: the defaults. An export with
    /// <c>Quantize = Int8Dynamic</c> (<c>--quantize int8</c>) selects the ONNX engine.
    /// </summary>
    public OnnxEngineOptions? Onnx { get; init; }
}

/// <summary>
/// Which hidden states <see cref="Embedder"/> pools: <c>-1</c> the last layer, <c>-2</c> the one before, …,
/// <c>-(L+1)</c> the embeddings output (as Hugging Face's <c>hidden_states[k]</c>); or <c>avg-last-4</c>, the
/// element-wise mean of the last four layers' outputs.
/// </summary>
public readonly record struct EmbeddingLayer(int Index, int AverageLast)
{
    public static EmbeddingLayer Last => new(-1, 0);

    public static EmbeddingLayer AverageOfLast4 => new(0, 4);

    public bool IsLast => AverageLast == 0 && Index == -1;

    public static EmbeddingLayer Parse(string text)
    {
        var t = text.Trim().ToLowerInvariant();
        if (t == "avg-last-4") return AverageOfLast4;
        if (int.TryParse(t, System.Globalization.NumberStyles.AllowLeadingSign, System.Globalization.CultureInfo.InvariantCulture, out var k) && k < 0)
            return new(k, 0);
        throw new ArgumentException($"--layer '{text}' is not supported (expected -1 for the last layer, -2, -3, … for earlier ones, or avg-last-4)");
    }

    public override string ToString() => AverageLast > 0 ? $"avg-last-{AverageLast}" : Index.ToString(System.Globalization.CultureInfo.InvariantCulture);
}

/// <summary>Vectors of one <see cref="Embedder.EmbedWithReport"/> call, in input order.</summary>
/// <param name="Vectors">row i belongs to text i</param>
/// <param name="Truncated">indices of the texts that were cut to <see cref="Embedder.MaxLength"/> tokens</param>
/// <param name="Tokens">tokens fed to the model, [CLS]/[SEP] included, padding excluded</param>
public sealed record EmbeddingResult(float[][] Vectors, IReadOnlyList<int> Truncated, long Tokens)
{
    /// <summary>With <see cref="EmbedderOptions.Stride"/>: the texts that were longer than MaxLength, each split into
    /// windows instead of cut (<see cref="Truncated"/> is then empty).</summary>
    public IReadOnlyList<int> Windowed { get; init; } = [];

    /// <summary>Windows the <see cref="Windowed"/> texts were split into, in all.</summary>
    public long Windows { get; init; }
}

/// <summary>
/// Sentence embeddings from any BERT encoder <see cref="ModelDirectory.Open"/> accepts: tokenise, sort by length,
/// run padded batches, pool (mean / cls / max / pooler, as sentence-transformers does), optionally L2-normalise, and
/// return the vectors in input order. Results do not depend on the batch size (padded positions are masked out).
/// Thread setup (<see cref="Runtime.Initialize"/>) is the caller's; calls on one instance are serialised.
/// Also an <see cref="IEmbeddingGenerator{TInput,TEmbedding}"/> for Microsoft.Extensions.AI consumers.
/// </summary>
public sealed class Embedder : IEmbeddingGenerator<string, Embedding<float>>
{
    readonly BertModel? _model;      // the torch engine's model (null on the ONNX engine)
    readonly OnnxEngine? _onnx;      // the ONNX engine's session (null on the torch engine)
    readonly object _gate = new();
    long[] _ids = [], _mask = [];    // input buffers reused across batches (the ONNX engine binds them)
    long _truncatedTotal;

    public BertTokenizer Tokenizer { get; }
    public BertConfig Config { get; }

    /// <summary>The engine the forward passes run on (<see cref="InferenceEngine.Auto"/> resolved).</summary>
    public InferenceEngine Engine => _onnx is null ? InferenceEngine.Torch : InferenceEngine.Onnx;

    /// <summary>The ONNX Runtime session and its cache entry, when <see cref="Engine"/> is ONNX.</summary>
    public OnnxEngine? OnnxEngine => _onnx;
    public EmbeddingPooling Pooling { get; }
    public bool Normalize { get; }
    public int MaxLength { get; }
    public int BatchSize { get; }
    public Device Device { get; }
    public ScalarType DType { get; }
    public EmbeddingLayer Layer { get; }

    /// <summary>Overlap of windows for long texts (null: long texts are cut).</summary>
    public int? Stride { get; }

    /// <summary>Vector length (the model's hidden size).</summary>
    public int Dimensions => Config.HiddenSize;

    /// <summary>The model name as given to <see cref="Load"/>.</summary>
    public string ModelId { get; }

    /// <summary>The resolved model directory.</summary>
    public string ModelPath { get; }

    /// <summary>Where the pooling / normalize / max-length settings came from, one line each (for reports).</summary>
    public IReadOnlyList<string> Settings { get; }

    /// <summary>Texts cut to <see cref="MaxLength"/> over the lifetime of this instance.</summary>
    public long TruncatedTotal => Interlocked.Read(ref _truncatedTotal);

    public EmbeddingGeneratorMetadata Metadata { get; }

    Embedder(BertConfig config, BertModel? model, OnnxEngine? onnx, BertTokenizer tokenizer, string modelId, string modelPath, EmbeddingPooling pooling, bool normalize,
        int maxLength, int batchSize, Device device, ScalarType dtype, IReadOnlyList<string> settings, EmbeddingLayer layer, int? stride)
    {
        Config = config;
        _model = model;
        _onnx = onnx;
        Tokenizer = tokenizer;
        ModelId = modelId;
        ModelPath = modelPath;
        Pooling = pooling;
        Normalize = normalize;
        MaxLength = maxLength;
        BatchSize = batchSize;
        Device = device;
        DType = dtype;
        Settings = settings;
        Layer = layer;
        Stride = stride;
        Metadata = new EmbeddingGeneratorMetadata("BertSharp", null, modelId, config.HiddenSize);
    }

    /// <summary>
    /// Loads the encoder of <paramref name="modelPathOrId"/> (resolved by <see cref="ModelResolver"/>; task heads and
    /// pretraining heads in the checkpoint are ignored). Fails when the checkpoint lacks encoder weights, or lacks the
    /// pooler and <see cref="EmbeddingPooling.Pooler"/> is asked for.
    /// </summary>
    public static Embedder Load(string modelPathOrId, EmbedderOptions? options = null)
    {
        options ??= new EmbedderOptions();
        if (options.BatchSize < 1) throw new ArgumentException($"batch size must be at least 1 (got {options.BatchSize})");
        var path = ModelResolver.Resolve(modelPathOrId);
        var st = SentenceTransformersConfig.Read(path);
        var dir = ModelDirectory.Open(path);
        var settings = new List<string>();

        if (st.Unsupported is not null && (options.Pooling is null || options.Normalize is null))
            throw new NotSupportedException(
                $"{st.Unsupported}; the vectors would differ from sentence-transformers'. Set the pooling and normalization explicitly " +
                "(--pooling and --normalize/--no-normalize) to embed with the encoder alone");
        var pooling = options.Pooling ?? st.Pooling ?? EmbeddingPooling.Mean;
        settings.Add($"pooling {pooling.ToString().ToLowerInvariant()} ({(options.Pooling is not null ? "given" : st.Pooling is not null ? "from the sentence-transformers Pooling config" : "default")})");
        var normalize = options.Normalize ?? st.Normalize ?? false;
        settings.Add($"normalize {(normalize ? "on" : "off")} ({(options.Normalize is not null ? "given" : st.Normalize is not null ? "from modules.json" : "default")})");

        var maxPos = dir.Config.MaxPositionEmbeddings;
        int maxLength;
        string maxSource;
        if (options.MaxLength is { } given)
        {
            if (given < 2) throw new ArgumentException($"max length must be at least 2 tokens ([CLS] and [SEP]); got {given}");
            if (given > maxPos) throw new ArgumentException($"max length {given} exceeds the model's max_position_embeddings {maxPos}");
            (maxLength, maxSource) = (given, "given");
        }
        else if (st.MaxSeqLength is { } stMax) (maxLength, maxSource) = (Math.Min(stMax, maxPos), "from sentence_bert_config.json");
        else if (TokenizerMaxLength(path) is { } tokMax && tokMax <= maxPos) (maxLength, maxSource) = (tokMax, "from tokenizer_config.json");
        else (maxLength, maxSource) = (maxPos, "max_position_embeddings");
        settings.Add($"max length {maxLength} ({maxSource})");
        var layer = options.Layer;
        int layers = dir.Config.NumHiddenLayers;
        if (layer.AverageLast > layers || (layer.AverageLast == 0 && (layer.Index >= 0 || -layer.Index > layers + 1)))
            throw new ArgumentException($"--layer {layer}: the model has {layers} layers (hidden states -1 … -{layers + 1}, -{layers + 1} being the embeddings output)");
        if (!layer.IsLast && pooling == EmbeddingPooling.Pooler)
            throw new ArgumentException($"pooling 'pooler' reads the last layer; it cannot be combined with --layer {layer}");
        settings.Add($"layer {layer}");
        if (options.Stride is { } stride)
        {
            if (stride < 0 || stride >= maxLength - 2)
                throw new ArgumentException($"--stride {stride}: the overlap must be at least 0 and below the {maxLength - 2} text tokens of a window (max length {maxLength} minus [CLS]/[SEP])");
            settings.Add($"long texts: windows of {maxLength} tokens overlapping by {stride}, averaged token-weighted");
        }

        var tokenizer = dir.LoadTokenizer();
        var device = options.Device ?? CPU;
        var engine = ResolveEngine(options.Engine, options.DType, device, layer, out var engineWhy, options.Onnx);
        bool pooler = pooling == EmbeddingPooling.Pooler;
        var (model, report) = dir.LoadModel(c => new BertModel(c, addPoolingLayer: pooler), options.DType, device);
        OnnxEngine? onnx = null;
        try
        {
            var poolerMissing = report.Missing.Where(k => k.StartsWith("pooler.", StringComparison.Ordinal)).ToList();
            if (pooler && poolerMissing.Count > 0)
                throw new ArgumentException(
                    $"pooling 'pooler' needs the pooler weights (pooler.dense.*), and {dir.WeightsPath} has none; use mean, cls or max pooling");
            var missing = report.Missing.Except(poolerMissing).ToList();
            if (missing.Count > 0)
                throw new InvalidDataException(
                    $"{dir.WeightsPath}: {missing.Count} encoder weights are not in the checkpoint ({string.Join(", ", missing.Take(5))}{(missing.Count > 5 ? ", …" : "")}); " +
                    "its embeddings would be random");
            if (engine == InferenceEngine.Onnx)
            {
                // Export once (cached by the weights' hash), then run on ONNX Runtime; the torch copy is freed.
                var onnxOptions = options.Onnx ?? new OnnxEngineOptions();
                using (var scope = NewDisposeScope())
                    onnx = OnnxEngine.Create(dir.Config, model.state_dict(), onnxOptions with { Source = dir.WeightsPath });
                model.Dispose();
                settings.Add($"engine onnx ({engineWhy}; ONNX Runtime, {onnx.Threads} thread{(onnx.Threads == 1 ? "" : "s")}, " +
                             $"{(onnx.FromCache ? "cached export reused" : $"exported in {onnx.ExportSeconds:F1} s")}: {onnx.ModelPath})");
            }
            else settings.Add($"engine torch ({engineWhy})");
        }
        catch
        {
            onnx?.Dispose();
            model.Dispose();
            throw;
        }
        var id = string.IsNullOrWhiteSpace(modelPathOrId) ? path : modelPathOrId;
        return new Embedder(dir.Config, onnx is null ? model : null, onnx, tokenizer, id, path, pooling, normalize, maxLength, options.BatchSize, device,
            options.DType, settings, layer, options.Stride);
    }

    /// <summary>
    /// <see cref="InferenceEngine.Auto"/> → the engine measured fastest for <paramref name="dtype"/> on this CPU
    /// (docs/embeddings.md: float32 → ONNX Runtime, bfloat16 → TorchSharp), or TorchSharp where the ONNX engine cannot
    /// serve the request; an explicit ONNX request it cannot serve is an error.
    /// </summary>
    public static InferenceEngine ResolveEngine(InferenceEngine requested, ScalarType dtype, Device device, EmbeddingLayer layer, out string why,
        OnnxEngineOptions? onnx = null)
    {
        if (onnx is not null && onnx.Export.Quantize != Export.OnnxQuantization.None)
        {
            // int8 exists only as an ONNX graph: auto means onnx, and torch is a contradiction.
            if (requested == InferenceEngine.Torch)
                throw new ArgumentException("--quantize int8 runs on the ONNX engine; use --engine onnx or auto");
            requested = InferenceEngine.Onnx;
        }
        string? blocker = device.type != DeviceType.CPU ? $"the ONNX engine runs on the CPU, not on {device}"
            : dtype != ScalarType.Float32 ? $"the ONNX engine runs float32, not {(dtype == ScalarType.BFloat16 ? "bfloat16" : dtype.ToString())} (bfloat16 is fastest on torch)"
            : !layer.IsLast ? $"the ONNX engine returns the last layer only, not --layer {layer}"
            : null;
        switch (requested)
        {
            case InferenceEngine.Torch:
                why = "given";
                return InferenceEngine.Torch;
            case InferenceEngine.Onnx:
                if (blocker is not null)
                    throw new ArgumentException($"--engine onnx: {blocker}; use --engine torch (or auto, which picks torch here)");
                why = "given";
                return InferenceEngine.Onnx;
            default:
                if (blocker is not null)
                {
                    why = $"auto: {blocker}";
                    return InferenceEngine.Torch;
                }
                why = "auto: fastest for float32 on this CPU";
                return InferenceEngine.Onnx;
        }
    }

    /// <summary>Parses <c>torch</c> / <c>onnx</c> / <c>auto</c> (the <c>--engine</c> option).</summary>
    public static InferenceEngine ParseEngine(string? name) => (name ?? "torch").Trim().ToLowerInvariant() switch
    {
        "torch" or "torchsharp" => InferenceEngine.Torch,
        "onnx" or "ort" or "onnxruntime" => InferenceEngine.Onnx,
        "auto" => InferenceEngine.Auto,
        var other => throw new ArgumentException($"--engine '{other}' is not supported (expected torch, onnx or auto)"),
    };

    /// <summary>tokenizer_config.json's model_max_length when it is a real limit (HF writes 1e30 for "none").</summary>
    static int? TokenizerMaxLength(string dir)
    {
        var p = Path.Combine(dir, "tokenizer_config.json");
        if (!File.Exists(p)) return null;
        try
        {
            using var doc = JsonDocument.Parse(TextFile.ReadAllText(p));
            if (doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("model_max_length", out var v)
                && v.ValueKind == JsonValueKind.Number && v.TryGetInt32(out var n) && n >= 2)
                return n;
        }
        catch (JsonException e)
        {
            throw new FormatException($"{p}: invalid JSON ({e.Message})");
        }
        return null;
    }

    /// <summary>Input ids of <paramref name="text"/> with [CLS]/[SEP], cut to <see cref="MaxLength"/> (the end is dropped, [SEP] kept, as HF's truncation).</summary>
    public int[] Encode(string text, out bool truncated)
    {
        ArgumentNullException.ThrowIfNull(text);
        var ids = Tokenizer.EncodeIds(text);
        truncated = ids.Length > MaxLength;
        if (!truncated) return ids;
        var cut = new int[MaxLength];
        Array.Copy(ids, cut, MaxLength - 1);
        cut[^1] = Tokenizer.SepId;
        return cut;
    }

    /// <summary>One vector per text, in input order.</summary>
    public float[][] Embed(IReadOnlyList<string> texts) => EmbedWithReport(texts).Vectors;

    /// <summary>The vector of one text.</summary>
    public float[] Embed(string text) => EmbedWithReport([text]).Vectors[0];

    /// <summary>
    /// One vector per text, in input order, with the truncation report. <paramref name="progress"/> is called with
    /// the number of texts finished after each batch.
    /// </summary>
    public EmbeddingResult EmbedWithReport(IReadOnlyList<string> texts, Action<int>? progress = null, CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(texts);
        // Units: one sequence per text, or (with Stride) one per window of a long text.
        var seqs = new List<int[]>(texts.Count);
        var owner = new List<int>(texts.Count);
        var truncated = new List<int>();
        var windowed = new List<int>();
        long tokens = 0, windows = 0;
        for (int i = 0; i < texts.Count; i++)
        {
            var text = texts[i] ?? throw new ArgumentException($"text {i} is null");
            if (Stride is { } stride)
            {
                var ids = Tokenizer.EncodeIds(text);
                if (ids.Length <= MaxLength)
                {
                    seqs.Add(ids);
                    owner.Add(i);
                    tokens += ids.Length;
                    continue;
                }
                windowed.Add(i);
                foreach (var w in Windows(ids, MaxLength, stride))
                {
                    seqs.Add(w);
                    owner.Add(i);
                    tokens += w.Length;
                    windows++;
                }
                continue;
            }
            var e = Encode(text, out bool cut);
            if (cut) truncated.Add(i);
            seqs.Add(e);
            owner.Add(i);
            tokens += e.Length;
        }
        Interlocked.Add(ref _truncatedTotal, truncated.Count);
        var unitVectors = new float[seqs.Count][];
        // Longest first: the first batch shows the worst-case memory at once; stable, so equal lengths keep input order.
        var order = Enumerable.Range(0, seqs.Count).OrderByDescending(u => seqs[u].Length).ToArray();
        var unitsLeft = new int[texts.Count];
        foreach (var o in owner) unitsLeft[o]++;
        lock (_gate)
        {
            for (int start = 0; start < order.Length; start += BatchSize)
            {
                cancellationToken.ThrowIfCancellationRequested();
                var batch = order.AsSpan(start, Math.Min(BatchSize, order.Length - start)).ToArray();
                RunBatch(batch.Select(u => seqs[u]).ToArray(), out var vectors);
                int finished = 0;
                for (int b = 0; b < batch.Length; b++)
                {
                    unitVectors[batch[b]] = vectors[b];
                    if (--unitsLeft[owner[batch[b]]] == 0) finished++;
                }
                if (finished > 0) progress?.Invoke(finished);
            }
        }
        var result = new float[texts.Count][];
        if (windowed.Count == 0)
            for (int u = 0; u < seqs.Count; u++) result[owner[u]] = unitVectors[u];
        else
        {
            // Token-weighted average of the window vectors of each text (a text of one unit keeps its vector as is).
            var sums = new double[texts.Count][];
            var weights = new long[texts.Count];
            var single = new int[texts.Count];
            for (int u = 0; u < seqs.Count; u++) single[owner[u]]++;
            for (int u = 0; u < seqs.Count; u++)
            {
                int t = owner[u];
                if (single[t] == 1) { result[t] = unitVectors[u]; continue; }
                var acc = sums[t] ??= new double[Dimensions];
                int wt = seqs[u].Length;
                for (int j = 0; j < acc.Length; j++) acc[j] += (double)wt * unitVectors[u][j];
                weights[t] += wt;
            }
            for (int t = 0; t < texts.Count; t++)
                if (sums[t] is { } acc)
                    result[t] = acc.Select(x => (float)(x / weights[t])).ToArray();
        }
        if (Normalize)
            foreach (var v in result) NormalizeInPlace(v);
        return new EmbeddingResult(result, truncated, tokens) { Windowed = windowed, Windows = windows };
    }

    /// <summary>
    /// Windows of a long encoded text (<paramref name="ids"/> = [CLS] … [SEP]): [CLS] + up to maxLength−2 text tokens
    /// + [SEP], consecutive windows sharing <paramref name="stride"/> text tokens; the last one ends at the text's end.
    /// </summary>
    public static IEnumerable<int[]> Windows(int[] ids, int maxLength, int stride)
    {
        int n = ids.Length - 2, width = maxLength - 2, step = width - stride;
        if (width < 1 || step < 1) throw new ArgumentException($"windows of {maxLength} tokens with overlap {stride} do not advance");
        for (int start = 0; ; start += step)
        {
            int len = Math.Min(width, n - start);
            var w = new int[len + 2];
            w[0] = ids[0];
            Array.Copy(ids, 1 + start, w, 1, len);
            w[^1] = ids[^1];
            yield return w;
            if (start + width >= n) yield break;
        }
    }

    /// <summary>v / max(‖v‖₂, 1e-12), the norm accumulated in double (as torch.nn.functional.normalize).</summary>
    public static void NormalizeInPlace(float[] v)
    {
        double sq = 0;
        foreach (var x in v) sq += (double)x * x;
        double norm = Math.Max(Math.Sqrt(sq), 1e-12);
        for (int j = 0; j < v.Length; j++) v[j] = (float)(v[j] / norm);
    }

    void RunBatch(int[][] seqs, out float[][] vectors)
    {
        int b = seqs.Length, len = seqs.Max(s => s.Length), h = Dimensions, n = b * len;
        if (_ids.Length < n)
        {
            _ids = new long[n];
            _mask = new long[n];
        }
        Array.Fill(_ids, Tokenizer.PadId, 0, n);
        Array.Clear(_mask, 0, n);
        for (int r = 0; r < b; r++)
            for (int t = 0; t < seqs[r].Length; t++)
            {
                _ids[r * len + t] = seqs[r][t];
                _mask[r * len + t] = 1;
            }
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var maskT = tensor(_mask[..n], [b, len], device: Device);
        Tensor pooled;
        if (_onnx is not null)
        {
            // ONNX Runtime fills the engine's buffers; the same pooling as the torch path runs on a copy of them.
            _onnx.Run(_ids, _mask, null, b, len);
            pooled = Pooling == EmbeddingPooling.Pooler
                ? tensor(_onnx.Output("pooler_output")[..(b * h)].ToArray(), [b, h])
                : Pool(tensor(_onnx.Output("last_hidden_state")[..(n * h)].ToArray(), [b, len, h]), null, maskT);
        }
        else
        {
            var idsT = tensor(_ids[..n], [b, len], device: Device);
            var typesT = zeros([b, len], ScalarType.Int64, device: Device);
            var output = _model!.forward(idsT, typesT, maskT, outputHiddenStates: !Layer.IsLast);
            pooled = Pool(Hidden(output), output.PooledOutput, maskT);
        }
        var flat = pooled.to(ScalarType.Float32).cpu().contiguous().data<float>().ToArray();
        vectors = new float[b][];
        for (int r = 0; r < b; r++) vectors[r] = flat.AsSpan(r * h, h).ToArray();
    }

    Tensor Hidden(BertModelOutput output)
    {
        if (Layer.IsLast) return output.LastHiddenState.to(ScalarType.Float32);
        var all = output.HiddenStates!;
        if (Layer.AverageLast > 0)
            return stack(all.Skip(all.Count - Layer.AverageLast).Select(t => t.to(ScalarType.Float32)).ToArray()).mean([0]);
        return all[all.Count + Layer.Index].to(ScalarType.Float32);
    }

    Tensor Pool(Tensor hidden, Tensor? pooledOutput, Tensor mask)
    {
        switch (Pooling)
        {
            case EmbeddingPooling.Cls:
                return hidden[.., 0];
            case EmbeddingPooling.Pooler:
                return pooledOutput!.to(ScalarType.Float32);
            case EmbeddingPooling.Max:
            {
                // sentence-transformers: padded positions set to -1e9 before the max.
                var pad = mask.eq(0).unsqueeze(-1);
                return hidden.masked_fill(pad, -1e9).max(1).values;
            }
            default:
            {
                var m = mask.unsqueeze(-1).to(ScalarType.Float32);
                return (hidden * m).sum(1) / m.sum(1).clamp_min(1e-9);
            }
        }
    }

    // ---- Microsoft.Extensions.AI ----

    /// <inheritdoc />
    public Task<GeneratedEmbeddings<Embedding<float>>> GenerateAsync(IEnumerable<string> values, EmbeddingGenerationOptions? options = null,
        CancellationToken cancellationToken = default)
    {
        ArgumentNullException.ThrowIfNull(values);
        if (options?.Dimensions is { } d && d != Dimensions)
            throw new NotSupportedException($"{ModelId} produces {Dimensions}-dimensional embeddings; {d} were requested");
        if (options?.ModelId is { } m && m != ModelId)
            throw new NotSupportedException($"this generator serves model '{ModelId}', not '{m}'");
        var texts = values as IReadOnlyList<string> ?? values.ToList();
        var r = EmbedWithReport(texts, cancellationToken: cancellationToken);
        var created = DateTimeOffset.UtcNow;
        var result = new GeneratedEmbeddings<Embedding<float>>(r.Vectors.Select(v => new Embedding<float>(v) { ModelId = ModelId, CreatedAt = created }))
        {
            Usage = new UsageDetails { InputTokenCount = r.Tokens, TotalTokenCount = r.Tokens },
        };
        if (r.Truncated.Count > 0) result.AdditionalProperties = new() { ["truncated"] = r.Truncated.Count };
        return Task.FromResult(result);
    }

    /// <inheritdoc />
    public object? GetService(Type serviceType, object? serviceKey = null)
    {
        ArgumentNullException.ThrowIfNull(serviceType);
        if (serviceKey is not null) return null;
        if (serviceType == typeof(EmbeddingGeneratorMetadata)) return Metadata;
        return serviceType.IsInstanceOfType(this) ? this : null;
    }

    public void Dispose()
    {
        _model?.Dispose();
        _onnx?.Dispose();
    }
}
