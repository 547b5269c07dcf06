using BertSharp.Checkpoints;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Inference;

/// <summary>
/// A model on disk: Hugging Face layout (config.json + model.safetensors | pytorch_model.bin + vocab.txt
/// [+ tokenizer_config.json / tokenizer.json]) or a Google release (bert_config.json + bert_model.ckpt.* + vocab.txt).
/// </summary>
public sealed class ModelDirectory
{
    public string Path { get; }
    /// <summary>The config file read, or the ONNX file when the config was inferred from its graph (<see cref="ConfigInferred"/>).</summary>
    public string ConfigPath { get; }
    public string WeightsPath { get; }
    public BertConfig Config { get; }
    /// <summary>True when no config file was found and <see cref="Config"/> was inferred from the ONNX graph.</summary>
    public bool ConfigInferred { get; }
    /// <summary>Where <see cref="Config"/> came from, in words (a file path, or "inferred from the ONNX graph of …").</summary>
    public string ConfigSource => ConfigInferred ? $"inferred from the ONNX graph of {WeightsPath}" : ConfigPath;
    /// <summary>For ONNX weights: HF name → the name-recovery rule that matched (see <see cref="OnnxWeights"/>); null otherwise.</summary>
    public IReadOnlyDictionary<string, string>? NameRules { get; }

    ModelDirectory(string path, string configPath, string weightsPath, BertConfig config, bool inferred = false, IReadOnlyDictionary<string, string>? rules = null)
    {
        Path = path;
        ConfigPath = configPath;
        WeightsPath = weightsPath;
        Config = config;
        ConfigInferred = inferred;
        NameRules = rules;
    }

