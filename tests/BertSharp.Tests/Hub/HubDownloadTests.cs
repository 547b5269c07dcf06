using System.Text;
using BertSharp.Hub;
using BertSharp.Inference;
using Xunit;

namespace BertSharp.Tests.Hub;

/// <summary>Shared fixtures: the golden tiny-random model as a Hub repository, a temporary cache.</summary>
public abstract class HubTestBase : IDisposable
{
    protected const string Commit = "0123456789abcdef0123456789abcdef01234567";
    protected const string Commit2 = "fedcba9876543210fedcba9876543210fedcba98";
    protected readonly string Tmp = Path.Combine(Path.GetTempPath(), "bertsharp-hub-" + Guid.NewGuid().ToString("N"));
    protected string CacheRoot => Path.Combine(Tmp, "hub");

    protected static string GoldenDir => TestAssets.Path(TestAssets.TinyRandom);

    protected const string ModulesJson = """
        [
          {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
          {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
          {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        ]
        """;

    protected const string PoolingJson = """{"word_embedding_dimension": 128, "pooling_mode_cls_token": false, "pooling_mode_mean_tokens": true}""";

    /// <summary>The golden model's four files, plus sentence-transformers modules and files that must not be fetched.</summary>
    protected static Dictionary<string, byte[]> TinyRepoFiles(bool sentenceTransformers = true)
    {
        var files = new Dictionary<string, byte[]>(StringComparer.Ordinal);
        foreach (var f in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json" })
            files[f] = File.ReadAllBytes(Path.Combine(GoldenDir, f));
        files["pytorch_model.bin"] = File.ReadAllBytes(Path.Combine(GoldenDir, "pytorch_model.bin")); // not needed: safetensors wins
        files["README.md"] = Encoding.UTF8.GetBytes("# tiny\n");
        files[".gitattributes"] = Encoding.UTF8.GetBytes("*.safetensors filter=lfs\n");
        if (sentenceTransformers)
        {
            files["modules.json"] = Encoding.UTF8.GetBytes(ModulesJson);
            files["1_Pooling/config.json"] = Encoding.UTF8.GetBytes(PoolingJson);
        }
        return files;
    }

    private protected HubSettings Settings(FakeHub hub) => new()
    {
        Endpoint = hub.Endpoint,
        CacheRoot = CacheRoot,
        Timeout = TimeSpan.FromSeconds(10),
        RetryDelay = TimeSpan.FromMilliseconds(20),
        MaxRetries = 3,
    };

    protected HubSettings OfflineSettings() => new() { Endpoint = "http://127.0.0.1:9", CacheRoot = CacheRoot, Offline = true };

    protected static string Json(IEnumerable<MaskPredictions> masks) =>
        string.Join("|", masks.Select(m => m.Position + ":" + string.Join(",", m.Predictions.Select(p => $"{p.Id}={p.Score:R}"))));

    protected static string FillMask(string dir)
    {
        using var p = BertPipeline.Load(dir);
        return Json(p.FillMask("the capital of france is [MASK] and the [MASK] is big.", 5));
    }

    public void Dispose()
    {
        GC.SuppressFinalize(this);
        try { if (Directory.Exists(Tmp)) Directory.Delete(Tmp, recursive: true); } catch (IOException) { }
    }
}

public sealed class HubDownloadTests : HubTestBase
{
    [AssetFact(TestAssets.TinyRandom, Timeout = 120_000)]
    public async Task DownloadWritesHuggingFaceCacheLayoutAndLoadsLikeTheDirectory()
    {
        using var hub = new FakeHub();
        var files = TinyRepoFiles();
        hub.Add("org/tiny", Commit, files);
        using var dl = new HubDownloader(Settings(hub));
        var r = await dl.DownloadAsync(HubModelId.Parse("org/tiny"));

        var repoDir = Path.Combine(CacheRoot, "models--org--tiny");
        Assert.Equal(Commit, r.Commit);
        Assert.Equal(Path.Combine(repoDir, "snapshots", Commit), r.SnapshotDir);
        Assert.Equal(Commit, File.ReadAllText(Path.Combine(repoDir, "refs", "main")));
        var expected = new[] { "1_Pooling/config.json", "config.json", "model.safetensors", "modules.json", "tokenizer_config.json", "vocab.txt" };
        Assert.Equal(expected, r.Files.Select(f => f.File).Order(StringComparer.Ordinal));
        foreach (var f in expected)
        {
            var etag = FakeHub.Repo.IsLfs(f) ? FakeHub.Sha256(files[f]) : FakeHub.GitSha1(files[f]);
            var link = new FileInfo(Path.Combine(r.SnapshotDir, f));
            var depth = f.Count(c => c == '/');
            Assert.Equal(string.Concat(Enumerable.Repeat("../", depth + 2)) + "blobs/" + etag, link.LinkTarget!.Replace('\\', '/'));
            Assert.Equal(files[f], File.ReadAllBytes(Path.Combine(repoDir, "blobs", etag)));
        }
        Assert.Equal(expected.Length, Directory.GetFiles(Path.Combine(repoDir, "blobs")).Length); // no .incomplete left
        Assert.Contains(hub.Requests, q => q.Method == "HEAD" && q.Path == "/org/tiny/resolve/" + Commit + "/model.safetensors");
        Assert.DoesNotContain(hub.Requests, q => q.Path.EndsWith("pytorch_model.bin") || q.Path.EndsWith("README.md"));

        // --model ORG/NAME through the resolver: the cache source finds the snapshot; the model predicts as the directory does.
        var resolved = new HfCacheSource(Settings(hub)).TryResolve("org/tiny");
        Assert.Equal(r.SnapshotDir, resolved);
        Assert.Equal(FillMask(GoldenDir), FillMask(resolved!));

        // Downloading again costs HEADs at most, no file transfer.
        int gets = hub.Requests.Count(q => q.Method == "GET" && !q.Path.StartsWith("/api/"));
        var again = await dl.DownloadAsync(HubModelId.Parse("org/tiny@main"));
        Assert.All(again.Files, f => Assert.False(f.Downloaded));
        Assert.Equal(gets, hub.Requests.Count(q => q.Method == "GET" && !q.Path.StartsWith("/api/")));
    }

