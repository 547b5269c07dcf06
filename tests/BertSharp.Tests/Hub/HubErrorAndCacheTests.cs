using System.Text;
using System.Text.Json;
using BertSharp.Hub;
using BertSharp.Inference;
using BertSharp.Tests.Cli;
using Xunit;

namespace BertSharp.Tests.Hub;

public sealed class HubErrorTests : HubTestBase
{
    static Dictionary<string, byte[]> SmallRepo() => new()
    {
        ["config.json"] = Encoding.UTF8.GetBytes("{}"),
        ["model.safetensors"] = Encoding.UTF8.GetBytes("not really weights but bytes with a sha256"),
        ["vocab.txt"] = Encoding.UTF8.GetBytes("[PAD]\n[UNK]\n"),
    };

    [Fact(Timeout = 60_000)]
    public async Task AuthAndNotFoundErrorsSayWhatIsWrong()
    {
        using var hub = new FakeHub();
        hub.Add("org/public", Commit, SmallRepo());
        hub.Add("org/private", Commit, SmallRepo(), isPrivate: true);
        hub.Add("org/gated", Commit, SmallRepo(), gated: true);
        hub.Add("org/empty", Commit, new Dictionary<string, byte[]> { ["README.md"] = [1, 2, 3] });
        using var dl = new HubDownloader(Settings(hub));

        var e1 = await Assert.ThrowsAsync<HubAuthException>(() => dl.DownloadAsync(HubModelId.Parse("org/missing")));
        Assert.Contains("401", e1.Message);
        Assert.Contains("org/missing", e1.Message);
        Assert.Contains("HF_TOKEN", e1.Message);
        var e2 = await Assert.ThrowsAsync<HubAuthException>(() => dl.DownloadAsync(HubModelId.Parse("org/private")));
        Assert.Contains("private or gated", e2.Message);
        var e3 = await Assert.ThrowsAsync<HubAuthException>(() => dl.DownloadAsync(HubModelId.Parse("org/gated")));
        Assert.Contains("403", e3.Message);
        Assert.Contains("gated", e3.Message);
        var e4 = await Assert.ThrowsAsync<HubNotFoundException>(() => dl.DownloadAsync(HubModelId.Parse("org/public@v9")));
        Assert.Contains("revision 'v9' not found in org/public", e4.Message);
        var e5 = await Assert.ThrowsAsync<HubNotFoundException>(() => dl.DownloadAsync(HubModelId.Parse("org/empty")));
        Assert.Contains("no model weights", e5.Message);
        Assert.Contains("README.md", e5.Message);

        // Without the API, a missing file is found by probing: same errors.
        hub.ApiEnabled = false;
        var e6 = await Assert.ThrowsAsync<HubNotFoundException>(() => dl.DownloadAsync(HubModelId.Parse("org/public@v9")));
        Assert.Contains("revision 'v9'", e6.Message);
        Assert.Null(await dl.Client.GetMetadataAsync("org/public", "main", "nope.json"));
    }

    [Fact(Timeout = 60_000)]
    public async Task TokenGoesToTheHubButNotToACdnOnAnotherOriginAndIsNeverShown()
    {
        using var hub = new FakeHub { Token = "hf_secret_token_123" };
        using var cdn = new FakeHub(hub.Blobs);
        hub.CdnBase = cdn.Endpoint;
        hub.Add("org/private", Commit, SmallRepo(), isPrivate: true);

        using (var wrong = new HubDownloader(Settings(hub) with { Token = "hf_wrong_token_456" }))
        {
            var e = await Assert.ThrowsAsync<HubAuthException>(() => wrong.DownloadAsync(HubModelId.Parse("org/private")));
            Assert.Contains("token", e.Message);
            Assert.DoesNotContain("hf_wrong_token_456", e.Message);
        }
        using var dl = new HubDownloader(Settings(hub) with { Token = "hf_secret_token_123" });
        var r = await dl.DownloadAsync(HubModelId.Parse("org/private"));
        Assert.Equal(3, r.Files.Count);
        Assert.All(hub.Requests, q => Assert.True(q.HasAuthorization));
        Assert.Contains(hub.Requests, q => q.Authorization == "Bearer hf_secret_token_123");
        Assert.NotEmpty(cdn.Requests);
        Assert.All(cdn.Requests, q => Assert.False(q.HasAuthorization));
    }

