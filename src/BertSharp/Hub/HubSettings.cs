namespace BertSharp.Hub;

/// <summary>
/// Everything the Hub code takes from its surroundings, so tests can inject it: the endpoint, the cache root, the
/// token, offline mode and the HTTP handler. <see cref="FromEnvironment"/> reads the variables huggingface_hub reads.
/// </summary>
public sealed record HubSettings
{
    public const string DefaultEndpoint = "https://huggingface.co";

    /// <summary>Base URL of the Hub (HF_ENDPOINT), without a trailing slash.</summary>
    public string Endpoint { get; init; } = DefaultEndpoint;

    /// <summary>The hub cache directory (the folder holding <c>models--ORG--NAME</c>).</summary>
    public required string CacheRoot { get; init; }

    /// <summary>Bearer token (HF_TOKEN or the token file); never printed or logged.</summary>
    public string? Token { get; init; }

    /// <summary>HF_HUB_OFFLINE=1: use the cache only, never the network.</summary>
    public bool Offline { get; init; }

    /// <summary>The HTTP handler (tests inject one); null = a SocketsHttpHandler that does not follow redirects itself.</summary>
    public HttpMessageHandler? Handler { get; init; }

    /// <summary>Time allowed for a metadata request (HEAD, API call) and for each read of a download.</summary>
    public TimeSpan Timeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>How many times a download that broke off is resumed (with a Range request) before giving up.</summary>
    public int MaxRetries { get; init; } = 5;

    /// <summary>Wait before the first retry; doubles each time (capped at 8 s).</summary>
    public TimeSpan RetryDelay { get; init; } = TimeSpan.FromSeconds(1);

    /// <summary>For tests: settings that <see cref="FromEnvironment"/> returns on this async flow instead of reading
    /// process-wide variables (so the CLI can be driven against a loopback Hub without touching the environment).</summary>
    static readonly AsyncLocal<HubSettings?> Scoped = new();

    internal static IDisposable UseForCurrentFlow(HubSettings settings)
    {
        var previous = Scoped.Value;
        Scoped.Value = settings;
        return new Restore(previous);
    }

    sealed class Restore(HubSettings? previous) : IDisposable
    {
        public void Dispose() => Scoped.Value = previous;
    }

    /// <summary>
    /// The settings huggingface_hub would use: HF_ENDPOINT; HF_HUB_CACHE (or the older HUGGINGFACE_HUB_CACHE), else
    /// $HF_HOME/hub, HF_HOME defaulting to $XDG_CACHE_HOME/huggingface, else ~/.cache/huggingface; HF_TOKEN, else
    /// the token file (HF_TOKEN_PATH, default $HF_HOME/token); HF_HUB_OFFLINE (1/true/yes/on).
    /// </summary>
    public static HubSettings FromEnvironment(Func<string, string?>? getEnv = null)
    {
        if (getEnv is null && Scoped.Value is { } scoped) return scoped;
        getEnv ??= Environment.GetEnvironmentVariable;
        string? Env(string name) => getEnv(name) is { Length: > 0 } v ? v : null;

        var home = Environment.GetFolderPath(Environment.SpecialFolder.UserProfile);
        var hfHome = Env("HF_HOME") ?? Path.Combine(Env("XDG_CACHE_HOME") ?? Path.Combine(home, ".cache"), "huggingface");
        hfHome = ExpandUser(hfHome, home);
        var cache = ExpandUser(Env("HF_HUB_CACHE") ?? Env("HUGGINGFACE_HUB_CACHE") ?? Path.Combine(hfHome, "hub"), home);
        var token = Env("HF_TOKEN")?.Trim();
        if (string.IsNullOrEmpty(token))
        {
            var tokenPath = ExpandUser(Env("HF_TOKEN_PATH") ?? Path.Combine(hfHome, "token"), home);
            token = File.Exists(tokenPath) ? File.ReadAllText(tokenPath).Trim() : null;
        }
        return new HubSettings
        {
            Endpoint = (Env("HF_ENDPOINT") ?? DefaultEndpoint).TrimEnd('/'),
            CacheRoot = cache,
            Token = string.IsNullOrEmpty(token) ? null : token,
            Offline = IsTrue(Env("HF_HUB_OFFLINE")),
        };
    }

    static bool IsTrue(string? v) => v?.Trim().ToLowerInvariant() is "1" or "true" or "yes" or "on";

    static string ExpandUser(string path, string home) =>
        path == "~" ? home : path.StartsWith("~/", StringComparison.Ordinal) ? Path.Combine(home, path[2..]) : path;
}
