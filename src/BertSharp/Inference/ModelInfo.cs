using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Inference;

/// <summary>Hugging Face BERT state-dict names: which part of a model a tensor belongs to.</summary>
public static class CheckpointNames
{
    static readonly string[] BertParts = ["embeddings.", "encoder.", "pooler."];
    static readonly string[] HeadParts = ["cls.", "classifier.", "qa_outputs."];

    /// <summary>The name without a leading <c>bert.</c>.</summary>
    public static string Unprefixed(string name) => name.StartsWith("bert.", StringComparison.Ordinal) ? name[5..] : name;

    /// <summary>True for names of the encoder (embeddings, layers, pooler) or of a BERT head.</summary>
    public static bool IsBert(string name)
    {
        var n = Unprefixed(name);
        return BertParts.Any(p => n.StartsWith(p, StringComparison.Ordinal)) || HeadParts.Any(p => name.StartsWith(p, StringComparison.Ordinal));
    }

    /// <summary>The heads a set of tensor names contains: mlm, nsp, pooler, classifier, qa_outputs.</summary>
    public static SortedDictionary<string, bool> Heads(IEnumerable<string> names)
    {
        var set = names.ToList();
        bool Any(string prefix) => set.Any(n => n.StartsWith(prefix, StringComparison.Ordinal));
        return new SortedDictionary<string, bool>(StringComparer.Ordinal)
        {
            ["mlm"] = Any("cls.predictions."),
            ["nsp"] = Any("cls.seq_relationship."),
            ["pooler"] = set.Any(n => Unprefixed(n).StartsWith("pooler.", StringComparison.Ordinal)),
            ["classifier"] = Any("classifier."),
            ["qa_outputs"] = Any("qa_outputs."),
        };
    }
}

/// <summary>Where a model came from. The Hub resolver fills <see cref="Snapshot"/>/<see cref="Commit"/> for cache snapshots.</summary>
public sealed record ModelSource(string Path, string Kind = "local directory", string? Snapshot = null, string? Commit = null);

/// <summary>Everything <c>bert info --model</c> reports about a model directory.</summary>
public sealed class ModelInfo
{
    /// <summary>safetensors / pytorch zip / TF bundle / sharded / onnx (or the format enum's name for newer readers).</summary>
    public required string Format { get; init; }
    public required string WeightsPath { get; init; }
    public required ModelSource Source { get; init; }
    public required BertConfig Config { get; init; }
    /// <summary>The config file, or where the loader inferred the config from (an ONNX graph without config.json).</summary>
    public required string ConfigSource { get; init; }
    public bool ConfigInferred { get; init; }
    /// <summary>HF name → the rule that recovered it from an ONNX graph (empty for formats that store HF names).</summary>
    public IReadOnlyDictionary<string, string> NameRules { get; init; } = new Dictionary<string, string>();
    /// <summary>Distinct parameters of BertModel / BertForMaskedLM / BertForPreTraining built from the config.</summary>
    public required IReadOnlyDictionary<string, long> ParameterCounts { get; init; }
    /// <summary>Tensors stored in the checkpoint (after name mapping).</summary>
    public required int CheckpointTensors { get; init; }
    /// <summary>Elements of the stored tensors, tied aliases and the position_ids buffer excluded.</summary>
    public required long CheckpointParameters { get; init; }
    /// <summary>Stored dtype → number of tensors.</summary>
    public required IReadOnlyDictionary<string, int> DTypes { get; init; }
    public required IReadOnlyDictionary<string, bool> Heads { get; init; }
    /// <summary>Free-form findings: name mapping rules a loader applied, tensors no BERT model uses, inferred settings.</summary>
    public List<string> Notes { get; } = [];

    /// <summary>
    /// Loaders that know more about a directory than its files show (the ONNX importer's name-recovery rules, the
    /// Hub resolver's snapshot) add their notes here; each is asked once per <see cref="Read"/>.
    /// </summary>
    public static List<Func<ModelDirectory, IEnumerable<string>>> NoteProviders { get; } = [];

    /// <summary>A readable name for the format of a weights file.</summary>
    public static string FormatName(string weightsPath)
    {
        if (weightsPath.EndsWith(".onnx", StringComparison.OrdinalIgnoreCase)) return "onnx";
        return CheckpointFiles.DetectFormat(weightsPath) switch
        {
            CheckpointFormat.SafeTensors => "safetensors",
            CheckpointFormat.TorchZip => "pytorch zip",
            CheckpointFormat.TorchLegacy => "pytorch legacy",
            CheckpointFormat.TfBundle => "TF bundle",
            CheckpointFormat.ShardedIndex => "sharded",
            var other => other.ToString().ToLowerInvariant(),
        };
    }

    /// <summary>Distinct parameters (tied counted once) per model class, by building each on the CPU.</summary>
    public static Dictionary<string, long> CountParameters(BertConfig c)
    {
        using var _ = no_grad();
        var counts = new Dictionary<string, long>();
        using (var m = new BertModel(c)) counts["BertModel"] = ModelUtils.CountParameters(m);
        using (var m = new BertForMaskedLM(c)) counts["BertForMaskedLM"] = ModelUtils.CountParameters(m);
        using (var m = new BertForPreTraining(c)) counts["BertForPreTraining"] = ModelUtils.CountParameters(m);
        return counts;
    }

