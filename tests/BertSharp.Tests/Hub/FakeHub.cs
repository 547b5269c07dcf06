using System.Collections.Concurrent;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace BertSharp.Tests.Hub;

/// <summary>
/// A loopback imitation of the Hugging Face Hub's download endpoints, on 127.0.0.1 only:
/// <c>HEAD/GET /{repo}/resolve/{rev}/{file}</c> (X-Repo-Commit, ETag = git blob sha1 for small files; LFS files
/// answer 302 to a "CDN" URL with X-Linked-Etag = sha256 and X-Linked-Size), <c>GET /cdn/{sha256}</c> with Range
/// support, <c>GET /api/models/{repo}/revision/{rev}</c>, and Hub-style errors (401 RepoNotFound, 403 GatedRepo,
/// 404 RevisionNotFound / EntryNotFound). Faults on demand: a connection dropped mid-file, corrupted LFS bytes.
/// </summary>
sealed class FakeHub : IDisposable
{
    public sealed class Repo
    {
        public required string Commit { get; init; }
        public Dictionary<string, string> Refs { get; } = new() { ["main"] = "" };
        public Dictionary<string, byte[]> Files { get; } = new(StringComparer.Ordinal);
        public bool Private { get; init; }
        public bool Gated { get; init; }
        public static bool IsLfs(string file) => file.EndsWith(".safetensors", StringComparison.Ordinal) || file.EndsWith(".bin", StringComparison.Ordinal) || file.EndsWith(".onnx", StringComparison.Ordinal) || file.EndsWith(".msgpack", StringComparison.Ordinal) || file.EndsWith("_data", StringComparison.Ordinal) || file.EndsWith(".h5", StringComparison.Ordinal);
    }

    public sealed record Request(string Method, string Path, string? Range, bool HasAuthorization, string? Authorization);

    readonly HttpListener _listener = new();
    readonly CancellationTokenSource _stop = new();
    readonly Task _loop;

    public string Endpoint { get; }
    public Dictionary<string, Repo> Repos { get; } = new(StringComparer.Ordinal);
    /// <summary>repo id → new id: the resolve endpoint answers 307 with a relative Location (a renamed repo).</summary>
    public Dictionary<string, string> Renamed { get; } = new(StringComparer.Ordinal);
    /// <summary>Content-addressed LFS storage served under /cdn/ (shared with a separate CDN instance).</summary>
    public ConcurrentDictionary<string, byte[]> Blobs { get; }
    public ConcurrentQueue<Request> Requests { get; } = new();
    public bool ApiEnabled { get; set; } = true;
    public string? Token { get; set; }
    /// <summary>Where LFS redirects point (default: this server's /cdn/).</summary>
    public string? CdnBase { get; set; }
    /// <summary>The next this many CDN transfers send only DropAfterBytes bytes, then the connection is dropped.</summary>
    public int DropTransfers { get; set; }
    public int DropAfterBytes { get; set; } = 4_000_000;
    public bool CorruptLfs { get; set; }
    /// <summary>The CDN ignores Range headers and always sends the whole file with 200.</summary>
    public bool IgnoreRange { get; set; }
    /// <summary>Answer nothing for this long (a hung server).</summary>
    public TimeSpan Stall { get; set; }

    public FakeHub(ConcurrentDictionary<string, byte[]>? blobs = null)
    {
        Blobs = blobs ?? new();
        for (int attempt = 0; ; attempt++)
        {
            var probe = new TcpListener(IPAddress.Loopback, 0);
            probe.Start();
            int port = ((IPEndPoint)probe.LocalEndpoint).Port;
            probe.Stop();
            _listener.Prefixes.Clear();
            _listener.Prefixes.Add($"http://127.0.0.1:{port}/");
            try
            {
                _listener.Start();
                Endpoint = $"http://127.0.0.1:{port}";
                break;
            }
            catch (HttpListenerException) when (attempt < 20)
            {
            }
        }
        _loop = Task.Run(Loop);
    }

    public static string Sha256(byte[] data) => Convert.ToHexStringLower(SHA256.HashData(data));

    public static string GitSha1(byte[] data)
    {
        var header = Encoding.ASCII.GetBytes($"blob {data.Length}\0");
        return Convert.ToHexStringLower(SHA1.HashData([.. header, .. data]));
    }