    [Fact(Timeout = 60_000)]
    public async Task AHungServerTimesOutWithAClearError()
    {
        using var hub = new FakeHub { Stall = TimeSpan.FromSeconds(3) };
        hub.Add("org/public", Commit, SmallRepo());
        using var dl = new HubDownloader(Settings(hub) with { Timeout = TimeSpan.FromMilliseconds(500), MaxRetries = 0 });
        var sw = System.Diagnostics.Stopwatch.StartNew();
        var e = await Assert.ThrowsAsync<HubConnectionException>(() => dl.DownloadAsync(HubModelId.Parse("org/public")));
        Assert.Contains("did not answer within", e.Message);
        Assert.True(sw.Elapsed < TimeSpan.FromSeconds(2.5), sw.Elapsed.ToString());
    }

    [Fact]
    public void ModelIdsParseLikeTheHub()
    {
        Assert.Equal(new HubModelId("bert-base-uncased", "main"), HubModelId.TryParse("bert-base-uncased"));
        Assert.Equal(new HubModelId("sentence-transformers/all-MiniLM-L6-v2", "v1.0"), HubModelId.TryParse("sentence-transformers/all-MiniLM-L6-v2@v1.0"));
        Assert.Equal(new HubModelId("org/m", "refs/pr/1"), HubModelId.TryParse("org/m@refs/pr/1"));
        Assert.True(HubModelId.Parse("org/m@" + Commit).RevisionIsCommit);
        foreach (var notAnId in new[] { "/abs/path", "./rel", "../up", "a/b/c", "org/na--me", "org/..", "C:\\models\\x", "x.git", "", " " })
            Assert.Null(HubModelId.TryParse(notAnId));
        foreach (var badRev in new[] { "org/m@", "org/m@../../etc", "org/m@a b", "org/m@/x" })
            Assert.Contains("bad revision", Assert.Throws<ArgumentException>(() => HubModelId.TryParse(badRev)).Message);
        Assert.Equal("models--sentence-transformers--all-MiniLM-L6-v2", HfCache.RepoFolderName("sentence-transformers/all-MiniLM-L6-v2"));
        Assert.Equal("models--bert-base-uncased", HfCache.RepoFolderName("bert-base-uncased"));
        Assert.Equal("abc", HubClient.NormalizeEtag("W/\"abc\""));
    }

    [Fact]
    public void SettingsFollowHuggingFaceHubEnvironmentVariables()
    {
        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        HubSettings With(params (string K, string V)[] vars)
        {
            var d = vars.ToDictionary(v => v.K, v => v.V);
            return HubSettings.FromEnvironment(k => d.GetValueOrDefault(k));
        }
        var none = With();
        Assert.Equal(Path.Combine(home, ".cache", "huggingface", "hub"), none.CacheRoot);
        Assert.Equal("https://huggingface.co", none.Endpoint);
        Assert.False(none.Offline);
        Assert.Equal(Path.Combine(Tmp, "h", "hub"), With(("HF_HOME", Path.Combine(Tmp, "h"))).CacheRoot);
        Assert.Equal(Path.Combine(Tmp, "x", "huggingface", "hub"), With(("XDG_CACHE_HOME", Path.Combine(Tmp, "x"))).CacheRoot);
        Assert.Equal(Path.Combine(Tmp, "c"), With(("HF_HOME", Path.Combine(Tmp, "h")), ("HF_HUB_CACHE", Path.Combine(Tmp, "c"))).CacheRoot);
        Assert.Equal("http://127.0.0.1:1", With(("HF_ENDPOINT", "http://127.0.0.1:1/")).Endpoint);
        Assert.True(With(("HF_HUB_OFFLINE", "1")).Offline);
        Assert.True(With(("HF_HUB_OFFLINE", "true")).Offline);
        Assert.False(With(("HF_HUB_OFFLINE", "0")).Offline);

        Directory.CreateDirectory(Path.Combine(Tmp, "h"));
        File.WriteAllText(Path.Combine(Tmp, "h", "token"), "hf_from_file\n");
        Assert.Equal("hf_from_file", With(("HF_HOME", Path.Combine(Tmp, "h"))).Token);
        File.WriteAllText(Path.Combine(Tmp, "tok"), "hf_from_path");
        Assert.Equal("hf_from_path", With(("HF_HOME", Path.Combine(Tmp, "h")), ("HF_TOKEN_PATH", Path.Combine(Tmp, "tok"))).Token);
        Assert.Equal("hf_env", With(("HF_HOME", Path.Combine(Tmp, "h")), ("HF_TOKEN", "hf_env")).Token);
    }
}

