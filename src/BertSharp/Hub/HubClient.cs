using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;

namespace BertSharp.Hub;

/// <summary>What a HEAD on <c>/{repo}/resolve/{rev}/{file}</c> says about a file.</summary>
/// <param name="Etag">X-Linked-Etag (LFS: the sha256) else ETag, quotes and W/ removed</param>
/// <param name="Size">X-Linked-Size else Content-Length</param>
/// <param name="Location">where to GET it: the redirect target (a CDN) or the resolve URL itself</param>
public sealed record HubFileMetadata(string File, string Commit, string Etag, long? Size, Uri Location)
{
    /// <summary>An LFS file's etag is its sha256 (64 hex digits), which the download is checked against.</summary>
    public bool IsLfs => Etag.Length == 64 && Etag.All(Uri.IsHexDigit);
}

/// <summary>The file list of a revision from <c>/api/models/{repo}/revision/{rev}</c>.</summary>
public sealed record HubRepoInfo(string Commit, IReadOnlyList<string> Files);

/// <summary>
/// HTTP access to a Hugging Face Hub (or a mirror) with huggingface_hub's conventions: metadata from a HEAD that only
/// follows relative redirects (a renamed repo) and not the CDN one; downloads that follow every redirect; the bearer
/// token sent to the Hub's own origin only; resumable, checked blob downloads.
/// </summary>
public sealed class HubClient : IDisposable
{
    readonly HubSettings _settings;
    readonly HttpClient _http;
    readonly Uri _endpoint;

    public HubClient(HubSettings settings)
    {
        _settings = settings;
        if (!Uri.TryCreate(settings.Endpoint.TrimEnd('/') + "/", UriKind.Absolute, out var ep) || ep.Scheme is not ("http" or "https"))
            throw new ArgumentException($"HF_ENDPOINT: expected an http(s) URL, got '{settings.Endpoint}'");
        _endpoint = ep;
        var handler = settings.Handler ?? new SocketsHttpHandler
        {
            AllowAutoRedirect = false,
            AutomaticDecompression = DecompressionMethods.None,
            ConnectTimeout = settings.Timeout,
            PooledConnectionLifetime = TimeSpan.FromMinutes(5),
        };
        _http = new HttpClient(handler, disposeHandler: settings.Handler is null) { Timeout = System.Threading.Timeout.InfiniteTimeSpan };
    }

    public void Dispose() => _http.Dispose();

    public string EndpointText => _endpoint.GetLeftPart(UriPartial.Path).TrimEnd('/');

    static string EscapePath(string file) => string.Join('/', file.Split('/').Select(Uri.EscapeDataString));

    public Uri ResolveUrl(string repoId, string revision, string file) =>
        new(_endpoint, $"{repoId}/resolve/{Uri.EscapeDataString(revision)}/{EscapePath(file)}");

    public Uri ApiUrl(string repoId, string revision) =>
        new(_endpoint, $"api/models/{repoId}/revision/{Uri.EscapeDataString(revision)}");

    static bool SameOrigin(Uri a, Uri b) =>
        string.Equals(a.Scheme, b.Scheme, StringComparison.OrdinalIgnoreCase) &&
        string.Equals(a.IdnHost, b.IdnHost, StringComparison.OrdinalIgnoreCase) && a.Port == b.Port;

    /// <summary>True when the token may go with a request to <paramref name="url"/>: only the Hub's own origin gets it.</summary>
    public bool SendsTokenTo(Uri url) => _settings.Token is not null && SameOrigin(url, _endpoint);

    void ThrowIfOffline(Uri url)
    {
        if (_settings.Offline)
            throw new InvalidOperationException($"offline mode is on (HF_HUB_OFFLINE=1): not contacting {url.GetLeftPart(UriPartial.Path)}");
    }

