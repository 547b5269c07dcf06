using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace BertSharp.Modeling;

/// <summary>
/// BERT hyper-parameters. Property names serialize to Hugging Face <c>config.json</c> keys (also Google's
/// <c>bert_config.json</c>); unknown keys (model_type, transformers_version, …) are kept and written back unchanged.
/// </summary>
public sealed record BertConfig
{
    [JsonPropertyName("vocab_size")] public int VocabSize { get; init; } = 30522;
    [JsonPropertyName("hidden_size")] public int HiddenSize { get; init; } = 768;
    [JsonPropertyName("num_hidden_layers")] public int NumHiddenLayers { get; init; } = 12;
    [JsonPropertyName("num_attention_heads")] public int NumAttentionHeads { get; init; } = 12;
    [JsonPropertyName("intermediate_size")] public int IntermediateSize { get; init; } = 3072;
    [JsonPropertyName("hidden_act")] public string HiddenAct { get; init; } = "gelu";
    [JsonPropertyName("hidden_dropout_prob")] public double HiddenDropoutProb { get; init; } = 0.1;
    [JsonPropertyName("attention_probs_dropout_prob")] public double AttentionProbsDropoutProb { get; init; } = 0.1;
    [JsonPropertyName("max_position_embeddings")] public int MaxPositionEmbeddings { get; init; } = 512;
    [JsonPropertyName("type_vocab_size")] public int TypeVocabSize { get; init; } = 2;
    [JsonPropertyName("initializer_range")] public double InitializerRange { get; init; } = 0.02;
    [JsonPropertyName("layer_norm_eps")] public double LayerNormEps { get; init; } = 1e-12;
    [JsonPropertyName("pad_token_id")] public int PadTokenId { get; init; }
    [JsonPropertyName("position_embedding_type")] public string PositionEmbeddingType { get; init; } = "absolute";

    // Task-head keys (HF PretrainedConfig / BertConfig). Absent keys stay absent on save.

