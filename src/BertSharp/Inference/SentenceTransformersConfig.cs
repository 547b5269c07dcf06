using System.Text.Json;

namespace BertSharp.Inference;

/// <summary>How token vectors become one sentence vector.</summary>
public enum EmbeddingPooling
{
    /// <summary>Average of the last hidden states over the real tokens, [CLS] and [SEP] included (sentence-transformers' mean).</summary>
    Mean,
    /// <summary>The last hidden state of the first token ([CLS]).</summary>
    Cls,
    /// <summary>Element-wise maximum of the last hidden states over the real tokens.</summary>
    Max,
    /// <summary>The pooler output, tanh(dense([CLS])); needs the checkpoint's pooler weights.</summary>
    Pooler,
}

/// <summary>
/// What a sentence-transformers model directory says about its embeddings: <c>modules.json</c> (the module list),
/// the Pooling module's <c>config.json</c> (normally <c>1_Pooling/config.json</c>), a Normalize module, and
/// <c>sentence_bert_config.json</c> (<c>max_seq_length</c>). Every field is null when the directory does not set it.
/// </summary>
public sealed record SentenceTransformersConfig
{
    /// <summary>The pooling the Pooling module selects, or null without one.</summary>
    public EmbeddingPooling? Pooling { get; init; }

    /// <summary>True when modules.json lists a <c>sentence_transformers.models.Normalize</c> module; null without modules.json.</summary>
    public bool? Normalize { get; init; }

    /// <summary><c>max_seq_length</c> of sentence_bert_config.json.</summary>
    public int? MaxSeqLength { get; init; }

    /// <summary>
    /// Why the directory's pipeline cannot be reproduced by BertSharp (a Dense layer, a pooling mode without an
    /// equivalent, several modes concatenated); null when it can. Only an error when the caller relies on these defaults.
    /// </summary>
    public string? Unsupported { get; init; }

    /// <summary>The files these values were read from (for reports).</summary>
    public IReadOnlyList<string> Files { get; init; } = [];

    public const string NormalizeType = "sentence_transformers.models.Normalize";
    public const string PoolingType = "sentence_transformers.models.Pooling";
    public const string TransformerType = "sentence_transformers.models.Transformer";