    /// <summary>
    /// Sends a request; follows redirects itself (every one when <paramref name="followAll"/>, else only relative
    /// Locations as huggingface_hub does for metadata), attaching the token only for the Hub's origin.
    /// </summary>
    async Task<HttpResponseMessage> SendAsync(HttpMethod method, Uri url, bool followAll, long? rangeFrom, CancellationToken ct, CancellationToken userCt)
    {
        ThrowIfOffline(url);
        for (int hop = 0; ; hop++)
        {
            var req = new HttpRequestMessage(method, url);
            req.Headers.UserAgent.ParseAdd("bertsharp/1.0");
            req.Headers.AcceptEncoding.ParseAdd("identity");
            if (SendsTokenTo(url)) req.Headers.Authorization = new AuthenticationHeaderValue("Bearer", _settings.Token);
            if (rangeFrom is > 0) req.Headers.Range = new RangeHeaderValue(rangeFrom, null);
            HttpResponseMessage resp;
            try
            {
                resp = await _http.SendAsync(req, HttpCompletionOption.ResponseHeadersRead, ct).ConfigureAwait(false);
            }
            catch (HttpRequestException e)
            {
                throw new HubConnectionException($"could not reach {url.GetLeftPart(UriPartial.Authority)}: {e.Message}", e);
            }
            catch (OperationCanceledException e) when (!userCt.IsCancellationRequested)
            {
                // The per-request timeout, not the caller, cancelled it.
                throw new HubConnectionException($"{url.GetLeftPart(UriPartial.Authority)} did not answer within {_settings.Timeout.TotalSeconds:0.#} s", e);
            }
            int code = (int)resp.StatusCode;
            if (code is >= 300 and < 400 && resp.Headers.Location is { } loc && hop < 10 && (followAll || !loc.IsAbsoluteUri))
            {
                resp.Dispose();
                url = loc.IsAbsoluteUri ? loc : new Uri(url, loc);
                continue;
            }
            return resp;
        }
    }

    CancellationTokenSource Timeout(CancellationToken ct)
    {
        var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(_settings.Timeout);
        return cts;
    }

    static string? Header(HttpResponseMessage r, string name) =>
        r.Headers.TryGetValues(name, out var v) ? v.FirstOrDefault() : r.Content.Headers.TryGetValues(name, out var c) ? c.FirstOrDefault() : null;

    /// <summary>Strips the weak-validator prefix and quotes, as huggingface_hub's _normalize_etag does.</summary>
    public static string? NormalizeEtag(string? etag)
    {
        if (etag is null) return null;
        if (etag.StartsWith("W/", StringComparison.Ordinal)) etag = etag[2..];
        etag = etag.Trim().Trim('"');
        return etag.Length == 0 ? null : etag;
    }

    /// <summary>Turns an error reply into a clear exception (401/403: token, 404: repo/revision/file, 400: revision, 5xx).</summary>
    internal Exception StatusError(HttpResponseMessage r, string repoId, string revision, string? file)
    {
        var code = Header(r, "X-Error-Code");
        var serverMsg = Header(r, "X-Error-Message");
        var detail = serverMsg is null ? "" : $" (server: {serverMsg})";
        var what = file is null ? $"{repoId}@{revision}" : $"{file} in {repoId}@{revision}";
        var tokenHint = _settings.Token is null
            ? "if it is private or gated, set HF_TOKEN (or log in so the token file exists) with a token that has access"
            : "the token from HF_TOKEN / the token file was sent; check that it has access (gated repos: accept the terms on the model page)";
        return (int)r.StatusCode switch
        {
            401 when code is "RepoNotFound" => new HubAuthException($"401 Unauthorized: repository {repoId} not found on {EndpointText}, or it is private or gated; {tokenHint}{detail}"),
            401 => new HubAuthException($"401 Unauthorized for {what}: {tokenHint}{detail}"),
            403 => new HubAuthException($"403 Forbidden for {what}: access is restricted (a gated or private repository); {tokenHint}{detail}"),
            404 when code is "RepoNotFound" => new HubNotFoundException($"404: repository {repoId} not found on {EndpointText}{detail}"),
            404 when code is "RevisionNotFound" => new HubNotFoundException($"404: revision '{revision}' not found in {repoId} (expected a branch, tag or commit of the repository){detail}"),
            404 => new HubNotFoundException($"404: {what} not found on {EndpointText}{detail}"),
            400 => new ArgumentException($"400 Bad Request for {what}: is '{revision}' a valid revision?{detail}"),
            416 => new HubConnectionException($"416 Range Not Satisfiable for {what}{detail}"),
            _ => new HubConnectionException($"HTTP {(int)r.StatusCode} {r.ReasonPhrase} from {EndpointText} for {what}{detail}"),
        };
    }