    public Repo Add(string repoId, string commit, IDictionary<string, byte[]> files, bool isPrivate = false, bool gated = false)
    {
        var repo = new Repo { Commit = commit, Private = isPrivate, Gated = gated };
        repo.Refs["main"] = commit;
        foreach (var (k, v) in files)
        {
            repo.Files[k] = v;
            if (Repo.IsLfs(k)) Blobs[Sha256(v)] = v;
        }
        Repos[repoId] = repo;
        return repo;
    }

    async Task Loop()
    {
        while (!_stop.IsCancellationRequested)
        {
            HttpListenerContext ctx;
            try
            {
                ctx = await _listener.GetContextAsync();
            }
            catch (Exception) when (_stop.IsCancellationRequested || !_listener.IsListening)
            {
                return;
            }
            catch (HttpListenerException)
            {
                continue;
            }
            _ = Task.Run(() => Handle(ctx));
        }
    }

    void Handle(HttpListenerContext ctx)
    {
        var req = ctx.Request;
        var res = ctx.Response;
        try
        {
            var path = req.Url!.AbsolutePath;
            var auth = req.Headers["Authorization"];
            Requests.Enqueue(new Request(req.HttpMethod, Uri.UnescapeDataString(path), req.Headers["Range"], auth is not null, auth));
            if (Stall > TimeSpan.Zero) Thread.Sleep(Stall);
            if (path.StartsWith("/cdn/", StringComparison.Ordinal)) ServeCdn(ctx, path[5..]);
            else if (path.StartsWith("/api/models/", StringComparison.Ordinal)) ServeApi(ctx, path["/api/models/".Length..]);
            else if (path.IndexOf("/resolve/", StringComparison.Ordinal) is > 0 and var i) ServeResolve(ctx, path[1..i], path[(i + "/resolve/".Length)..]);
            else Error(res, 404, null, "not found");
        }
        catch (Exception) when (_stop.IsCancellationRequested)
        {
        }
        catch (HttpListenerException)
        {
        }
        catch (IOException)
        {
        }
        catch (ObjectDisposedException)
        {
        }
    }

