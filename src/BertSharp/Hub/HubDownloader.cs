using System.Text.Json;
using BertSharp.Checkpoints;

namespace BertSharp.Hub;

/// <summary>One file of a snapshot.</summary>
/// <param name="Downloaded">false when the blob was already in the cache</param>
public sealed record SnapshotFile(string File, string Etag, long Size, bool Downloaded);

/// <summary>A model snapshot in the cache.</summary>
public sealed record SnapshotResult(string RepoId, string Revision, string Commit, string SnapshotDir, IReadOnlyList<SnapshotFile> Files);

/// <summary>
/// Fetches the files BertSharp needs from a Hub repository into the huggingface_hub cache and finds complete
/// snapshots there. Which files: <c>config.json</c>; the weights (<c>model.safetensors</c>, else its sharded
/// index + shards, else <c>pytorch_model.bin</c> (or its index + shards), else <c>onnx/model.onnx</c> + external
/// data, else <c>model.onnx</c>); <c>vocab.txt</c>, <c>tokenizer.json</c>, <c>tokenizer_config.json</c>,
/// <c>special_tokens_map.json</c>; for sentence-transformers repos <c>modules.json</c>,
/// <c>sentence_bert_config.json</c> and the files of the Pooling / Normalize module folders modules.json lists.
/// </summary>
public sealed class HubDownloader(HubSettings settings) : IDisposable
{
    public HubSettings Settings { get; } = settings;
    public HfCache Cache { get; } = new(settings.CacheRoot);
    HubClient? _client;

    /// <summary>The HTTP client (created on first use; never in offline mode).</summary>
    public HubClient Client => _client ??= new HubClient(Settings);

    public void Dispose() => _client?.Dispose();

    /// <summary>Weight files in order of preference (the first one present is taken).</summary>
    public static readonly IReadOnlyList<string> WeightCandidates =
        ["model.safetensors", "model.safetensors.index.json", "pytorch_model.bin", "pytorch_model.bin.index.json", "onnx/model.onnx", "model.onnx"];

    /// <summary>Taken when present.</summary>
    public static readonly IReadOnlyList<string> OptionalFiles =
        ["config.json", "vocab.txt", "tokenizer.json", "tokenizer_config.json", "special_tokens_map.json", "modules.json", "sentence_bert_config.json"];

    /// <summary>What a snapshot folder lacks to be loaded as a model (empty when complete).</summary>
    public static IReadOnlyList<string> MissingModelFiles(string snapshotDir)
    {
        var missing = new List<string>();
        string P(string f) => Path.Combine(snapshotDir, f.Replace('/', Path.DirectorySeparatorChar));
        var weights = WeightCandidates.FirstOrDefault(f => File.Exists(P(f)));
        if (weights is null) missing.Add("model weights (" + string.Join(", ", WeightCandidates) + ")");
        else if (weights.EndsWith(".index.json", StringComparison.Ordinal))
        {
            try
            {
                foreach (var shard in IndexShards(P(weights)))
                    if (!File.Exists(P(shard))) missing.Add(shard);
            }
            catch (Exception e) when (e is JsonException or InvalidDataException)
            {
                missing.Add($"{weights} (unreadable: {e.Message})");
            }
        }
        bool onnx = weights is not null && weights.EndsWith(".onnx", StringComparison.Ordinal);
        if (!onnx && !File.Exists(P("config.json"))) missing.Add("config.json");
        if (!File.Exists(P("vocab.txt")) && !File.Exists(P("tokenizer.json"))) missing.Add("vocab.txt or tokenizer.json");
        return missing;
    }

