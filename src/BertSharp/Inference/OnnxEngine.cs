using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Export;
using BertSharp.Modeling;
using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;

namespace BertSharp.Inference;

/// <summary>Which runtime executes the forward pass of an inference verb.</summary>
public enum InferenceEngine
{
    /// <summary>TorchSharp (libtorch), the model as loaded; every dtype, every layer, CPU or CUDA.</summary>
    Torch,

    /// <summary>
    /// ONNX Runtime on the model exported once by <see cref="OnnxExporter"/> into the cache (<see cref="OnnxEngine"/>);
    /// float32 on CPU, last layer only.
    /// </summary>
    Onnx,

    /// <summary>The engine measured fastest for the dtype on this CPU: float32 → ONNX Runtime, bfloat16 → TorchSharp
    /// (docs/embeddings.md); settings the ONNX engine cannot serve (earlier layers, a GPU) → TorchSharp.</summary>
    Auto,
}

/// <summary>Settings of <see cref="OnnxEngine"/>.</summary>
public sealed record OnnxEngineOptions
{
    /// <summary>
    /// How the cached file is exported (task, opset, …); part of the cache key. Default: the bare encoder
    /// (<see cref="OnnxExportTask.Base"/>), opset 14.
    /// </summary>
    public OnnxExportOptions Export { get; init; } = new() { Task = OnnxExportTask.Base };

    /// <summary>Folder of the exported files; default <see cref="OnnxEngine.DefaultCacheDirectory"/>.</summary>
    public string? CacheDirectory { get; init; }

    /// <summary>ONNX Runtime intra-op threads; default the TorchSharp thread count (<see cref="Runtime.Threads"/>).</summary>
    public int? Threads { get; init; }

    /// <summary>Where the weights came from, for the cache entry's info.json and error messages.</summary>
    public string Source { get; init; } = "state dict";
}

/// <summary>
/// Runs a BERT model on ONNX Runtime. The model (config + HF-named state dict) is exported once with
/// <see cref="OnnxExporter"/> into a cache folder named by a SHA-256 of the weights, the config, the export options and
/// the exporter build (<see cref="CacheKey"/>), written atomically (a temporary folder renamed into place), and reused
/// by every later process: the second start skips the export. One <see cref="InferenceSession"/> (ORT_ENABLE_ALL,
/// sequential, intra-op threads = the TorchSharp thread count) serves every batch; inputs are bound from the
/// caller's arrays and outputs into buffers owned by the engine (IOBinding), so ONNX Runtime reads and writes managed
/// memory directly and no tensor is copied. Calls are serialised.
/// </summary>
public sealed class OnnxEngine : IDisposable
{
    /// <summary>Environment variable for the BertSharp cache root; the ONNX files go to its <c>onnx/</c> folder.</summary>
    public const string CacheEnvVar = "BERTSHARP_CACHE";

    /// <summary>Name of the model file inside a cache entry.</summary>
    public const string ModelFileName = "model.onnx";

    // Bump when the cache layout or the meaning of the key changes.
    const string KeyVersion = "bertsharp-onnx-cache-v1";

    readonly InferenceSession _session;
    readonly OrtIoBinding _binding;
    readonly RunOptions _runOptions = new();
    readonly object _gate = new();
    readonly string[] _outputNames;
    readonly long[][] _outputDims;   // -1 = batch, -2 = sequence, else fixed
    readonly float[][] _outputBuffers;
    readonly int[] _outputLengths;
    readonly bool _hasTokenTypes;
    long[] _zeros = [];
    bool _disposed;

    /// <summary>The cache entry's ONNX file this session runs.</summary>
    public string ModelPath { get; }

    /// <summary>The cache key (hex SHA-256), also the cache entry's folder name.</summary>
    public string Key { get; }

    /// <summary>True when the file was already in the cache (no export this time).</summary>
    public bool FromCache { get; }

    /// <summary>ONNX Runtime intra-op threads.</summary>
    public int Threads { get; }