    [AssetFact(TestAssets.TinyRandom, Timeout = 120_000)]
    public async Task CachedModelIsReusedOfflineAndMissingPiecesAreNamed()
    {
        string snapshot;
        using (var hub = new FakeHub())
        {
            hub.Add("org/tiny", Commit, TinyRepoFiles(sentenceTransformers: false));
            using var dl = new HubDownloader(Settings(hub));
            snapshot = (await dl.DownloadAsync(HubModelId.Parse("org/tiny"))).SnapshotDir;
        }
        // Server gone: the cache source resolves without a request, HF_HUB_OFFLINE resolves from the cache.
        Assert.Equal(snapshot, new HfCacheSource(OfflineSettings()).TryResolve("org/tiny"));
        Assert.Equal(snapshot, new HubDownloadSource(OfflineSettings()).TryResolve("org/tiny"));
        Assert.Equal(snapshot, new HubDownloadSource(OfflineSettings()).TryResolve("org/tiny@" + Commit));

        var e1 = Assert.Throws<HubNotFoundException>(() => new HubDownloadSource(OfflineSettings()).TryResolve("org/other"));
        Assert.Contains("HF_HUB_OFFLINE=1", e1.Message);
        Assert.Contains("org/other is not in the Hugging Face cache", e1.Message);
        var e2 = Assert.Throws<HubNotFoundException>(() => new HubDownloadSource(OfflineSettings()).TryResolve("org/tiny@v2"));
        Assert.Contains("revision 'v2'", e2.Message);
        Assert.Contains(Commit, e2.Message); // says what is cached

        File.Delete(Path.Combine(snapshot, "vocab.txt"));
        Assert.Null(new HfCacheSource(OfflineSettings()).TryResolve("org/tiny"));
        var e3 = Assert.Throws<HubNotFoundException>(() => new HubDownloadSource(OfflineSettings()).TryResolve("org/tiny"));
        Assert.Contains("lacks vocab.txt or tokenizer.json", e3.Message);

        // Online with the server stopped: a clear connection error naming the cache and offline mode.
        using var down = new FakeHub();
        var endpoint = down.Endpoint;
        down.Dispose();
        var s = new HubSettings { Endpoint = endpoint, CacheRoot = CacheRoot, MaxRetries = 0, Timeout = TimeSpan.FromSeconds(5) };
        var e4 = Assert.Throws<HubConnectionException>(() => new HubDownloadSource(s).TryResolve("org/tiny"));
        Assert.Contains("could not reach", e4.Message);
        Assert.Contains("HF_HUB_OFFLINE=1", e4.Message);
        await Task.CompletedTask;
    }