    /// <summary>The shard files a <c>*.index.json</c> names (its weight_map values), relative to the repo root.</summary>
    static IReadOnlyList<string> IndexShards(string indexPath, string indexFile = "")
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(indexPath));
        if (!doc.RootElement.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{indexPath}: no weight_map object");
        var folder = indexFile.Contains('/') ? indexFile[..(indexFile.LastIndexOf('/') + 1)] : "";
        return map.EnumerateObject().Select(p => p.Value.GetString()).OfType<string>().Distinct().Order(StringComparer.Ordinal)
            .Select(s => folder + s).ToList();
    }

    /// <summary>The module folders (Pooling, Normalize) a sentence-transformers modules.json lists.</summary>
    static IReadOnlyList<string> ModuleFolders(string modulesPath)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(modulesPath));
        var folders = new List<string>();
        if (doc.RootElement.ValueKind != JsonValueKind.Array) return folders;
        foreach (var m in doc.RootElement.EnumerateArray())
        {
            if (m.ValueKind != JsonValueKind.Object) continue;
            var path = m.TryGetProperty("path", out var p) ? p.GetString() : null;
            var type = m.TryGetProperty("type", out var t) ? t.GetString() ?? "" : "";
            if (string.IsNullOrEmpty(path) || path.Contains("..") || path.StartsWith('/')) continue;
            if (type.EndsWith("Pooling", StringComparison.Ordinal) || type.EndsWith("Normalize", StringComparison.Ordinal) ||
                path.EndsWith("_Pooling", StringComparison.Ordinal) || path.EndsWith("_Normalize", StringComparison.Ordinal))
                folders.Add(path.TrimEnd('/'));
        }
        return folders;
    }

    /// <summary>The snapshot folder when the cache holds a loadable model for <paramref name="id"/>; null otherwise.</summary>
    public string? TryResolveCached(HubModelId id)
    {
        var commit = Cache.ResolveCommit(id.RepoId, id.Revision);
        if (commit is null) return null;
        var dir = Cache.SnapshotDir(id.RepoId, commit);
        return Directory.Exists(dir) && MissingModelFiles(dir).Count == 0 ? dir : null;
    }

    /// <summary>Offline resolution: the cached snapshot, or an error that says what is missing and that offline mode is on.</summary>
    public string ResolveOffline(HubModelId id)
    {
        var prefix = $"offline mode is on (HF_HUB_OFFLINE=1) and {id}";
        var where = $"the Hugging Face cache at {Cache.Root}";
        if (!Directory.Exists(Cache.RepoDir(id.RepoId))) throw new HubNotFoundException($"{prefix} is not in {where}; download it first (bert models download {id}) with HF_HUB_OFFLINE unset");
        var commit = Cache.ResolveCommit(id.RepoId, id.Revision)
            ?? throw new HubNotFoundException($"{prefix}: revision '{id.Revision}' is not in {where} (no refs/{id.Revision}; cached: {Describe(Cache.Find(id.RepoId))})");
        var dir = Cache.SnapshotDir(id.RepoId, commit);
        if (!Directory.Exists(dir)) throw new HubNotFoundException($"{prefix}: snapshot {commit} is not in {where}");
        var missing = MissingModelFiles(dir);
        if (missing.Count > 0) throw new HubNotFoundException($"{prefix}: snapshot {commit} in {where} lacks {string.Join("; ", missing)}");
        return dir;
    }

    static string Describe(CachedRepo? repo) =>
        repo is null || repo.Revisions.Count == 0 ? "nothing" :
        string.Join(", ", repo.Revisions.Select(r => r.Refs.Count > 0 ? $"{r.Commit} ({string.Join(", ", r.Refs)})" : r.Commit));

    /// <summary>Synchronous <see cref="DownloadAsync"/>.</summary>
    public SnapshotResult Download(HubModelId id, IDownloadProgress? progress = null, CancellationToken ct = default) =>
        DownloadAsync(id, progress, ct).GetAwaiter().GetResult();

    /// <summary>
    /// Brings the model files of <paramref name="id"/> into the cache (files already there are reused) and records
    /// the revision in <c>refs/</c>. Offline, it only checks the cache.
    /// </summary>
    public async Task<SnapshotResult> DownloadAsync(HubModelId id, IDownloadProgress? progress = null, CancellationToken ct = default)
    {
        if (Settings.Offline)
        {
            var dir = ResolveOffline(id);
            var files = Cache.Find(id.RepoId)!.Revisions.First(r => r.Path == dir).Files
                .Select(f => new SnapshotFile(f, "", new FileInfo(Path.Combine(dir, f)).Length, false)).ToList();
            return new SnapshotResult(id.RepoId, id.Revision, Path.GetFileName(dir), dir, files);
        }
        var repo = id.RepoId;
        var client = Client;
        var info = await client.GetRepoInfoAsync(repo, id.Revision, ct).ConfigureAwait(false);
        var siblings = info is null ? null : new HashSet<string>(info.Files, StringComparer.Ordinal);
        string? commit = info is null ? null : CheckCommit(info.Commit, client, id.ToString());
        var metas = new Dictionary<string, HubFileMetadata?>(StringComparer.Ordinal);

        async Task<HubFileMetadata?> Head(string file)
        {
            if (metas.TryGetValue(file, out var known)) return known;
            var m = await client.GetMetadataAsync(repo, commit ?? id.Revision, file, ct).ConfigureAwait(false);
            if (m is not null) commit ??= CheckCommit(m.Commit, client, file);
            metas[file] = m;
            return m;
        }
        async Task<bool> Exists(string file) => siblings?.Contains(file) ?? await Head(file).ConfigureAwait(false) is not null;

        var queue = new List<string>();
        string? weights = null;
        foreach (var w in WeightCandidates)
            if (await Exists(w).ConfigureAwait(false)) { weights = w; break; }
        if (weights is null)
            throw new HubNotFoundException(
                $"404: {id} has no model weights BertSharp can load on {client.EndpointText} (looked for {string.Join(", ", WeightCandidates)})" +
                (siblings is { Count: > 0 } ? $"; its files: {string.Join(", ", siblings.Order(StringComparer.Ordinal).Take(12))}{(siblings.Count > 12 ? ", …" : "")}" : ""));
        foreach (var f in OptionalFiles)
            if (await Exists(f).ConfigureAwait(false)) queue.Add(f);
        queue.Insert(Math.Min(1, queue.Count), weights);
        if (weights.EndsWith(".onnx", StringComparison.Ordinal))
        {
            // External data beside the graph (files over 2 GB): model.onnx_data / model.onnx.data.
            var extra = siblings is not null
                ? siblings.Where(s => s.StartsWith(weights + "_data", StringComparison.Ordinal) || s == weights + ".data").Order(StringComparer.Ordinal).ToList()
                : [weights + "_data"];
            foreach (var e in extra)
                if (siblings is not null || await Exists(e).ConfigureAwait(false)) queue.Add(e);
        }

        var done = new List<SnapshotFile>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        for (int i = 0; i < queue.Count; i++)
        {
            var file = queue[i];
            if (!seen.Add(file)) continue;
            var (entry, local) = await FetchAsync(repo, id, file, commit, Head, progress, ct).ConfigureAwait(false);
            commit ??= metas.TryGetValue(file, out var mm) ? mm?.Commit : null;
            done.Add(entry);
            if (file.EndsWith(".index.json", StringComparison.Ordinal) && file == weights)
                queue.AddRange(IndexShards(local, file));
            else if (file == "modules.json")
                foreach (var folder in ModuleFolders(local))
                {
                    if (siblings is not null)
                        queue.AddRange(siblings.Where(s => s.StartsWith(folder + "/", StringComparison.Ordinal)).Order(StringComparer.Ordinal));
                    else if (await Exists(folder + "/config.json").ConfigureAwait(false))
                        queue.Add(folder + "/config.json");
                }
        }
        Cache.WriteRef(repo, id.Revision, commit!);
        return new SnapshotResult(repo, id.Revision, commit!, Cache.SnapshotDir(repo, commit!), done);
    }

    async Task<(SnapshotFile Entry, string Local)> FetchAsync(
        string repo, HubModelId id, string file, string? commit, Func<string, Task<HubFileMetadata?>> head, IDownloadProgress? progress, CancellationToken ct)
    {
        // A pinned commit whose snapshot already has the file needs no request at all (as in huggingface_hub).
        if (commit is not null)
        {
            var pointer = Cache.PointerPath(repo, commit, file);
            if (File.Exists(pointer))
                return (new SnapshotFile(file, EtagOf(pointer), new FileInfo(pointer).Length, false), pointer);
        }
        var meta = await head(file).ConfigureAwait(false)
            ?? throw new HubNotFoundException($"404: {file} is listed in {id} but {Client.EndpointText} does not serve it");
        commit ??= meta.Commit;
        var blob = Cache.BlobPath(repo, meta.Etag);
        bool downloaded = false;
        if (!File.Exists(blob))
        {
            await Client.DownloadBlobAsync(repo, meta, blob, progress?.File(file), ct).ConfigureAwait(false);
            downloaded = true;
        }
        var local = Cache.Link(repo, commit, file, meta.Etag);
        return (new SnapshotFile(file, meta.Etag, new FileInfo(blob).Length, downloaded), local);
    }

    /// <summary>A commit id becomes a folder name: refuse anything that could leave the snapshots folder.</summary>
    static string CheckCommit(string commit, HubClient client, string what) =>
        commit.Length is > 0 and <= 128 && commit.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_')
            ? commit
            : throw new HubConnectionException($"{client.EndpointText} sent an unusable commit id '{commit}' for {what}");

    static string EtagOf(string pointer) => new FileInfo(pointer).LinkTarget is { } t ? Path.GetFileName(t) : "";
}