/// <summary>A cache laid out by hand exactly as Python's huggingface_hub writes it, read by the resolver and the CLI.</summary>
public sealed class PythonCacheTests : HubTestBase
{
    /// <summary>
    /// models--org--py with two snapshots: <see cref="HubTestBase.Commit"/> (refs/main) and
    /// <see cref="HubTestBase.Commit2"/> (refs/v1), sharing the weights and vocab blobs; a different config blob in v1.
    /// </summary>
    string LayOutPythonCache()
    {
        var repo = Path.Combine(CacheRoot, "models--org--py");
        var blobs = Path.Combine(repo, "blobs");
        Directory.CreateDirectory(blobs);
        Directory.CreateDirectory(Path.Combine(repo, "refs"));
        File.WriteAllText(Path.Combine(repo, "refs", "main"), Commit); // Python writes no newline
        File.WriteAllText(Path.Combine(repo, "refs", "v1"), Commit2);
        void Put(string commit, string file, byte[] data, bool lfs)
        {
            var etag = lfs ? FakeHub.Sha256(data) : FakeHub.GitSha1(data);
            var blob = Path.Combine(blobs, etag);
            if (!File.Exists(blob)) File.WriteAllBytes(blob, data);
            var pointer = Path.Combine(repo, "snapshots", commit, file);
            Directory.CreateDirectory(Path.GetDirectoryName(pointer)!);
            File.CreateSymbolicLink(pointer, Path.GetRelativePath(Path.GetDirectoryName(pointer)!, blob));
        }
        foreach (var commit in new[] { Commit, Commit2 })
        {
            foreach (var f in new[] { "model.safetensors", "vocab.txt", "tokenizer_config.json" })
                Put(commit, f, File.ReadAllBytes(Path.Combine(GoldenDir, f)), f.EndsWith(".safetensors"));
            var config = File.ReadAllText(Path.Combine(GoldenDir, "config.json"));
            Put(commit, "config.json", Encoding.UTF8.GetBytes(commit == Commit ? config : config + "\n"), false);
        }
        Put(Commit, "1_Pooling/config.json", Encoding.UTF8.GetBytes(PoolingJson), false);
        return repo;
    }

    [AssetFact(TestAssets.TinyRandom, Timeout = 120_000)]
    public async Task PythonLaidOutCacheLoadsOfflineEverywhereModelIsTaken()
    {
        var repo = LayOutPythonCache();
        var snapshot = Path.Combine(repo, "snapshots", Commit);
        Assert.Equal(snapshot, new HubDownloadSource(OfflineSettings()).TryResolve("org/py"));
        Assert.Equal(Path.Combine(repo, "snapshots", Commit2), new HfCacheSource(OfflineSettings()).TryResolve("org/py@v1"));

        // The CLI, resolving `--model org/py` through ModelResolver's default sources with HF_HUB_OFFLINE on.
        string viaHub, viaDir;
        using (HubSettings.UseForCurrentFlow(OfflineSettings()))
        {
            var (exit, stdout, stderr) = CliHarness.Run("fill-mask", "--model", "org/py", "the capital of france is [MASK].", "--json");
            Assert.True(exit == 0, stderr);
            viaHub = stdout;
            var (exit2, _, stderr2) = CliHarness.Run("fill-mask", "--model", "org/nothere", "a [MASK].");
            Assert.Equal(2, exit2);
            Assert.Contains("offline mode is on", stderr2);
            Assert.Single(stderr2.Trim().Split('\n'));
            var (exit3, stdout3, stderr3) = CliHarness.Run("tokenize", "--model", "org/py@v1", "Hello world", "--json");
            Assert.True(exit3 == 0, stderr3);
            Assert.Contains("hello", stdout3);
        }
        {
            var (exit, stdout, stderr) = CliHarness.Run("fill-mask", "--model", GoldenDir, "the capital of france is [MASK].", "--json");
            Assert.True(exit == 0, stderr);
            viaDir = stdout;
        }
        Assert.Equal(viaDir, viaHub);
        Assert.Equal(FillMask(GoldenDir), FillMask(snapshot));
        await Task.CompletedTask;
    }