    public static ModelInfo Read(string modelPathOrId, ModelSource? source = null)
    {
        var path = ModelResolver.Resolve(modelPathOrId);
        var dir = ModelDirectory.Open(path);
        var weights = ModelConverter.LoadNamedWeights(dir);
        try
        {
            var dtypes = new SortedDictionary<string, int>(StringComparer.Ordinal);
            long elements = 0;
            foreach (var (name, t) in weights)
            {
                var d = SafeTensors.ToDTypeString(t.dtype);
                dtypes[d] = dtypes.GetValueOrDefault(d) + 1;
                if (!ModelUtils.IsTiedAlias(name) && !name.EndsWith("position_ids", StringComparison.Ordinal)) elements += t.numel();
            }
            var info = new ModelInfo
            {
                Format = FormatName(dir.WeightsPath),
                WeightsPath = dir.WeightsPath,
                Source = source ?? SourceOf(modelPathOrId, path),
                Config = dir.Config,
                ConfigSource = dir.ConfigSource,
                ConfigInferred = dir.ConfigInferred,
                NameRules = dir.NameRules ?? new Dictionary<string, string>(),
                ParameterCounts = CountParameters(dir.Config),
                CheckpointTensors = weights.Count,
                CheckpointParameters = elements,
                DTypes = dtypes,
                Heads = CheckpointNames.Heads(weights.Keys),
            };
            var foreign = weights.Keys.Where(n => !CheckpointNames.IsBert(n)).Order(StringComparer.Ordinal).ToList();
            if (foreign.Count > 0)
                info.Notes.Add($"{foreign.Count} tensors have no BERT name and are ignored when loading: {string.Join(", ", foreign.Take(5))}{(foreign.Count > 5 ? ", …" : "")}");
            var tied = weights.Keys.Where(ModelUtils.IsTiedAlias).ToList();
            if (tied.Count > 0) info.Notes.Add($"tied MLM decoder stored explicitly ({string.Join(", ", tied)}); it is the word-embedding matrix and cls.predictions.bias");
            if (!weights.Keys.Any(n => n.StartsWith("bert.", StringComparison.Ordinal)) && weights.Keys.Any(n => n.StartsWith("embeddings.", StringComparison.Ordinal)))
                info.Notes.Add("encoder-only checkpoint (BertModel names without the 'bert.' prefix)");
            if (info.ConfigInferred) info.Notes.Add($"no config file: the configuration was {info.ConfigSource}");
            foreach (var g in info.NameRules.GroupBy(kv => RuleKind(kv.Value)).OrderByDescending(g => g.Count()))
                info.Notes.Add($"ONNX name recovery: {g.Count()} tensor{(g.Count() == 1 ? "" : "s")} by rule '{g.Key}' (e.g. {g.First().Key})");
            var st = SentenceTransformersConfig.Read(path);
            if (st.Files.Count > 0)
                info.Notes.Add($"sentence-transformers model: pooling {st.Pooling?.ToString().ToLowerInvariant() ?? "(none)"}, normalize {(st.Normalize == true ? "on" : "off")}" +
                               (st.MaxSeqLength is { } m ? $", max_seq_length {m}" : "") + (st.Unsupported is { } u ? $"; {u}" : ""));
            foreach (var provider in NoteProviders) info.Notes.AddRange(provider(dir));
            return info;
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    /// <summary>A name-recovery rule without the tensor it names (<c>Add(encoder.layer.0.output.dense.bias)</c> → <c>Add(…)</c>).</summary>
    public static string RuleKind(string rule) => System.Text.RegularExpressions.Regex.Replace(rule, @"\([\w.]+\)", "(…)");

    /// <summary>Where a resolved path came from: a Hugging Face cache snapshot (<c>…/models--ORG--NAME/snapshots/COMMIT</c>) or a local path.</summary>
    static ModelSource SourceOf(string asked, string resolved)
    {
        var full = System.IO.Path.GetFullPath(resolved);
        var dir = Directory.Exists(full) ? full : System.IO.Path.GetDirectoryName(full)!;
        var commit = System.IO.Path.GetFileName(dir);
        var snapshots = System.IO.Path.GetDirectoryName(dir);
        var repo = snapshots is null ? null : System.IO.Path.GetDirectoryName(snapshots);
        if (snapshots is not null && repo is not null && System.IO.Path.GetFileName(snapshots) == "snapshots"
            && System.IO.Path.GetFileName(repo).StartsWith("models--", StringComparison.Ordinal))
            return new ModelSource(asked, "hf cache", dir, commit);
        return new ModelSource(full, File.Exists(full) ? "local file" : "local directory");
    }

    /// <summary>The JSON <c>bert info --model --json</c> prints.</summary>
    public JsonObject ToJson() => new()
    {
        ["format"] = Format,
        ["weights"] = WeightsPath,
        ["source"] = new JsonObject
        {
            ["path"] = Source.Path, ["kind"] = Source.Kind, ["snapshot"] = Source.Snapshot, ["commit"] = Source.Commit,
        },
        ["config"] = JsonNode.Parse(Config.ToJson()),
        ["config_source"] = ConfigSource,
        ["config_inferred"] = ConfigInferred,
        ["name_rules"] = new JsonObject(NameRules.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
        ["parameters"] = new JsonObject(ParameterCounts.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
        ["checkpoint"] = new JsonObject
        {
            ["tensors"] = CheckpointTensors,
            ["parameters"] = CheckpointParameters,
            ["dtypes"] = new JsonObject(DTypes.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
        },
        ["heads"] = new JsonObject(Heads.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
        ["notes"] = new JsonArray([.. Notes.Select(n => (JsonNode?)JsonValue.Create(n))]),
    };
}