    [AssetFact(TestAssets.TinyRandom, Timeout = 120_000)]
    public async Task DroppedConnectionIsResumedWithRange()
    {
        using var hub = new FakeHub();
        var files = TinyRepoFiles(sentenceTransformers: false);
        hub.Add("org/tiny", Commit, files);
        var sha = FakeHub.Sha256(files["model.safetensors"]);
        var blob = Path.Combine(CacheRoot, "models--org--tiny", "blobs", sha);

        // No retries: the call fails, the bytes received so far stay in blobs/<sha256>.incomplete.
        hub.DropTransfers = 1;
        using (var dl = new HubDownloader(Settings(hub) with { MaxRetries = 0 }))
        {
            var e = await Assert.ThrowsAsync<HubConnectionException>(() => dl.DownloadAsync(HubModelId.Parse("org/tiny")));
            Assert.Contains("resume", e.Message);
        }
        var partial = new FileInfo(blob + ".incomplete");
        Assert.True(partial.Exists);
        long have = partial.Length;
        Assert.InRange(have, 1, hub.DropAfterBytes);
        Assert.False(File.Exists(blob));

        // The next run asks only for the rest.
        using (var dl = new HubDownloader(Settings(hub)))
            await dl.DownloadAsync(HubModelId.Parse("org/tiny"));
        Assert.Contains(hub.Requests, q => q.Path == "/cdn/" + sha && q.Range == $"bytes={have}-");
        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(blob));
        Assert.False(File.Exists(blob + ".incomplete"));
    }

