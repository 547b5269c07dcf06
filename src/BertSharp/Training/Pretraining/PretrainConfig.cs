using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using BertSharp.Configuration;
using BertSharp.Data;
using BertSharp.Modeling;

namespace BertSharp.Training.Pretraining;

/// <summary>
/// Corpus, vocabulary and example-creation settings of a pretraining run (<c>data_cfg</c>). The example-creation
/// defaults are <see cref="PretrainingDataOptions"/>'s (one place); <see cref="Flags"/> lists the command-line flags.
/// </summary>
public sealed record PretrainDataConfig
{
    static readonly PretrainingDataOptions Defaults = new();

    [JsonPropertyName("corpus")] public List<string> Corpus { get; init; } = [];
    /// <summary>text (Google: one sentence per line, blank line between documents), wikitext, jsonl or dir.</summary>
    [JsonPropertyName("corpus_format")] public CorpusFormat CorpusFormat { get; init; } = CorpusFormat.Text;
    [JsonPropertyName("text_field")] public string TextField { get; init; } = "text";
    /// <summary>Held-out corpus; when empty, <see cref="EvalFraction"/> of the documents are held out.</summary>
    [JsonPropertyName("eval_corpus")] public List<string> EvalCorpus { get; init; } = [];
    [JsonPropertyName("eval_fraction")] public double EvalFraction { get; init; } = 0.05;
    [JsonPropertyName("vocab")] public string? Vocab { get; init; }
    /// <summary>Train a WordPiece vocabulary of this size on the corpus first (instead of <see cref="Vocab"/>).</summary>
    [JsonPropertyName("train_vocab")] public int? TrainVocab { get; init; }
    [JsonPropertyName("lowercase")] public bool Lowercase { get; init; } = true;
    /// <summary>nsp (Google [CLS] A [SEP] B [SEP]), packed (MLM on contiguous blocks) or line_by_line.</summary>
    [JsonPropertyName("mode")] public ExampleMode Mode { get; init; } = Defaults.Mode;
    [JsonPropertyName("max_seq_length")] public int MaxSeqLength { get; init; } = Defaults.MaxSeqLength;
    [JsonPropertyName("max_predictions_per_seq")] public int MaxPredictionsPerSeq { get; init; } = Defaults.MaxPredictionsPerSeq;
    [JsonPropertyName("masked_lm_prob")] public double MaskedLmProb { get; init; } = Defaults.MaskedLmProb;
    [JsonPropertyName("short_seq_prob")] public double ShortSeqProb { get; init; } = Defaults.ShortSeqProb;
    [JsonPropertyName("whole_word_mask")] public bool WholeWordMask { get; init; } = Defaults.WholeWordMask;
    [JsonPropertyName("dupe_factor")] public int DupeFactor { get; init; } = Defaults.DupeFactor;
    /// <summary>dynamic (re-mask every epoch) or static (Google: masks fixed at creation).</summary>
    [JsonPropertyName("masking")] public MaskingMode Masking { get; init; } = Defaults.Masking;
    /// <summary>Sort windows of this many batches by length (less padding); 0 = no bucketing.</summary>
    [JsonPropertyName("bucket_window_batches")] public int BucketWindowBatches { get; init; } = 50;
    /// <summary>Token/example caches (default: OUTPUT/cache).</summary>
    [JsonPropertyName("cache_dir")] public string? CacheDir { get; init; }