    /// <summary>The sentence-transformers files of a directory, relative to it (what <c>bert convert</c> copies).</summary>
    public static IReadOnlyList<string> FilesIn(string dir)
    {
        var result = new List<string>();
        foreach (var f in new[] { "modules.json", "sentence_bert_config.json", "config_sentence_transformers.json" })
            if (File.Exists(Path.Combine(dir, f))) result.Add(f);
        var modules = Path.Combine(dir, "modules.json");
        if (!File.Exists(modules)) return result;
        foreach (var m in ReadModules(modules))
        {
            if (m.Path is not { Length: > 0 } p || m.Type == TransformerType) continue;
            var sub = Path.Combine(dir, p);
            if (!Directory.Exists(sub)) continue;
            foreach (var file in Directory.GetFiles(sub, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
                result.Add(Path.GetRelativePath(dir, file));
        }
        return result;
    }

    /// <summary>Reads the sentence-transformers files of <paramref name="dir"/>; all-null when there are none.</summary>
    /// <exception cref="FormatException">a file exists but is not what sentence-transformers writes.</exception>
    public static SentenceTransformersConfig Read(string dir)
    {
        var files = new List<string>();
        EmbeddingPooling? pooling = null;
        bool? normalize = null;
        int? maxSeq = null;
        string? unsupported = null;

        var stConfig = Path.Combine(dir, "sentence_bert_config.json");
        if (File.Exists(stConfig))
        {
            files.Add(stConfig);
            using var doc = ParseObject(stConfig);
            if (doc.RootElement.TryGetProperty("max_seq_length", out var msl) && msl.ValueKind != JsonValueKind.Null)
            {
                if (msl.ValueKind != JsonValueKind.Number || !msl.TryGetInt32(out var v) || v < 2)
                    throw new FormatException($"{stConfig}: max_seq_length must be an integer ≥ 2 (got {msl.GetRawText()})");
                maxSeq = v;
            }
        }

        var modulesPath = Path.Combine(dir, "modules.json");
        if (File.Exists(modulesPath))
        {
            files.Add(modulesPath);
            var modules = ReadModules(modulesPath);
            normalize = false;
            var unknown = new List<string>();
            foreach (var m in modules)
            {
                switch (m.Type)
                {
                    case TransformerType:
                        break;
                    case NormalizeType:
                        normalize = true;
                        break;
                    case PoolingType:
                    {
                        var cfg = Path.Combine(dir, m.Path ?? "", "config.json");
                        if (!File.Exists(cfg))
                            throw new FormatException($"{modulesPath}: the Pooling module's config '{cfg}' does not exist");
                        files.Add(cfg);
                        (pooling, var why) = ReadPooling(cfg);
                        if (why is not null) unknown.Add(why);
                        break;
                    }
                    default:
                        unknown.Add($"module {m.Type} ({m.Path}) is not applied by BertSharp");
                        break;
                }
            }
            if (unknown.Count > 0) unsupported = $"{dir}: {string.Join("; ", unknown)}";
        }
        return new SentenceTransformersConfig { Pooling = pooling, Normalize = normalize, MaxSeqLength = maxSeq, Unsupported = unsupported, Files = files };
    }

    sealed record Module(string Type, string? Path);

    static List<Module> ReadModules(string path)
    {
        using var doc = ParseJson(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Array)
            throw new FormatException($"{path}: expected a JSON array of modules ({{\"idx\", \"name\", \"path\", \"type\"}})");
        var result = new List<Module>();
        int i = 0;
        foreach (var e in doc.RootElement.EnumerateArray())
        {
            if (e.ValueKind != JsonValueKind.Object || !e.TryGetProperty("type", out var t) || t.ValueKind != JsonValueKind.String)
                throw new FormatException($"{path}: module {i} has no string \"type\"");
            string? p = e.TryGetProperty("path", out var pe) && pe.ValueKind == JsonValueKind.String ? pe.GetString() : null;
            if (p is not null && (p.Contains("..", StringComparison.Ordinal) || System.IO.Path.IsPathRooted(p)))
                throw new FormatException($"{path}: module {i} path '{p}' must stay inside the model directory");
            result.Add(new Module(t.GetString()!, p));
            i++;
        }
        return result;
    }

    static (EmbeddingPooling? Pooling, string? Unsupported) ReadPooling(string path)
    {
        using var doc = ParseObject(path);
        var root = doc.RootElement;
        bool Flag(string name)
        {
            if (!root.TryGetProperty(name, out var v) || v.ValueKind is JsonValueKind.Null) return false;
            return v.ValueKind switch
            {
                JsonValueKind.True => true,
                JsonValueKind.False => false,
                _ => throw new FormatException($"{path}: {name} must be true or false (got {v.GetRawText()})"),
            };
        }
        var on = new List<(string Name, EmbeddingPooling? Mode)>();
        foreach (var (name, mode) in new (string, EmbeddingPooling?)[]
                 {
                     ("pooling_mode_cls_token", EmbeddingPooling.Cls), ("pooling_mode_mean_tokens", EmbeddingPooling.Mean),
                     ("pooling_mode_max_tokens", EmbeddingPooling.Max), ("pooling_mode_mean_sqrt_len_tokens", null),
                     ("pooling_mode_weightedmean_tokens", null), ("pooling_mode_lasttoken", null),
                 })
            if (Flag(name)) on.Add((name, mode));
        if (on.Count == 0) return (null, $"{path} selects no pooling mode");
        if (on.Count > 1) return (null, $"{path} concatenates several pooling modes ({string.Join(", ", on.Select(o => o.Name))})");
        if (on[0].Mode is null) return (null, $"{path}: {on[0].Name} has no BertSharp equivalent");
        if (root.TryGetProperty("include_prompt", out var ip) && ip.ValueKind == JsonValueKind.False)
            return (null, $"{path}: include_prompt=false is not supported");
        return (on[0].Mode, null);
    }

    static JsonDocument ParseJson(string path)
    {
        try { return JsonDocument.Parse(Tokenization.TextFile.ReadAllText(path)); }
        catch (JsonException e) { throw new FormatException($"{path}: invalid JSON ({e.Message})"); }
    }

    static JsonDocument ParseObject(string path)
    {
        var doc = ParseJson(path);
        if (doc.RootElement.ValueKind != JsonValueKind.Object)
        {
            doc.Dispose();
            throw new FormatException($"{path}: expected a JSON object");
        }
        return doc;
    }

    /// <summary>Parses <c>mean</c> / <c>cls</c> / <c>max</c> / <c>pooler</c>.</summary>
    public static EmbeddingPooling ParsePooling(string name) => name.Trim().ToLowerInvariant() switch
    {
        "mean" => EmbeddingPooling.Mean,
        "cls" => EmbeddingPooling.Cls,
        "max" => EmbeddingPooling.Max,
        "pooler" => EmbeddingPooling.Pooler,
        var other => throw new ArgumentException($"--pooling '{other}' is not supported (expected mean, cls, max or pooler)"),
    };
}