    /// <summary>Seconds spent exporting (0 on a cache hit) and opening the session.</summary>
    public double ExportSeconds { get; }

    public double SessionSeconds { get; }

    /// <summary>The graph's outputs, in the order <see cref="Output(int)"/> indexes them.</summary>
    public IReadOnlyList<string> OutputNames => _outputNames;

    OnnxEngine(string modelPath, string key, bool fromCache, int threads, double exportSeconds)
    {
        ModelPath = modelPath;
        Key = key;
        FromCache = fromCache;
        Threads = threads;
        ExportSeconds = exportSeconds;
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using (var so = new SessionOptions
        {
            GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL,
            ExecutionMode = ExecutionMode.ORT_SEQUENTIAL,
            IntraOpNumThreads = threads,
            InterOpNumThreads = 1,
        })
        {
            _session = new InferenceSession(modelPath, so);
        }
        try
        {
            _binding = _session.CreateIoBinding();
            _hasTokenTypes = _session.InputMetadata.ContainsKey("token_type_ids");
            foreach (var name in new[] { "input_ids", "attention_mask" })
                if (!_session.InputMetadata.ContainsKey(name))
                    throw new InvalidDataException($"{modelPath}: the graph has no input '{name}'");
            _outputNames = _session.OutputNames.ToArray();
            _outputDims = new long[_outputNames.Length][];
            for (int i = 0; i < _outputNames.Length; i++)
            {
                var meta = _session.OutputMetadata[_outputNames[i]];
                if (meta.ElementType != typeof(float))
                    throw new InvalidDataException($"{modelPath}: output '{_outputNames[i]}' is {meta.ElementType.Name}, expected float");
                var dims = new long[meta.Dimensions.Length];
                for (int d = 0; d < dims.Length; d++)
                {
                    var symbol = meta.SymbolicDimensions.Length > d ? meta.SymbolicDimensions[d] : "";
                    dims[d] = meta.Dimensions[d] >= 0 ? meta.Dimensions[d]
                        : symbol == "batch_size" || (d == 0 && symbol.Length == 0) ? -1
                        : symbol == "sequence_length" || (d == 1 && symbol.Length == 0) ? -2
                        : throw new InvalidDataException($"{modelPath}: output '{_outputNames[i]}' has an unknown dimension '{symbol}'");
                }
                _outputDims[i] = dims;
            }
            _outputBuffers = new float[_outputNames.Length][];
            _outputLengths = new int[_outputNames.Length];
            for (int i = 0; i < _outputBuffers.Length; i++) _outputBuffers[i] = [];
        }
        catch
        {
            _binding?.Dispose();
            _session.Dispose();
            throw;
        }
        SessionSeconds = clock.Elapsed.TotalSeconds;
    }

    /// <summary>
    /// <c>$BERTSHARP_CACHE/onnx</c> when the variable is set, else <c>$XDG_CACHE_HOME/bertsharp/onnx</c>, else
    /// <c>~/.cache/bertsharp/onnx</c>.
    /// </summary>
    public static string DefaultCacheDirectory
    {
        get
        {
            var root = Environment.GetEnvironmentVariable(CacheEnvVar);
            if (string.IsNullOrWhiteSpace(root))
            {
                var xdg = Environment.GetEnvironmentVariable("XDG_CACHE_HOME");
                var cache = string.IsNullOrWhiteSpace(xdg)
                    ? Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache")
                    : xdg;
                root = Path.Combine(cache, "bertsharp");
            }
            return Path.Combine(root, "onnx");
        }
    }