    /// <summary>
    /// HEAD of a file. Null when the file does not exist at that revision (404 EntryNotFound, or a 404 without a
    /// code); other errors throw.
    /// </summary>
    public async Task<HubFileMetadata?> GetMetadataAsync(string repoId, string revision, string file, CancellationToken ct = default)
    {
        var url = ResolveUrl(repoId, revision, file);
        using var cts = Timeout(ct);
        using var r = await SendAsync(HttpMethod.Head, url, followAll: false, null, cts.Token, ct).ConfigureAwait(false);
        int code = (int)r.StatusCode;
        if (code == 404 && Header(r, "X-Error-Code") is null or "EntryNotFound") return null;
        if (code is < 200 or >= 400) throw StatusError(r, repoId, revision, file);
        var commit = Header(r, "X-Repo-Commit")
            ?? throw new HubConnectionException($"{EndpointText} sent no X-Repo-Commit header for {file}: it does not look like a Hugging Face Hub (check HF_ENDPOINT)");
        var etag = NormalizeEtag(Header(r, "X-Linked-Etag") ?? Header(r, "ETag"))
            ?? throw new HubConnectionException($"{EndpointText} sent no ETag for {file} in {repoId}@{revision}; cannot cache it reproducibly");
        if (etag.Contains('/') || etag.Contains('\\') || etag.Contains(".."))
            throw new HubConnectionException($"{EndpointText} sent an unusable ETag for {file}: '{etag}'");
        long? size = long.TryParse(Header(r, "X-Linked-Size"), out var ls) ? ls : r.Content.Headers.ContentLength;
        var location = code is >= 300 and < 400 && r.Headers.Location is { } loc ? (loc.IsAbsoluteUri ? loc : new Uri(r.RequestMessage!.RequestUri!, loc)) : r.RequestMessage!.RequestUri!;
        return new HubFileMetadata(file, commit, etag, size, location);
    }

    /// <summary>
    /// The commit and file list of a revision from the Hub API; null when the API is not available (a mirror that
    /// serves only /resolve/). Auth and not-found replies with a Hub error code throw.
    /// </summary>
    public async Task<HubRepoInfo?> GetRepoInfoAsync(string repoId, string revision, CancellationToken ct = default)
    {
        using var cts = Timeout(ct);
        using var r = await SendAsync(HttpMethod.Get, ApiUrl(repoId, revision), followAll: false, null, cts.Token, ct).ConfigureAwait(false);
        int code = (int)r.StatusCode;
        if (code is 401 or 403 || (code == 404 && Header(r, "X-Error-Code") is "RepoNotFound" or "RevisionNotFound") || code == 400)
            throw StatusError(r, repoId, revision, null);
        if (code != 200) return null;
        try
        {
            var text = await r.Content.ReadAsStringAsync(cts.Token).ConfigureAwait(false);
            using var doc = JsonDocument.Parse(text);
            var root = doc.RootElement;
            if (!root.TryGetProperty("sha", out var sha) || sha.GetString() is not { Length: > 0 } commit) return null;
            var files = new List<string>();
            if (root.TryGetProperty("siblings", out var sib) && sib.ValueKind == JsonValueKind.Array)
                foreach (var s in sib.EnumerateArray())
                    if (s.TryGetProperty("rfilename", out var f) && f.GetString() is { Length: > 0 } name) files.Add(name);
            return new HubRepoInfo(commit, files);
        }
        catch (JsonException)
        {
            return null;
        }
    }

    /// <summary>Receives download progress (bytes already present are reported once at the start).</summary>
    public interface IFileProgress
    {
        void Start(long? total, long have);
        void Advance(long bytes);
        void Restart();
    }

    /// <summary>Test hook: opens the .incomplete file (so tests can simulate a full disk).</summary>
    internal Func<string, FileStream> OpenPartial { get; set; } =
        p => new FileStream(p, FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None, 1 << 16);