    /// <summary>The flags of the data_cfg section (one line each; help, defaults and JSON keys come from this record).</summary>
    public static readonly ConfigSection<PretrainDataConfig> Flags = new ConfigSection<PretrainDataConfig>("data_cfg")
        .Flag("--corpus", c => c.Corpus, "Training corpus file(s) (or one folder with --corpus-format dir)", "FILE")
        .Flag("--corpus-format", c => c.CorpusFormat, "text: one sentence per line, blank line between documents; wikitext; jsonl; dir: a folder of .txt, one document each")
        .Flag("--text-field", c => c.TextField, "JSONL field holding the text", "NAME")
        .Flag("--vocab", c => c.Vocab, "WordPiece vocab.txt", "FILE")
        .Flag("--train-vocab", c => c.TrainVocab, "Train a WordPiece vocabulary of this size on the corpus first", "SIZE")
        .Switch("--cased", c => c.Lowercase, false, "Do not lowercase (a cased vocabulary)")
        .Flag("--max-seq-length", c => c.MaxSeqLength, "Tokens per example")
        .Flag("--max-pred", c => c.MaxPredictionsPerSeq, "Max masked positions per example")
        .Flag("--mask-prob", c => c.MaskedLmProb, "Masking probability")
        .Switch("--no-nsp", c => c.Mode, ExampleMode.Packed, "MLM only, on packed blocks of contiguous text (no next-sentence prediction)")
        .Switch("--whole-word-mask", c => c.WholeWordMask, true, "Mask whole words")
        .Flag("--masking", c => c.Masking, "dynamic: re-mask every epoch; static: masks fixed at creation (Google)")
        .Flag("--dupe-factor", c => c.DupeFactor, "Passes over the corpus when creating examples (Google: 10, with static masking)")
        .Flag("--eval-corpus", c => c.EvalCorpus, "Held-out corpus file(s)", "FILE")
        .Flag("--eval-fraction", c => c.EvalFraction, "Fraction of documents held out when no --eval-corpus (0 = none)")
        .Flag("--cache-dir", c => c.CacheDir, "Token/example caches (default OUTPUT/cache)", "DIR");

    public PretrainingDataOptions ToDataOptions(long seed) => new()
    {
        Mode = Mode, MaxSeqLength = MaxSeqLength, ShortSeqProb = ShortSeqProb, MaskedLmProb = MaskedLmProb,
        MaxPredictionsPerSeq = MaxPredictionsPerSeq, WholeWordMask = WholeWordMask, DupeFactor = DupeFactor,
        Masking = Masking, Seed = (ulong)seed,
    };

    public CorpusSpec ToCorpusSpec(IReadOnlyList<string> paths)
    {
        if (paths.Count == 0) throw new ArgumentException("no corpus given (--corpus FILE)");
        return CorpusFormat switch
        {
            CorpusFormat.WikiText => CorpusSpec.WikiText([.. paths]),
            CorpusFormat.Jsonl => CorpusSpec.Jsonl(TextField, [.. paths]),
            CorpusFormat.TextFolder => paths.Count == 1 ? CorpusSpec.TextFolder(paths[0])
                : throw new ArgumentException("--corpus-format dir takes exactly one folder"),
            _ => CorpusSpec.GoogleText([.. paths]),
        };
    }

    public void Validate()
    {
        if (Corpus.Count == 0) throw new ArgumentException("no corpus given (--corpus FILE)");
        if (EvalFraction is < 0 or >= 1) throw new ArgumentException($"eval_fraction must be in [0, 1) (got {EvalFraction})");
        ToDataOptions(0).Validate();
    }
}

/// <summary>
/// The whole configuration of a pretraining run, in the pytorchic-bert spirit: one JSON object with
/// <c>model_cfg</c> (Hugging Face config.json keys), <c>train_cfg</c> (<see cref="TrainConfig"/>) and
/// <c>data_cfg</c> (<see cref="PretrainDataConfig"/>), plus <c>model_preset</c> and <c>init</c>. Sources are merged in
/// order — defaults, the resumed checkpoint's train_config.json, config files, command-line flags — and the
/// effective result is saved with every checkpoint.
/// </summary>
public sealed class PretrainConfig
{
    public required BertConfig? Model { get; init; }
    /// <summary>tiny, mini, small, medium, base or large, when <see cref="Model"/> is not given explicitly.</summary>
    public string? ModelPreset { get; init; }
    /// <summary>Start from the weights of this model directory.</summary>
    public string? Init { get; init; }
    public required TrainConfig Train { get; init; }
    public required PretrainDataConfig Data { get; init; }

    static readonly string[] Sections = ["model_cfg", "train_cfg", "data_cfg", "model_preset", "init"];

    /// <summary>Every configuration flag of <c>bert pretrain</c>: data_cfg then train_cfg.</summary>
    public static readonly ConfigTable Flags = new(PretrainDataConfig.Flags, TrainConfig.Flags);

    /// <summary>Merges JSON objects left to right: the three sections key by key, other keys replaced.</summary>
    public static JsonObject Merge(IEnumerable<JsonObject> layers)
    {
        var result = new JsonObject();
        foreach (var layer in layers)
        {
            foreach (var (k, v) in layer)
            {
                if (v is JsonObject o && result[k] is JsonObject existing)
                    foreach (var (k2, v2) in o) existing[k2] = v2?.DeepClone();
                else result[k] = v?.DeepClone();
            }
        }
        return result;
    }