    [AssetFact(TestAssets.TinyRandom, Timeout = 120_000)]
    public async Task ListAndRemoveCountEachBlobOnce()
    {
        var repo = LayOutPythonCache();
        File.WriteAllBytes(Path.Combine(repo, "blobs", "deadbeef.incomplete"), new byte[10]);
        long Size(string f) => new FileInfo(Path.Combine(GoldenDir, f)).Length;
        long configSize = Size("config.json");
        long shared = Size("model.safetensors") + Size("vocab.txt") + Size("tokenizer_config.json");
        long pooling = Encoding.UTF8.GetByteCount(PoolingJson);

        var (exit, stdout, stderr) = CliHarness.Run("models", "list", "--cache-dir", CacheRoot, "--json");
        Assert.True(exit == 0, stderr);
        var root = JsonDocument.Parse(stdout).RootElement;
        var r = Assert.Single(root.GetProperty("repos").EnumerateArray());
        Assert.Equal("org/py", r.GetProperty("repo_id").GetString());
        Assert.Equal(shared + configSize + (configSize + 1) + pooling, r.GetProperty("size_on_disk").GetInt64());
        Assert.Equal(6, r.GetProperty("blobs").GetInt32());
        Assert.Equal(10, r.GetProperty("incomplete_bytes").GetInt64());
        var revs = r.GetProperty("revisions").EnumerateArray().ToList();
        Assert.Equal([Commit, Commit2], revs.Select(v => v.GetProperty("commit").GetString()));
        Assert.Equal(["main"], revs[0].GetProperty("refs").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal(["v1"], revs[1].GetProperty("refs").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal(shared + configSize + pooling, revs[0].GetProperty("size_on_disk").GetInt64());
        Assert.Equal(shared + configSize + 1, revs[1].GetProperty("size_on_disk").GetInt64());
        Assert.Equal(5, revs[0].GetProperty("files").GetArrayLength());

        var text = CliHarness.Run("models", "list", "--cache-dir", CacheRoot);
        Assert.Equal(0, text.Exit);
        Assert.Contains("org/py", text.Out);
        Assert.Contains(Commit2, text.Out);

        // Remove v1: its snapshot, its ref and its own config blob go; the shared blobs stay.
        var rm = CliHarness.Run("models", "rm", "org/py", "--revision", "v1", "--cache-dir", CacheRoot, "--json");
        Assert.True(rm.Exit == 0, rm.Err);
        var d = JsonDocument.Parse(rm.Out).RootElement;
        Assert.Equal(1, d.GetProperty("blobs_removed").GetInt32());
        Assert.Equal(configSize + 1, d.GetProperty("bytes_freed").GetInt64());
        Assert.False(Directory.Exists(Path.Combine(repo, "snapshots", Commit2)));
        Assert.False(File.Exists(Path.Combine(repo, "refs", "v1")));
        Assert.Equal(5, Directory.GetFiles(Path.Combine(repo, "blobs")).Count(f => !f.EndsWith(".incomplete")));
        Assert.Equal(Path.Combine(repo, "snapshots", Commit), new HfCacheSource(OfflineSettings()).TryResolve("org/py"));

        var bad = CliHarness.Run("models", "rm", "org/py", "--revision", "v7", "--cache-dir", CacheRoot);
        Assert.Equal(2, bad.Exit);
        Assert.Contains("no cached revision 'v7'", bad.Err);

        var all = CliHarness.Run("models", "rm", "org/py", "--cache-dir", CacheRoot);
        Assert.True(all.Exit == 0, all.Err);
        Assert.False(Directory.Exists(repo));
        var gone = CliHarness.Run("models", "rm", "org/py", "--cache-dir", CacheRoot);
        Assert.Equal(2, gone.Exit);
        Assert.Contains("not in the Hugging Face cache", gone.Err);
        Assert.Contains("no models in", CliHarness.Run("models", "list", "--cache-dir", CacheRoot).Out);
        await Task.CompletedTask;
    }

    [AssetFact(TestAssets.TinyRandom, Timeout = 120_000)]
    public async Task CliDownloadIntoTheCacheThenUseIt()
    {
        using var hub = new FakeHub();
        hub.Add("org/tiny", Commit, TinyRepoFiles());
        using (HubSettings.UseForCurrentFlow(Settings(hub)))
        {
            var (exit, stdout, stderr) = CliHarness.Run("models", "download", "org/tiny", "--json");
            Assert.True(exit == 0, stderr);
            var j = JsonDocument.Parse(stdout).RootElement;
            Assert.Equal(Commit, j.GetProperty("commit").GetString());
            Assert.Equal(Path.Combine(CacheRoot, "models--org--tiny", "snapshots", Commit), j.GetProperty("snapshot").GetString());
            Assert.Equal(6, j.GetProperty("files").GetArrayLength());
            Assert.Equal("", stderr); // stderr is not a terminal here: no progress bar

            // `--model org/other` downloads on first use, through the resolver.
            hub.Add("org/other", Commit2, TinyRepoFiles(sentenceTransformers: false));
            var fm = CliHarness.Run("fill-mask", "--model", "org/other", "the capital of france is [MASK].", "--json");
            Assert.True(fm.Exit == 0, fm.Err);
            Assert.True(Directory.Exists(Path.Combine(CacheRoot, "models--org--other", "snapshots", Commit2)));

            var bad = CliHarness.Run("models", "download", "org/nope");
            Assert.Equal(2, bad.Exit); // a gated or private repo is a bad argument (one error contract: 2), not an internal failure
            Assert.Contains("401", bad.Err);
            Assert.Single(bad.Err.Trim().Split('\n'));
            var badId = CliHarness.Run("models", "download", "a/b/c");
            Assert.Equal(2, badId.Exit);
            Assert.Contains("not a Hugging Face model id", badId.Err);
        }
        await Task.CompletedTask;
    }
}

public sealed class DownloadProgressTests : HubTestBase
{
    [AssetFact(TestAssets.TinyRandom, Timeout = 60_000)]
    public async Task ProgressBarReportsEveryFileToTheEnd()
    {
        using var hub = new FakeHub();
        var files = TinyRepoFiles(sentenceTransformers: false);
        hub.Add("org/tiny", Commit, files);
        hub.DropTransfers = 1; // a resumed file must still end at 100 %
        var rec = new Recorder();
        using var dl = new HubDownloader(Settings(hub));
        await dl.DownloadAsync(HubModelId.Parse("org/tiny"), rec);
        Assert.Equal(["config.json", "model.safetensors", "tokenizer_config.json", "vocab.txt"], rec.Bars.Keys.Order(StringComparer.Ordinal));
        foreach (var (name, bar) in rec.Bars)
        {
            Assert.Equal(files[name].Length, bar.Total);
            Assert.Equal(files[name].Length, bar.Done);
        }

        // Rendering with Spectre.Console (forced on, into a captured stderr) must not fail.
        var saved = Console.Error;
        var err = new StringWriter();
        Console.SetError(err);
        try
        {
            using var dl2 = new HubDownloader(Settings(hub) with { CacheRoot = Path.Combine(Tmp, "hub2") });
            var r = DownloadProgress.Run(p => dl2.Download(HubModelId.Parse("org/tiny"), p), show: true);
            Assert.Equal(4, r.Files.Count);
        }
        finally
        {
            Console.SetError(saved);
        }
    }

    sealed class Recorder : IDownloadProgress
    {
        public Dictionary<string, Bar> Bars { get; } = [];
        public HubClient.IFileProgress File(string name) => Bars[name] = new Bar();
    }

    sealed class Bar : HubClient.IFileProgress
    {
        public long? Total;
        public long Done;
        public void Start(long? total, long have) { Total = total; Done = have; }
        public void Advance(long bytes) => Done += bytes;
        public void Restart() => Done = 0;
    }
}
