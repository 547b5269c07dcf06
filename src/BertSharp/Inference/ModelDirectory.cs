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
    public string ConfigPath { get; }
    public string WeightsPath { get; }
    public BertConfig Config { get; }

    ModelDirectory(string path, string configPath, string weightsPath, BertConfig config)
    {
        Path = path;
        ConfigPath = configPath;
        WeightsPath = weightsPath;
        Config = config;
    }

    public static ModelDirectory Open(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"model directory not found: {dir}");
        var configPath = FindConfig(dir);
        var weights = CheckpointFiles.FindWeights(dir)
            ?? throw new FileNotFoundException($"{dir}: no weights found (looked for model.safetensors, pytorch_model.bin, sharded *.index.json, bert_model.ckpt.index)");
        return new ModelDirectory(dir, configPath, weights, BertConfig.Load(configPath));
    }

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
        LoadReport report;
        var weights = CheckpointFiles.LoadWeights(WeightsPath);
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
        (policy ?? LoadPolicy.Strict).Enforce(report, WeightsPath);
        ModelUtils.ToInferenceDType(model, dtype);
        if (device is not null && device.type != DeviceType.CPU) model.to(device);
        model.eval();
        return (model, report);
    }

    /// <summary>
    /// Writes HF layout (config.json, model.safetensors, vocab.txt, tokenizer_config.json) atomically: everything
    /// goes to a temporary sibling directory that is renamed into place, so a crash never leaves half a model.
    /// </summary>
    public static void Save(nn.Module model, BertConfig config, BertTokenizer tokenizer, string dir, IReadOnlyDictionary<string, string>? metadata = null)
    {
        var full = System.IO.Path.GetFullPath(dir);
        var parent = System.IO.Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(parent);
        var tmp = System.IO.Path.Combine(parent, $".{System.IO.Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        Directory.CreateDirectory(tmp);
        try
        {
            config.Save(System.IO.Path.Combine(tmp, "config.json"));
            var tensors = model.state_dict()
                .Where(kv => !ModelUtils.IsTiedAlias(kv.Key))
                .Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach().cpu()));
            var meta = new Dictionary<string, string> { ["format"] = "pt" };
            if (metadata is not null) foreach (var (k, v) in metadata) meta[k] = v;
            SafeTensors.Save(System.IO.Path.Combine(tmp, "model.safetensors"), tensors, meta);
            tokenizer.Vocab.Save(System.IO.Path.Combine(tmp, "vocab.txt"));
            File.WriteAllText(System.IO.Path.Combine(tmp, "tokenizer_config.json"),
                System.Text.Json.JsonSerializer.Serialize(new Dictionary<string, object?>
                {
                    ["do_lower_case"] = tokenizer.Options.DoLowerCase,
                    ["strip_accents"] = tokenizer.Options.StripAccents,
                    ["tokenize_chinese_chars"] = tokenizer.Options.TokenizeChineseChars,
                    ["model_max_length"] = config.MaxPositionEmbeddings,
                    ["tokenizer_class"] = "BertTokenizer",
                }, new System.Text.Json.JsonSerializerOptions { WriteIndented = true }));
            string? old = null;
            if (Directory.Exists(full))
            {
                old = full + $".old-{Guid.NewGuid():N}";
                Directory.Move(full, old);
            }
            Directory.Move(tmp, full);
            if (old is not null) Directory.Delete(old, recursive: true);
        }
        catch
        {
            if (Directory.Exists(tmp)) Directory.Delete(tmp, recursive: true);
            throw;
        }
    }
}