    [AssetFact(TestAssets.TinyRandom, Timeout = 120_000)]
    public async Task DropsWithinOneCallAreRetriedFromWhereTheyStopped()
    {
        using var hub = new FakeHub();
        var files = TinyRepoFiles(sentenceTransformers: false);
        hub.Add("org/tiny", Commit, files);
        hub.DropTransfers = 2;
        hub.DropAfterBytes = 3_000_000;
        using var dl = new HubDownloader(Settings(hub));
        var r = await dl.DownloadAsync(HubModelId.Parse("org/tiny"));
        var sha = FakeHub.Sha256(files["model.safetensors"]);
        var cdn = hub.Requests.Where(q => q.Path == "/cdn/" + sha).ToList();
        Assert.Equal(3, cdn.Count);
        Assert.Null(cdn[0].Range);
        Assert.All(cdn.Skip(1), q => Assert.StartsWith("bytes=", q.Range));
        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(Path.Combine(r.SnapshotDir, "model.safetensors")));
    }

    [AssetFact(TestAssets.TinyRandom, Timeout = 120_000)]
    public async Task AFullReplyToARangeRequestRestartsTheFile()
    {
        using var hub = new FakeHub { IgnoreRange = true, DropTransfers = 1 };
        var files = TinyRepoFiles(sentenceTransformers: false);
        hub.Add("org/tiny", Commit, files);
        using var dl = new HubDownloader(Settings(hub));
        var r = await dl.DownloadAsync(HubModelId.Parse("org/tiny"));
        var sha = FakeHub.Sha256(files["model.safetensors"]);
        Assert.Contains(hub.Requests, q => q.Path == "/cdn/" + sha && q.Range is not null);
        Assert.Equal(files["model.safetensors"], File.ReadAllBytes(Path.Combine(r.SnapshotDir, "model.safetensors")));
    }

    [AssetFact(TestAssets.TinyRandom, Timeout = 120_000)]
    public async Task ShardedCheckpointsBringTheirShards()
    {
        // Split the golden weights into two safetensors shards with an HF index, as save_pretrained(max_shard_size) does.
        var work = Path.Combine(Tmp, "shards");
        Directory.CreateDirectory(work);
        var weights = BertSharp.Checkpoints.SafeTensors.Load(Path.Combine(GoldenDir, "model.safetensors"));
        var names = weights.Keys.Order(StringComparer.Ordinal).ToList();
        var map = new Dictionary<string, string>();
        var files = TinyRepoFiles(sentenceTransformers: false);
        files.Remove("model.safetensors");
        files.Remove("pytorch_model.bin");
        for (int s = 0; s < 2; s++)
        {
            var shard = $"model-0000{s + 1}-of-00002.safetensors";
            var part = names.Where((_, i) => i % 2 == s).ToList();
            BertSharp.Checkpoints.SafeTensors.Save(Path.Combine(work, shard), part.Select(n => KeyValuePair.Create(n, weights[n])), new Dictionary<string, string> { ["format"] = "pt" });
            foreach (var n in part) map[n] = shard;
            files[shard] = File.ReadAllBytes(Path.Combine(work, shard));
        }
        foreach (var t in weights.Values) t.Dispose();
        files["model.safetensors.index.json"] = Encoding.UTF8.GetBytes(System.Text.Json.JsonSerializer.Serialize(new { metadata = new { total_size = 1 }, weight_map = map }));
        using var hub = new FakeHub();
        hub.Add("org/sharded", Commit, files);
        using var dl = new HubDownloader(Settings(hub));
        var r = await dl.DownloadAsync(HubModelId.Parse("org/sharded"));
        Assert.Contains("model-00001-of-00002.safetensors", r.Files.Select(f => f.File));
        Assert.Contains("model-00002-of-00002.safetensors", r.Files.Select(f => f.File));
        Assert.Equal(r.SnapshotDir, new HfCacheSource(Settings(hub)).TryResolve("org/sharded"));
        Assert.Equal(FillMask(GoldenDir), FillMask(r.SnapshotDir));

        // A shard missing from the cache makes the snapshot incomplete (and says which).
        File.Delete(Path.Combine(r.SnapshotDir, "model-00002-of-00002.safetensors"));
        Assert.Equal(["model-00002-of-00002.safetensors"], HubDownloader.MissingModelFiles(r.SnapshotDir));
    }

    [Fact(Timeout = 60_000)]
    public async Task OnnxOnlyReposBringTheGraphAndItsExternalData()
    {
        using var hub = new FakeHub();
        hub.Add("org/onnx", Commit, new Dictionary<string, byte[]>
        {
            ["config.json"] = Encoding.UTF8.GetBytes("{}"),
            ["vocab.txt"] = Encoding.UTF8.GetBytes("[PAD]\n"),
            ["onnx/model.onnx"] = [1, 2, 3],
            ["onnx/model.onnx_data"] = [4, 5, 6],
            ["onnx/model_quantized.onnx"] = [7],
            ["tf_model.h5"] = [8],
        });
        using var dl = new HubDownloader(Settings(hub));
        var r = await dl.DownloadAsync(HubModelId.Parse("org/onnx"));
        Assert.Equal(["config.json", "onnx/model.onnx", "onnx/model.onnx_data", "vocab.txt"], r.Files.Select(f => f.File).Order(StringComparer.Ordinal));
        Assert.Equal("../../../blobs/" + FakeHub.Sha256([1, 2, 3]), new FileInfo(Path.Combine(r.SnapshotDir, "onnx", "model.onnx")).LinkTarget);
        Assert.Empty(HubDownloader.MissingModelFiles(r.SnapshotDir));
    }

    [AssetFact(TestAssets.TinyRandom, Timeout = 120_000)]
    public async Task WrongChecksumIsRefusedAndDeleted()
    {
        using var hub = new FakeHub();
        var files = TinyRepoFiles(sentenceTransformers: false);
        hub.Add("org/tiny", Commit, files);
        hub.CorruptLfs = true;
        using var dl = new HubDownloader(Settings(hub));
        var e = await Assert.ThrowsAsync<InvalidDataException>(() => dl.DownloadAsync(HubModelId.Parse("org/tiny")));
        Assert.Contains("sha256 mismatch", e.Message);
        Assert.Contains("model.safetensors", e.Message);
        var blobs = Path.Combine(CacheRoot, "models--org--tiny", "blobs");
        Assert.DoesNotContain(Directory.GetFiles(blobs), f => Path.GetFileName(f).StartsWith(FakeHub.Sha256(files["model.safetensors"])));
        Assert.False(File.Exists(Path.Combine(CacheRoot, "models--org--tiny", "refs", "main")));
        Assert.Null(new HfCacheSource(Settings(hub)).TryResolve("org/tiny"));
    }

    [AssetFact(TestAssets.TinyRandom, Timeout = 120_000)]
    public async Task WithoutTheApiTheFilesAreProbedAndRenamedReposFollowed()
    {
        using var hub = new FakeHub { ApiEnabled = false };
        var files = TinyRepoFiles();
        hub.Add("org/tiny", Commit, files);
        hub.Renamed["old/tiny"] = "org/tiny";
        using var dl = new HubDownloader(Settings(hub));
        var r = await dl.DownloadAsync(HubModelId.Parse("old/tiny"));
        Assert.Equal(Commit, r.Commit);
        Assert.Equal(["1_Pooling/config.json", "config.json", "model.safetensors", "modules.json", "tokenizer_config.json", "vocab.txt"],
            r.Files.Select(f => f.File).Order(StringComparer.Ordinal));
        // As huggingface_hub does, the cache keeps the name that was asked for.
        Assert.Equal(Commit, File.ReadAllText(Path.Combine(CacheRoot, "models--old--tiny", "refs", "main")));
        Assert.Contains(hub.Requests, q => q.Method == "HEAD" && q.Path == "/old/tiny/resolve/main/model.safetensors");
        Assert.Contains(hub.Requests, q => q.Method == "HEAD" && q.Path == "/org/tiny/resolve/main/model.safetensors");
        Assert.Contains(hub.Requests, q => q.Method == "HEAD" && q.Path == $"/old/tiny/resolve/{Commit}/1_Pooling/config.json");
        Assert.DoesNotContain(hub.Requests, q => q.Path.EndsWith("pytorch_model.bin"));
    }

    [AssetFact(TestAssets.TinyRandom, Timeout = 120_000)]
    public async Task FullDiskIsReportedAsSuchAndNotRetried()
    {
        using var hub = new FakeHub();
        hub.Add("org/tiny", Commit, TinyRepoFiles(sentenceTransformers: false));
        using var dl = new HubDownloader(Settings(hub));
        dl.Client.OpenPartial = p => new FullDiskStream(p, 1_000_000);
        var e = await Assert.ThrowsAsync<IOException>(() => dl.DownloadAsync(HubModelId.Parse("org/tiny")));
        Assert.Contains("disk full", e.Message);
        Assert.Contains("HF_HUB_CACHE", e.Message);
        Assert.Single(hub.Requests, q => q.Path.StartsWith("/cdn/"));
    }

    sealed class FullDiskStream(string path, long capacity) : FileStream(path, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None)
    {
        public override void Write(byte[] array, int offset, int count)
        {
            if (Length + count > capacity) throw new IOException("No space left on device", OperatingSystem.IsWindows() ? unchecked((int)0x80070070) : 28);
            base.Write(array, offset, count);
        }
    }
}