    /// <summary>HF <c>id2label</c>: keys are the class indices written as strings ("0", "1", …), as HF writes them.</summary>
    [JsonPropertyName("id2label"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, string>? Id2Label { get; init; }

    /// <summary>HF <c>label2id</c>: label name → class index.</summary>
    [JsonPropertyName("label2id"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public IReadOnlyDictionary<string, int>? Label2Id { get; init; }

    /// <summary>
    /// <c>regression</c>, <c>single_label_classification</c> or <c>multi_label_classification</c>; null = decided
    /// from num_labels and the label dtype at the first loss, as HF does.
    /// </summary>
    [JsonPropertyName("problem_type"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public string? ProblemType { get; init; }

    /// <summary>Dropout before the classifier of the sequence/token/multiple-choice heads; null = hidden_dropout_prob.</summary>
    [JsonPropertyName("classifier_dropout"), JsonIgnore(Condition = JsonIgnoreCondition.WhenWritingNull)]
    public double? ClassifierDropout { get; init; }

    /// <summary>
    /// HF <c>architectures</c> (the model class that wrote the checkpoint, e.g. <c>BertForSequenceClassification</c>).
    /// Stored in <see cref="Extra"/> under its config.json key, so code that reads the raw key sees the same value.
    /// </summary>
    [JsonIgnore]
    public IReadOnlyList<string>? Architectures
    {
        get => Extra is not null && Extra.TryGetValue("architectures", out var e) && e.ValueKind == JsonValueKind.Array
            ? e.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToArray()
            : null;
        init
        {
            var d = Extra is null ? new Dictionary<string, JsonElement>() : new Dictionary<string, JsonElement>(Extra);
            if (value is null) d.Remove("architectures");
            else d["architectures"] = JsonSerializer.SerializeToElement(value.ToArray());
            Extra = d.Count == 0 ? null : d;
        }
    }

    /// <summary>Number of classes, as HF derives it: len(id2label), 2 when the config has none.</summary>
    [JsonIgnore] public int NumLabels => Id2Label?.Count ?? 2;

    /// <summary>Label names by class index (LABEL_0, LABEL_1 when the config has no id2label, as HF).</summary>
    [JsonIgnore]
    public IReadOnlyList<string> Labels => Id2Label is null
        ? DefaultLabels(2)
        : Id2Label.OrderBy(kv => int.Parse(kv.Key, System.Globalization.CultureInfo.InvariantCulture)).Select(kv => kv.Value).ToArray();

    public static readonly string[] ProblemTypes = ["regression", "single_label_classification", "multi_label_classification"];

    static string[] DefaultLabels(int n) => Enumerable.Range(0, n).Select(i => $"LABEL_{i}").ToArray();

    /// <summary>This config with the given class names as id2label / label2id (index = position).</summary>
    public BertConfig WithLabels(IReadOnlyList<string> labels)
    {
        if (labels.Count == 0) throw new ArgumentException("a task head needs at least one label");
        var dup = labels.GroupBy(l => l, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"label '{dup.Key}' appears more than once");
        return this with
        {
            Id2Label = labels.Select((l, i) => (l, i)).ToDictionary(x => x.i.ToString(System.Globalization.CultureInfo.InvariantCulture), x => x.l),
            Label2Id = labels.Select((l, i) => (l, i)).ToDictionary(x => x.l, x => x.i, StringComparer.Ordinal),
        };
    }

    /// <summary>HF's <c>num_labels=</c>: id2label becomes LABEL_0 … LABEL_{n−1}.</summary>
    public BertConfig WithNumLabels(int n) =>
        n > 0 ? WithLabels(DefaultLabels(n)) : throw new ArgumentException($"num_labels must be positive (got {n})");

    /// <summary>Every other key of the file, preserved for round-tripping.</summary>
    [JsonExtensionData] public Dictionary<string, JsonElement>? Extra { get; init; }

    /// <summary>Derived (hidden_size / num_attention_heads); not a config.json key.</summary>
    [JsonIgnore] public int HeadDim => HiddenSize / NumAttentionHeads;

    static readonly JsonSerializerOptions WriteOptions = new() { WriteIndented = true };

    /// <summary>Parses config.json / bert_config.json text; <paramref name="source"/> names it in errors.</summary>
    public static BertConfig Parse(string json, string source = "config.json")
    {
        BertConfig? cfg;
        try
        {
            cfg = JsonSerializer.Deserialize<BertConfig>(json);
        }
        catch (JsonException e)
        {
            throw new FormatException($"{source}: invalid config JSON ({e.Message})");
        }
        if (cfg is null) throw new FormatException($"{source}: the config is empty");
        cfg = ApplyNumLabelsKey(cfg, source);
        cfg.Validate(source);
        return cfg;
    }

    /// <summary>
    /// A <c>num_labels</c> key (older configs) acts like HF's: it sets id2label to LABEL_i when the file has no
    /// id2label, and is dropped either way (HF does not write it back; id2label carries the count).
    /// </summary>
    static BertConfig ApplyNumLabelsKey(BertConfig cfg, string source)
    {
        if (cfg.Extra is null || !cfg.Extra.TryGetValue("num_labels", out var n)) return cfg;
        var extra = new Dictionary<string, JsonElement>(cfg.Extra);
        extra.Remove("num_labels");
        cfg = cfg with { Extra = extra.Count == 0 ? null : extra };
        if (cfg.Id2Label is not null) return cfg;
        if (n.ValueKind != JsonValueKind.Number || !n.TryGetInt32(out var count) || count <= 0)
            throw new FormatException($"{source}: num_labels must be a positive integer (got {n.GetRawText()})");
        return cfg.WithNumLabels(count);
    }

    public static BertConfig Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"config not found: {path}", path);
        return Parse(File.ReadAllText(path), path);
    }

    public string ToJson()
    {
        var node = JsonSerializer.SerializeToNode(this, WriteOptions)!.AsObject();
        // Put model_type first-class when absent so HF AutoConfig recognises the file.
        if (!node.ContainsKey("model_type")) node["model_type"] = "bert";
        return node.ToJsonString(WriteOptions);
    }

    public void Save(string path) => File.WriteAllText(path, ToJson());

    /// <summary>This config with HF's <c>architectures</c> key set to <paramref name="modelClass"/> unless it names one already.</summary>
    public BertConfig WithArchitecture(string modelClass)
    {
        if (Extra?.ContainsKey("architectures") == true) return this;
        var extra = Extra is null ? new Dictionary<string, JsonElement>() : new Dictionary<string, JsonElement>(Extra);
        extra["architectures"] = JsonSerializer.SerializeToElement(new[] { modelClass });
        return this with { Extra = extra };
    }

    public void Validate(string source = "config")
    {
        void Require(bool ok, string what) { if (!ok) throw new FormatException($"{source}: {what}"); }
        Require(VocabSize > 0, $"vocab_size must be positive (got {VocabSize})");
        Require(HiddenSize > 0, $"hidden_size must be positive (got {HiddenSize})");
        Require(NumHiddenLayers > 0, $"num_hidden_layers must be positive (got {NumHiddenLayers})");
        Require(NumAttentionHeads > 0 && HiddenSize % NumAttentionHeads == 0,
            $"hidden_size ({HiddenSize}) must be a multiple of num_attention_heads ({NumAttentionHeads})");
        Require(IntermediateSize > 0, $"intermediate_size must be positive (got {IntermediateSize})");
        Require(MaxPositionEmbeddings > 0, $"max_position_embeddings must be positive (got {MaxPositionEmbeddings})");
        Require(TypeVocabSize > 0, $"type_vocab_size must be positive (got {TypeVocabSize})");
        Require(Activations.IsKnown(HiddenAct), $"hidden_act '{HiddenAct}' is not supported (expected gelu, gelu_new, gelu_fast or relu)");
        Require(PositionEmbeddingType == "absolute", $"position_embedding_type '{PositionEmbeddingType}' is not supported (only 'absolute')");
        if (Id2Label is not null)
        {
            Require(Id2Label.Count > 0, "id2label is empty (a task head needs at least one label)");
            var keys = Id2Label.Keys.Select(k => int.TryParse(k, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var i) ? i : -1).ToHashSet();
            Require(keys.Count == Id2Label.Count && keys.All(k => k >= 0 && k < Id2Label.Count),
                $"id2label keys must be the class indices \"0\" … \"{Id2Label.Count - 1}\" (got {string.Join(", ", Id2Label.Keys.Select(k => $"\"{k}\""))})");
        }
        Require(ProblemType is null || ProblemTypes.Contains(ProblemType),
            $"problem_type '{ProblemType}' is not supported (expected {string.Join(", ", ProblemTypes)})");
        Require(ClassifierDropout is null || ClassifierDropout is >= 0 and < 1, $"classifier_dropout must be in [0, 1) (got {ClassifierDropout})");
    }

    /// <summary>The standard BERT sizes (Turc et al. 2019 for the small ones), uncased 30,522 vocab.</summary>
    public static BertConfig Preset(string name) => name.ToLowerInvariant() switch
    {
        "tiny" => Sized(2, 128, 2),
        "mini" => Sized(4, 256, 4),
        "small" => Sized(4, 512, 8),
        "medium" => Sized(8, 512, 8),
        "base" => Sized(12, 768, 12),
        "large" => Sized(24, 1024, 16),
        _ => throw new ArgumentException($"unknown preset '{name}' (expected one of: {string.Join(", ", PresetNames)})"),
    };

    public static readonly string[] PresetNames = ["tiny", "mini", "small", "medium", "base", "large"];

    static BertConfig Sized(int layers, int hidden, int heads) => new()
    {
        NumHiddenLayers = layers, HiddenSize = hidden, NumAttentionHeads = heads, IntermediateSize = 4 * hidden,
    };
}