    /// <summary>
    /// The cache key: SHA-256 over the key version, the exporter build (the BertSharp assembly's module version id, so
    /// a changed exporter never reuses an old file), the export options (every setting but the progress callback),
    /// the config JSON, and every state-dict entry in ordinal key order (name, dtype, shape, bytes).
    /// </summary>
    public static string CacheKey(BertConfig config, IReadOnlyDictionary<string, Tensor> stateDict, OnnxExportOptions export)
    {
        ArgumentNullException.ThrowIfNull(config);
        ArgumentNullException.ThrowIfNull(stateDict);
        ArgumentNullException.ThrowIfNull(export);
        using var h = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        void Text(string s)
        {
            var b = Encoding.UTF8.GetBytes(s);
            h.AppendData(BitConverter.GetBytes(b.Length));
            h.AppendData(b);
        }
        Text(KeyVersion);
        Text(typeof(OnnxExporter).Assembly.ManifestModule.ModuleVersionId.ToString());
        Text((export with { Progress = null }).ToString());
        Text(config.ToJson());
        foreach (var key in stateDict.Keys.Order(StringComparer.Ordinal))
        {
            var t = stateDict[key];
            Text(key);
            Text(t.dtype.ToString());
            Text(string.Join(",", t.shape));
            using var scope = NewDisposeScope();
            var c = t.detach().cpu().contiguous();
            if (c.numel() > 0) h.AppendData(c.bytes);
        }
        return Convert.ToHexStringLower(h.GetHashAndReset());
    }

    /// <summary>
    /// The engine for <paramref name="config"/> + <paramref name="stateDict"/>: reuses the cache entry of their
    /// <see cref="CacheKey"/> when it exists, else exports into it first. The state dict is only read.
    /// </summary>
    public static OnnxEngine Create(BertConfig config, IReadOnlyDictionary<string, Tensor> stateDict, OnnxEngineOptions? options = null)
    {
        options ??= new OnnxEngineOptions();
        var threads = options.Threads ?? Runtime.Threads;
        if (threads < 1) throw new ArgumentException($"ONNX Runtime threads must be at least 1 (got {threads})");
        var export = options.Export;
        var key = CacheKey(config, stateDict, export);
        var cache = options.CacheDirectory ?? DefaultCacheDirectory;
        var entry = Path.Combine(cache, key);
        var file = Path.Combine(entry, ModelFileName);
        bool hit = File.Exists(file);
        double exportSeconds = 0;
        if (!hit)
        {
            var clock = System.Diagnostics.Stopwatch.StartNew();
            try
            {
                Directory.CreateDirectory(cache);
            }
            catch (Exception e) when (e is IOException or UnauthorizedAccessException)
            {
                throw new UnauthorizedAccessException($"the ONNX engine's cache folder {cache} cannot be created ({e.Message}); set {CacheEnvVar} to a writable folder", e);
            }
            // Export into a private temporary folder, then rename the folder into place: a crash leaves no entry, and
            // a model with external data (model.onnx + model.onnx_data) appears as a whole.
            var tmp = Path.Combine(cache, $".tmp-{key[..16]}-{Guid.NewGuid():N}");
            try
            {
                Directory.CreateDirectory(tmp);
                var result = OnnxExporter.Export(config, stateDict, Path.Combine(tmp, ModelFileName), export, options.Source);
                File.WriteAllText(Path.Combine(tmp, "info.json"), JsonSerializer.Serialize(new
                {
                    key,
                    source = options.Source,
                    task = OnnxExporter.TaskName(result.Task),
                    opset = result.Opset,
                    export = (export with { Progress = null }).ToString(),
                    created = DateTime.UtcNow.ToString("o"),
                }, new JsonSerializerOptions { WriteIndented = true }));
                try
                {
                    Directory.Move(tmp, entry);
                }
                catch (IOException) when (File.Exists(file))
                {
                    // Another process exported the same key meanwhile; its entry is identical.
                }
            }
            finally
            {
                if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            }
            exportSeconds = clock.Elapsed.TotalSeconds;
        }
        return new OnnxEngine(file, key, hit, threads, exportSeconds);
    }

    /// <summary>The engine for a model directory <see cref="ModelDirectory.Open"/> accepts (its config and weights as stored).</summary>
    public static OnnxEngine FromDirectory(string modelDir, OnnxEngineOptions? options = null)
    {
        var dir = ModelDirectory.Open(modelDir);
        using var scope = NewDisposeScope();
        var weights = CheckpointFiles.LoadWeights(dir.WeightsPath);
        return Create(dir.Config, weights, (options ?? new OnnxEngineOptions()) with { Source = dir.WeightsPath });
    }