    /// <summary>
    /// Downloads <paramref name="meta"/> into <paramref name="blobPath"/>: bytes go to <c>blobPath.incomplete</c>,
    /// a broken transfer is resumed with <c>Range: bytes=N-</c> (206 appends, a 200 restarts), the size and for LFS
    /// files the sha256 are checked (a mismatch deletes the partial file), and only then is it renamed into place.
    /// </summary>
    public async Task DownloadBlobAsync(string repoId, HubFileMetadata meta, string blobPath, IFileProgress? progress, CancellationToken ct = default)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(blobPath)!);
        var partial = blobPath + ".incomplete";
        var what = $"{meta.File} ({repoId}@{meta.Commit[..Math.Min(8, meta.Commit.Length)]})";
        var buffer = new byte[1 << 20];
        FileStream fs;
        try
        {
            fs = OpenPartial(partial);
        }
        catch (IOException e) when (!IsDiskFull(e))
        {
            throw new IOException($"{partial}: cannot open ({e.Message}); is another download of {meta.File} running?", e);
        }
        using (fs)
        {
            long have0 = meta.Size is { } t0 && fs.Length > t0 ? 0 : fs.Length;
            if (have0 == 0) fs.SetLength(0);
            progress?.Start(meta.Size, have0);
            for (int attempt = 0; ; attempt++)
            {
                long have = fs.Length;
                if (meta.Size is { } total && have == total && have > 0) break;
                Exception failure;
                try
                {
                    if (await TransferAsync(repoId, meta, fs, buffer, progress, ct).ConfigureAwait(false)) break;
                    continue; // the server said the range was wrong: restarted from 0
                }
                catch (Exception e) when (IsRetryable(e, ct))
                {
                    failure = e;
                }
                if (attempt >= _settings.MaxRetries)
                    throw new HubConnectionException(
                        $"download of {what} failed after {attempt + 1} attempt(s) at {fs.Length:N0}{(meta.Size is { } t ? $" of {t:N0}" : "")} bytes: " +
                        $"{failure.Message}; run again to resume from {partial}", failure);
                var delay = TimeSpan.FromTicks(Math.Min(_settings.RetryDelay.Ticks << Math.Min(attempt, 10), TimeSpan.FromSeconds(8).Ticks));
                await Task.Delay(delay, ct).ConfigureAwait(false);
            }
            if (meta.Size is { } size && fs.Length != size)
            {
                long got = fs.Length;
                fs.Close();
                File.Delete(partial);
                throw new InvalidDataException($"{what}: received {got:N0} bytes but the Hub announced {size:N0}; the partial file was deleted, run again");
            }
            if (meta.IsLfs)
            {
                fs.Seek(0, SeekOrigin.Begin);
                var hash = Convert.ToHexStringLower(await System.Security.Cryptography.SHA256.HashDataAsync(fs, ct).ConfigureAwait(false));
                if (!string.Equals(hash, meta.Etag, StringComparison.OrdinalIgnoreCase))
                {
                    fs.Close();
                    File.Delete(partial);
                    throw new InvalidDataException(
                        $"{what}: sha256 mismatch: the Hub says {meta.Etag}, the downloaded bytes hash to {hash}; the file was deleted, run again");
                }
            }
        }
        File.Move(partial, blobPath, overwrite: true);
    }

    /// <summary>One GET from where <paramref name="fs"/> ends; false when the server could not serve that range (restart).</summary>
    async Task<bool> TransferAsync(string repoId, HubFileMetadata meta, FileStream fs, byte[] buffer, IFileProgress? progress, CancellationToken ct)
    {
        long have = fs.Length;
        using var cts = Timeout(ct);
        using var r = await SendAsync(HttpMethod.Get, meta.Location, followAll: true, have > 0 ? have : null, cts.Token, ct).ConfigureAwait(false);
        int code = (int)r.StatusCode;
        if (code == 416)
        {
            if (have > 0 && meta.Size is null) return true; // nothing more to send: complete
            fs.SetLength(0);
            progress?.Restart();
            return false;
        }
        if (code is not (200 or 206)) throw StatusError(r, repoId, meta.Commit, meta.File);
        if (code == 200 || r.Content.Headers.ContentRange?.From != have)
        {
            // A full reply (the server ignored the Range) or a range we did not ask for: start over.
            if (have > 0) progress?.Restart();
            fs.SetLength(0);
            if (code == 206) return false;
        }
        fs.Seek(0, SeekOrigin.End);
        await using var body = await r.Content.ReadAsStreamAsync(cts.Token).ConfigureAwait(false);
        while (true)
        {
            cts.CancelAfter(_settings.Timeout);
            int n;
            try
            {
                n = await body.ReadAsync(buffer, cts.Token).ConfigureAwait(false);
            }
            catch (OperationCanceledException) when (!ct.IsCancellationRequested)
            {
                throw new IOException($"no data for {_settings.Timeout.TotalSeconds:0.#} s");
            }
            if (n == 0) break;
            try
            {
                fs.Write(buffer, 0, n);
            }
            catch (IOException e) when (IsDiskFull(e))
            {
                fs.Flush(false);
                throw DiskFull(fs.Name, meta, e);
            }
            progress?.Advance(n);
        }
        fs.Flush();
        if (meta.Size is { } total && fs.Length < total)
            throw new IOException($"the connection closed after {fs.Length:N0} of {total:N0} bytes");
        return true;
    }

    static bool IsRetryable(Exception e, CancellationToken ct) => e switch
    {
        OperationCanceledException => !ct.IsCancellationRequested,
        HubAuthException or HubNotFoundException or InvalidDataException => false,
        _ when IsDiskFull(e) => false,
        IOException or HttpRequestException => true,
        _ => false,
    };

    static IOException DiskFull(string partial, HubFileMetadata meta, IOException e) =>
        new($"disk full (no space left on device) while downloading {meta.File}{(meta.Size is { } s ? $" ({s:N0} bytes)" : "")} " +
            $"into {Path.GetDirectoryName(partial)}: free some space (or set HF_HUB_CACHE to another disk) and run again to resume", e.HResult);

    /// <summary>ENOSPC on Unix (errno 28), ERROR_DISK_FULL / ERROR_HANDLE_DISK_FULL on Windows.</summary>
    public static bool IsDiskFull(Exception e) =>
        e is IOException io && (OperatingSystem.IsWindows() ? (io.HResult & 0xFFFF) is 0x70 or 0x27 : io.HResult == 28);
}