    /// <summary>
    /// Opens a model directory, or an ONNX file (its directory then holds vocab.txt and, optionally, config.json).
    /// An ONNX model without a config file gets its config inferred from the graph; with one, the config is checked
    /// against the graph.
    /// </summary>
    public static ModelDirectory Open(string dir)
    {
        if (File.Exists(dir) && CheckpointFiles.DetectFormat(dir) == CheckpointFormat.Onnx)
            return OpenOnnx(OnnxHome(dir), dir);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"model directory not found: {dir}");
        var weights = CheckpointFiles.FindWeights(dir);
        if (weights is not null && CheckpointFiles.DetectFormat(weights) == CheckpointFormat.Onnx) return OpenOnnx(dir, weights);
        var configPath = FindConfig(dir);
        if (weights is null)
            throw new FileNotFoundException($"{dir}: no weights found (looked for model.safetensors, pytorch_model.bin, sharded *.index.json, bert_model.ckpt.index, model.onnx, onnx/model.onnx)");
        return new ModelDirectory(dir, configPath, weights, BertConfig.Load(configPath));
    }

    /// <summary>
    /// The directory that holds the tokenizer (and config) of an ONNX file: its own, or for a Hub repository's
    /// <c>onnx/model.onnx</c> (tokenizer files at the repository root) the parent.
    /// </summary>
    static string OnnxHome(string onnxPath)
    {
        var own = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(onnxPath))!;
        static bool HasTokenizer(string d) => File.Exists(System.IO.Path.Combine(d, "vocab.txt")) || File.Exists(System.IO.Path.Combine(d, "tokenizer.json"));
        var parent = System.IO.Path.GetDirectoryName(own);
        return !HasTokenizer(own) && System.IO.Path.GetFileName(own) == "onnx" && parent is not null && HasTokenizer(parent) ? parent : own;
    }

    static ModelDirectory OpenOnnx(string dir, string onnxPath)
    {
        var graph = OnnxWeights.Analyze(onnxPath);
        var configPath = TryFindConfig(dir);
        if (configPath is null)
            return new ModelDirectory(dir, onnxPath, onnxPath, OnnxConfig.Infer(graph), inferred: true, graph.Rules);
        var config = BertConfig.Load(configPath);
        OnnxConfig.Check(graph, config, configPath);
        return new ModelDirectory(dir, configPath, onnxPath, config, rules: graph.Rules);
    }

    static string? TryFindConfig(string dir) =>
        new[] { "config.json", "bert_config.json" }.Select(f => System.IO.Path.Combine(dir, f)).FirstOrDefault(File.Exists);

    /// <summary>The directory's config.json (Hugging Face) or bert_config.json (Google); a clear error when neither exists.</summary>
    public static string FindConfig(string dir) =>
        new[] { "config.json", "bert_config.json" }.Select(f => System.IO.Path.Combine(dir, f)).FirstOrDefault(File.Exists)
        ?? throw new FileNotFoundException($"{dir}: no config.json (Hugging Face) or bert_config.json (Google) found");

    public BertTokenizer LoadTokenizer()
    {
        var tok = BertTokenizer.FromDirectory(Path);
        if (tok.Vocab.Count > Config.VocabSize)
            throw new InvalidDataException($"{Path}: vocab.txt has {tok.Vocab.Count} tokens but config vocab_size is {Config.VocabSize}");
        return tok;
    }

    /// <summary>
    /// Loads the weights into a freshly built <typeparamref name="T"/> (init first, so missing heads are HF-initialised).
    /// <paramref name="policy"/> (default <see cref="LoadPolicy.Strict"/>) decides whether missing encoder weights are an error.
    /// </summary>
    public (T Model, LoadReport Report) LoadModel<T>(Func<BertConfig, T> create, ScalarType dtype = ScalarType.Float32, Device? device = null, long seed = 42, LoadPolicy? policy = null)
        where T : nn.Module
    {
        var model = create(Config);
        ModelUtils.InitWeights(model, Config, seed);
        var report = LoadWeightsInto(model);
        (policy ?? LoadPolicy.Strict).Enforce(report, WeightsPath);
        ModelUtils.ToInferenceDType(model, dtype);
        if (device is not null && device.type != DeviceType.CPU) model.to(device);
        model.eval();
        return (model, report);
    }

    /// <summary>
    /// Copies this directory's weights into an existing <paramref name="model"/> through the one name matcher
    /// (<see cref="StateDictLoader"/>: <c>bert.</c> prefix either way, <c>gamma</c>/<c>beta</c>, tied aliases).
    /// Parameters the checkpoint lacks keep their current values and are listed in the report; with
    /// <paramref name="requireComplete"/> (resuming a run) they are an error instead.
    /// </summary>
    public LoadReport LoadWeightsInto(nn.Module model, bool requireComplete = false)
    {
        var weights = CheckpointFiles.LoadWeights(WeightsPath);
        LoadReport report;
        try
        {
            report = StateDictLoader.Load(model, weights, WeightsPath);
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
        if (report.Loaded == 0)
            throw new InvalidDataException($"{WeightsPath}: none of its {weights.Count} tensors match a BERT parameter name");
        if (requireComplete && !report.IsComplete)
            throw new InvalidDataException($"{WeightsPath}: missing weight{(report.Missing.Count > 1 ? "s" : "")} {string.Join(", ", report.Missing.Take(5).Select(m => $"'{m}'"))}{(report.Missing.Count > 5 ? ", …" : "")}");
        return report;
    }

    /// <summary>
    /// Writes HF layout (config.json, model.safetensors, vocab.txt, tokenizer_config.json) atomically: everything
    /// goes to a temporary sibling directory that is renamed into place, so a crash never leaves half a model.
    /// Without a tokenizer (engine tests on synthetic ids) only config.json and model.safetensors are written.
    /// A task model (<see cref="IBertTaskModel"/>) names its HF class in <c>architectures</c>.
    /// </summary>
    public static void Save(nn.Module model, BertConfig config, BertTokenizer? tokenizer, string dir, IReadOnlyDictionary<string, string>? metadata = null) =>
        AtomicDirectory.Write(dir, tmp => Write(model, config, tokenizer, tmp, metadata));

    /// <summary>
    /// The files of <see cref="Save"/>, written into the existing folder <paramref name="dir"/> (for callers that make a
    /// larger directory atomic themselves, like training checkpoints). Tied aliases are stored once, under the
    /// embedding and <c>cls.predictions.bias</c> names, as HF does; tensors keep their dtype.
    /// </summary>
    public static void Write(nn.Module model, BertConfig config, BertTokenizer? tokenizer, string dir, IReadOnlyDictionary<string, string>? metadata = null)
    {
        if (model is IBertTaskModel task) config = task.Describe(config);
        config.Save(System.IO.Path.Combine(dir, "config.json"));
        var meta = new Dictionary<string, string> { ["format"] = "pt" };
        if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
        SaveTensors(System.IO.Path.Combine(dir, WeightsFile), model.state_dict().Where(kv => !ModelUtils.IsTiedAlias(kv.Key)), meta);
        if (tokenizer is null) return;
        tokenizer.Vocab.Save(System.IO.Path.Combine(dir, "vocab.txt"));
        File.WriteAllText(System.IO.Path.Combine(dir, "tokenizer_config.json"),
            System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
            {
                ["do_lower_case"] = tokenizer.Options.DoLowerCase,
                ["strip_accents"] = tokenizer.Options.StripAccents,
                ["tokenize_chinese_chars"] = tokenizer.Options.TokenizeChineseChars,
                ["model_max_length"] = config.MaxPositionEmbeddings,
                ["tokenizer_class"] = "BertTokenizer",
            }, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>The weights file <see cref="Save"/> writes.</summary>
    public const string WeightsFile = "model.safetensors";

    /// <summary>The one writer of named tensors (model weights, optimizer state): safetensors, copied to the CPU.</summary>
    public static void SaveTensors(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var scope = NewDisposeScope();
        SafeTensors.Save(path, tensors.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach().cpu().contiguous())).ToList(), metadata);
    }

    /// <summary>Reads every tensor of a safetensors file written by <see cref="SaveTensors"/>; the caller disposes them.</summary>
    public static Dictionary<string, Tensor> LoadTensors(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"file not found: {path}", path);
        using var scope = NewDisposeScope();
        var d = SafeTensors.Load(path);
        foreach (var t in d.Values) t.DetachFromDisposeScope();
        return d;
    }
}