    /// <summary>
    /// One forward pass on a padded batch of <paramref name="batch"/> × <paramref name="length"/> token ids (row-major;
    /// the arrays may be longer, only the first batch × length entries are read). <paramref name="tokenTypes"/> null:
    /// all zeros. The outputs stay in the engine's buffers until the next call; read them with <see cref="Output(int)"/>.
    /// </summary>
    public void Run(long[] inputIds, long[] attentionMask, long[]? tokenTypes, int batch, int length)
    {
        ArgumentNullException.ThrowIfNull(inputIds);
        ArgumentNullException.ThrowIfNull(attentionMask);
        if (batch < 1 || length < 1) throw new ArgumentException($"batch {batch} × length {length}: both must be at least 1");
        int n = checked(batch * length);
        if (inputIds.Length < n || attentionMask.Length < n || (tokenTypes is not null && tokenTypes.Length < n))
            throw new ArgumentException($"inputs hold fewer than batch × length = {n} entries");
        lock (_gate)
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            long[] shape = [batch, length];
            var inputs = new List<OrtValue>(3);
            var outputs = new List<OrtValue>(_outputNames.Length);
            try
            {
                _binding.ClearBoundInputs();
                _binding.ClearBoundOutputs();
                inputs.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, inputIds.AsMemory(0, n), shape));
                _binding.BindInput("input_ids", inputs[^1]);
                inputs.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, attentionMask.AsMemory(0, n), shape));
                _binding.BindInput("attention_mask", inputs[^1]);
                if (_hasTokenTypes)
                {
                    if (tokenTypes is null && _zeros.Length < n) _zeros = new long[Math.Max(n, _zeros.Length * 2)];
                    inputs.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, (tokenTypes ?? _zeros).AsMemory(0, n), shape));
                    _binding.BindInput("token_type_ids", inputs[^1]);
                }
                for (int i = 0; i < _outputNames.Length; i++)
                {
                    var dims = _outputDims[i].Select(d => d == -1 ? batch : d == -2 ? length : d).ToArray();
                    int size = checked((int)dims.Aggregate(1L, (a, d) => a * d));
                    // Grown geometrically, never shrunk: after the first (longest) batch no more allocation.
                    if (_outputBuffers[i].Length < size) _outputBuffers[i] = new float[Math.Max(size, _outputBuffers[i].Length * 3 / 2)];
                    _outputLengths[i] = size;
                    outputs.Add(OrtValue.CreateTensorValueFromMemory(OrtMemoryInfo.DefaultInstance, _outputBuffers[i].AsMemory(0, size), dims));
                    _binding.BindOutput(_outputNames[i], outputs[^1]);
                }
                _session.RunWithBinding(_runOptions, _binding);
            }
            finally
            {
                foreach (var v in inputs) v.Dispose();
                foreach (var v in outputs) v.Dispose();
            }
        }
    }

    /// <summary>Output <paramref name="index"/> of the last <see cref="Run"/>, row-major; valid until the next call.</summary>
    public ReadOnlySpan<float> Output(int index) => _outputBuffers[index].AsSpan(0, _outputLengths[index]);

    /// <summary>Output <paramref name="name"/> of the last <see cref="Run"/>.</summary>
    public ReadOnlySpan<float> Output(string name)
    {
        int i = Array.IndexOf(_outputNames, name);
        if (i < 0) throw new ArgumentException($"the graph has no output '{name}' (outputs: {string.Join(", ", _outputNames)})");
        return Output(i);
    }

    public void Dispose()
    {
        lock (_gate)
        {
            if (_disposed) return;
            _disposed = true;
            _binding.Dispose();
            _runOptions.Dispose();
            _session.Dispose();
        }
    }
}
