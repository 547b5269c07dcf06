using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace BertSharp.Modeling;

/// <summary>
/// BERT hyper-parameters. Property names serialize to Hugging Face <c>config.json</c> keys (also Google's
/// <c>bert_config.json</c>); unknown keys (architectures, model_type, …) are kept and written back unchanged.
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
        cfg.Validate(source);
        return cfg;
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