    /// <summary>
    /// The effective configuration of a run from its sources, lowest precedence first: defaults, the resumed
    /// checkpoint's train_config.json (<paramref name="resumed"/>), <paramref name="files"/> in order, the flag layer
    /// (<see cref="Flags"/>), then the model choice: <paramref name="modelConfig"/> (a preset name or an HF config.json)
    /// or <paramref name="init"/> (a model directory), which replace any model given by a lower layer.
    /// </summary>
    public static PretrainConfig FromLayers(JsonObject? resumed, IEnumerable<string> files, JsonObject flags, string? modelConfig = null, string? init = null)
    {
        if (modelConfig is not null && init is not null) throw new ArgumentException("give either --model-config or --init, not both");
        var layers = new List<JsonObject>();
        if (resumed is not null) layers.Add(resumed);
        foreach (var f in files) layers.Add(ReadFile(f));
        layers.Add(flags);
        var merged = Merge(layers);
        if (modelConfig is not null)
        {
            merged.Remove("init");
            if (File.Exists(modelConfig)) merged["model_cfg"] = ReadFile(modelConfig, asModelConfig: true)["model_cfg"]!.DeepClone();
            else { merged.Remove("model_cfg"); merged["model_preset"] = modelConfig; }
        }
        if (init is not null) { merged.Remove("model_cfg"); merged.Remove("model_preset"); merged["init"] = init; }
        return FromJson(merged);
    }

    /// <summary>
    /// Reads a configuration file: either a combined object (with any of model_cfg/train_cfg/data_cfg) or a bare
    /// train_cfg object; <paramref name="asModelConfig"/> reads a bare HF config.json as model_cfg.
    /// </summary>
    public static JsonObject ReadFile(string path, bool asModelConfig = false)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config file not found: {path}", path);
        JsonNode? node;
        try
        {
            node = JsonNode.Parse(File.ReadAllText(path), documentOptions: new JsonDocumentOptions { CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true });
        }
        catch (JsonException e)
        {
            throw new FormatException($"{path}: invalid JSON ({e.Message})");
        }
        if (node is not JsonObject obj) throw new FormatException($"{path}: expected a JSON object");
        if (obj.Any(kv => Sections.Contains(kv.Key))) return obj;
        return new JsonObject { [asModelConfig ? "model_cfg" : "train_cfg"] = obj.DeepClone() };
    }

    /// <summary>Builds the typed configuration; unknown train_cfg/data_cfg keys are errors (typos).</summary>
    public static PretrainConfig FromJson(JsonObject json)
    {
        foreach (var (k, _) in json)
            if (!Sections.Contains(k)) throw new FormatException($"unknown configuration section '{k}' (expected {string.Join(", ", Sections)})");
        T Section<T>(string key) where T : new()
        {
            if (json[key] is not JsonObject o) return new T();
            try
            {
                return o.Deserialize<T>(TrainConfig.Json) ?? new T();
            }
            catch (JsonException e)
            {
                var at = e.Path is { Length: > 2 } path ? key + "." + path.TrimStart('$', '.') : key;
                var why = e.Message;
                int cut = why.IndexOf(" Path: ", StringComparison.Ordinal);
                throw new FormatException($"{at}: {(cut > 0 ? why[..cut] : why)}");
            }
        }
        BertConfig? model = null;
        if (json["model_cfg"] is JsonObject m && m.Count > 0) model = BertConfig.Parse(m.ToJsonString(), "model_cfg");
        var train = Section<TrainConfig>("train_cfg");
        var data = Section<PretrainDataConfig>("data_cfg");
        train.Validate();
        return new PretrainConfig
        {
            Model = model, ModelPreset = (string?)json["model_preset"], Init = (string?)json["init"], Train = train, Data = data,
        };
    }

    /// <summary>The effective configuration as saved in checkpoints (train_config.json).</summary>
    public JsonObject ToJson(BertConfig resolvedModel)
    {
        var o = new JsonObject
        {
            ["model_cfg"] = JsonNode.Parse(resolvedModel.ToJson()),
            ["train_cfg"] = JsonSerializer.SerializeToNode(Train, TrainConfig.Json),
            ["data_cfg"] = JsonSerializer.SerializeToNode(Data, TrainConfig.Json),
        };
        if (ModelPreset is not null) o["model_preset"] = ModelPreset;
        if (Init is not null) o["init"] = Init;
        return o;
    }
}
