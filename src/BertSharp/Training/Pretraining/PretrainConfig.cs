using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using BertSharp.Data;
using BertSharp.Modeling;

namespace BertSharp.Training.Pretraining;

/// <summary>Corpus, vocabulary and example-creation settings of a pretraining run (<c>data_cfg</c>).</summary>
public sealed record PretrainDataConfig
{
    [JsonPropertyName("corpus")] public List<string> Corpus { get; init; } = [];
    /// <summary>text (Google: one sentence per line, blank line between documents), wikitext, jsonl or dir.</summary>
    [JsonPropertyName("corpus_format")] public string CorpusFormat { get; init; } = "text";
    [JsonPropertyName("text_field")] public string TextField { get; init; } = "text";
    /// <summary>Held-out corpus; when empty, <see cref="EvalFraction"/> of the documents are held out.</summary>
    [JsonPropertyName("eval_corpus")] public List<string> EvalCorpus { get; init; } = [];
    [JsonPropertyName("eval_fraction")] public double EvalFraction { get; init; } = 0.05;
    [JsonPropertyName("vocab")] public string? Vocab { get; init; }
    /// <summary>Train a WordPiece vocabulary of this size on the corpus first (instead of <see cref="Vocab"/>).</summary>
    [JsonPropertyName("train_vocab")] public int? TrainVocab { get; init; }
    [JsonPropertyName("lowercase")] public bool Lowercase { get; init; } = true;
    /// <summary>nsp (Google [CLS] A [SEP] B [SEP]), packed (MLM on contiguous blocks) or line_by_line.</summary>
    [JsonPropertyName("mode")] public string Mode { get; init; } = "nsp";
    [JsonPropertyName("max_seq_length")] public int MaxSeqLength { get; init; } = 128;
    [JsonPropertyName("max_predictions_per_seq")] public int MaxPredictionsPerSeq { get; init; } = 20;
    [JsonPropertyName("masked_lm_prob")] public double MaskedLmProb { get; init; } = 0.15;
    [JsonPropertyName("short_seq_prob")] public double ShortSeqProb { get; init; } = 0.1;
    [JsonPropertyName("whole_word_mask")] public bool WholeWordMask { get; init; }
    [JsonPropertyName("dupe_factor")] public int DupeFactor { get; init; } = 1;
    /// <summary>dynamic (re-mask every epoch) or static (Google: masks fixed at creation).</summary>
    [JsonPropertyName("masking")] public string Masking { get; init; } = "dynamic";
    /// <summary>Sort windows of this many batches by length (less padding); 0 = no bucketing.</summary>
    [JsonPropertyName("bucket_window_batches")] public int BucketWindowBatches { get; init; } = 50;
    /// <summary>Token/example caches (default: OUTPUT/cache).</summary>
    [JsonPropertyName("cache_dir")] public string? CacheDir { get; init; }

    [JsonIgnore] public ExampleMode ExampleMode => Mode.ToLowerInvariant() switch
    {
        "nsp" => ExampleMode.NextSentencePrediction,
        "packed" => ExampleMode.Packed,
        "line_by_line" or "line-by-line" => ExampleMode.LineByLine,
        _ => throw new ArgumentException($"data_cfg.mode must be nsp, packed or line_by_line (got '{Mode}')"),
    };

    [JsonIgnore] public MaskingMode MaskingMode => Masking.ToLowerInvariant() switch
    {
        "dynamic" => Data.MaskingMode.Dynamic,
        "static" => Data.MaskingMode.Static,
        _ => throw new ArgumentException($"data_cfg.masking must be dynamic or static (got '{Masking}')"),
    };

    public PretrainingDataOptions ToDataOptions(long seed) => new()
    {
        Mode = ExampleMode, MaxSeqLength = MaxSeqLength, ShortSeqProb = ShortSeqProb, MaskedLmProb = MaskedLmProb,
        MaxPredictionsPerSeq = MaxPredictionsPerSeq, WholeWordMask = WholeWordMask, DupeFactor = DupeFactor,
        Masking = MaskingMode, Seed = (ulong)seed,
    };

    public CorpusSpec ToCorpusSpec(IReadOnlyList<string> paths)
    {
        if (paths.Count == 0) throw new ArgumentException("no corpus given (--corpus FILE)");
        return CorpusFormat.ToLowerInvariant() switch
        {
            "text" or "google" => CorpusSpec.GoogleText([.. paths]),
            "wikitext" => CorpusSpec.WikiText([.. paths]),
            "jsonl" => CorpusSpec.Jsonl(TextField, [.. paths]),
            "dir" => paths.Count == 1 ? CorpusSpec.TextFolder(paths[0])
                : throw new ArgumentException("--corpus-format dir takes exactly one folder"),
            _ => throw new ArgumentException($"corpus_format must be text, wikitext, jsonl or dir (got '{CorpusFormat}')"),
        };
    }

    public void Validate()
    {
        if (Corpus.Count == 0) throw new ArgumentException("no corpus given (--corpus FILE)");
        if (EvalFraction is < 0 or >= 1) throw new ArgumentException($"eval_fraction must be in [0, 1) (got {EvalFraction})");
        _ = ExampleMode;
        _ = MaskingMode;
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
                throw new FormatException($"{key}: {e.Message}");
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