    static void Error(HttpListenerResponse res, int status, string? code, string message)
    {
        res.StatusCode = status;
        if (code is not null) res.Headers["X-Error-Code"] = code;
        res.Headers["X-Error-Message"] = message;
        var body = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new { error = message }));
        res.ContentType = "application/json";
        res.ContentLength64 = body.Length;
        res.OutputStream.Write(body);
        res.Close();
    }

    /// <summary>Finds a repo the caller may see, or answers the error the Hub gives.</summary>
    Repo? Authorize(HttpListenerContext ctx, string repoId)
    {
        var auth = ctx.Request.Headers["Authorization"];
        bool tokenOk = Token is not null && auth == $"Bearer {Token}";
        if (!Repos.TryGetValue(repoId, out var repo) || (repo.Private && !tokenOk))
        {
            Error(ctx.Response, 401, "RepoNotFound", "Repository not found");
            return null;
        }
        if (repo.Gated && !tokenOk)
        {
            Error(ctx.Response, 403, "GatedRepo", $"Access to model {repoId} is restricted. You must have access to it and be authenticated to access it. Please log in.");
            return null;
        }
        return repo;
    }

    string? Commit(Repo repo, string rev) => rev == repo.Commit ? rev : repo.Refs.TryGetValue(rev, out var c) ? c : null;

    void ServeApi(HttpListenerContext ctx, string rest)
    {
        if (!ApiEnabled) { Error(ctx.Response, 404, null, "Not Found"); return; }
        int i = rest.IndexOf("/revision/", StringComparison.Ordinal);
        if (i < 0) { Error(ctx.Response, 404, null, "Not Found"); return; }
        var repoId = rest[..i];
        var rev = Uri.UnescapeDataString(rest[(i + "/revision/".Length)..]);
        if (Authorize(ctx, repoId) is not { } repo) return;
        if (Commit(repo, rev) is not { } commit) { Error(ctx.Response, 404, "RevisionNotFound", $"Invalid rev id: {rev}"); return; }
        var body = Encoding.UTF8.GetBytes(JsonSerializer.Serialize(new
        {
            id = repoId,
            sha = commit,
            siblings = repo.Files.Keys.Order(StringComparer.Ordinal).Select(f => new { rfilename = f }),
        }));
        ctx.Response.ContentType = "application/json";
        ctx.Response.ContentLength64 = body.Length;
        ctx.Response.OutputStream.Write(body);
        ctx.Response.Close();
    }

    void ServeResolve(HttpListenerContext ctx, string repoId, string rest)
    {
        var res = ctx.Response;
        if (Renamed.TryGetValue(repoId, out var newId))
        {
            res.StatusCode = 307;
            res.Headers["Location"] = $"/{newId}/resolve/{rest}";
            res.Close();
            return;
        }
        if (Authorize(ctx, repoId) is not { } repo) return;
        int slash = rest.IndexOf('/');
        var rev = Uri.UnescapeDataString(slash < 0 ? rest : rest[..slash]);
        var file = slash < 0 ? "" : string.Join('/', rest[(slash + 1)..].Split('/').Select(Uri.UnescapeDataString));
        if (Commit(repo, rev) is not { } commit) { Error(res, 404, "RevisionNotFound", $"Invalid rev id: {rev}"); return; }
        if (!repo.Files.TryGetValue(file, out var data)) { Error(res, 404, "EntryNotFound", $"{file} does not exist on \"{rev}\""); return; }
        res.Headers["X-Repo-Commit"] = commit;
        if (Repo.IsLfs(file))
        {
            var sha = Sha256(data);
            res.StatusCode = 302;
            res.Headers["ETag"] = $"\"{GitSha1(Encoding.ASCII.GetBytes($"version https://git-lfs.github.com/spec/v1\noid sha256:{sha}\nsize {data.Length}\n"))}\"";
            res.Headers["X-Linked-Etag"] = $"\"{sha}\"";
            res.Headers["X-Linked-Size"] = data.Length.ToString();
            res.Headers["Location"] = $"{CdnBase ?? Endpoint}/cdn/{sha}?X-Amz-Signature=fake";
            res.ContentLength64 = 0;
            res.Close();
            return;
        }
        res.StatusCode = 200;
        res.Headers["ETag"] = $"\"{GitSha1(data)}\"";
        res.ContentLength64 = data.Length;
        if (ctx.Request.HttpMethod == "GET") res.OutputStream.Write(data);
        res.Close();
    }

    void ServeCdn(HttpListenerContext ctx, string sha)
    {
        var res = ctx.Response;
        if (!Blobs.TryGetValue(sha, out var data)) { Error(res, 404, null, "NoSuchKey"); return; }
        long from = 0;
        var range = ctx.Request.Headers["Range"];
        if (!IgnoreRange && range is not null && range.StartsWith("bytes=", StringComparison.Ordinal) && range.EndsWith('-') && long.TryParse(range[6..^1], out var f))
        {
            if (f >= data.Length)
            {
                res.StatusCode = 416;
                res.Headers["Content-Range"] = $"bytes */{data.Length}";
                res.Close();
                return;
            }
            from = f;
            res.StatusCode = 206;
            res.Headers["Content-Range"] = $"bytes {from}-{data.Length - 1}/{data.Length}";
        }
        var body = data.AsSpan((int)from).ToArray();
        if (CorruptLfs && body.Length > 0) body[body.Length / 2] ^= 0x5A;
        res.ContentLength64 = body.Length;
        if (ctx.Request.HttpMethod == "HEAD") { res.Close(); return; }
        bool drop = false;
        lock (this)
            if (DropTransfers > 0 && body.Length > DropAfterBytes) { DropTransfers--; drop = true; }
        if (drop)
        {
            res.OutputStream.Write(body, 0, DropAfterBytes);
            res.OutputStream.Flush();
            res.Abort();
            return;
        }
        res.OutputStream.Write(body);
        res.Close();
    }

    public void Dispose()
    {
        _stop.Cancel();
        try { _listener.Stop(); _listener.Close(); } catch (ObjectDisposedException) { }
        try { _loop.Wait(TimeSpan.FromSeconds(5)); } catch (AggregateException) { }
    }
}
