using BertSharp.Inference;

namespace BertSharp.Hub;

/// <summary>
/// <c>--model ORG/NAME[@REV]</c> from the Hugging Face cache: the snapshot folder, when it holds a loadable model
/// (config, weights, vocabulary). Settings are read at each call (<see cref="HubSettings.FromEnvironment"/>) unless given.
/// </summary>
public sealed class HfCacheSource(HubSettings? settings = null) : ModelResolver.IModelSource
{
    public string? TryResolve(string nameOrPath)
    {
        if (HubModelId.TryParse(nameOrPath) is not { } id) return null;
        using var hub = new HubDownloader(settings ?? HubSettings.FromEnvironment());
        return hub.TryResolveCached(id);
    }
}

/// <summary>
/// <c>--model ORG/NAME[@REV]</c> downloaded from the Hub into the cache (a progress bar on stderr when it is a
/// terminal). With HF_HUB_OFFLINE=1 it never connects and says what the cache lacks.
/// </summary>
public sealed class HubDownloadSource(HubSettings? settings = null) : ModelResolver.IModelSource
{
    public string? TryResolve(string nameOrPath)
    {
        if (HubModelId.TryParse(nameOrPath) is not { } id) return null;
        var s = settings ?? HubSettings.FromEnvironment();
        using var hub = new HubDownloader(s);
        if (s.Offline) return hub.ResolveOffline(id);
        try
        {
            var result = DownloadProgress.Run(p => hub.Download(id, p));
            var missing = HubDownloader.MissingModelFiles(result.SnapshotDir);
            if (missing.Count > 0)
                throw new HubNotFoundException($"{id}: the repository lacks {string.Join("; ", missing)}");
            return result.SnapshotDir;
        }
        catch (HubConnectionException e) when (e.Message.StartsWith("could not reach", StringComparison.Ordinal))
        {
            throw new HubConnectionException(
                $"{nameOrPath} is not a local directory, not (completely) in the Hugging Face cache at {hub.Cache.Root}, and {e.Message}; " +
                "set HF_HUB_OFFLINE=1 to use the cache only, or HF_ENDPOINT for a mirror", e);
        }
    }
}
