namespace BertSharp;

/// <summary>
/// Locates the shared asset folder (vocabularies, datasets, golden references). It is never copied into the
/// repository: it is <c>$BERTSHARP_ASSETS</c> when set, otherwise <c>../shared</c> next to the repository root.
/// </summary>
public static class SharedAssets
{
    public const string EnvVar = "BERTSHARP_ASSETS";

    /// <summary>The asset root, or null when none can be found.</summary>
    public static string? Root { get; } = Find();

    /// <summary>Absolute path of <paramref name="relative"/> under the asset root, or null.</summary>
    public static string? TryPath(string relative) => Root is null ? null : Path.Combine(Root, relative);

    static string? Find()
    {
        var env = Environment.GetEnvironmentVariable(EnvVar);
        if (!string.IsNullOrWhiteSpace(env)) return Directory.Exists(env) ? Path.GetFullPath(env) : null;
        foreach (var start in new[] { AppContext.BaseDirectory, Directory.GetCurrentDirectory() })
        {
            var repo = FindRepoRoot(start);
            if (repo is null) continue;
            var shared = Path.GetFullPath(Path.Combine(repo, "..", "shared"));
            if (Directory.Exists(shared)) return shared;
        }
        return null;
    }

    /// <summary>The nearest ancestor that holds <c>BertSharp.slnx</c> (the repository root).</summary>
    public static string? FindRepoRoot(string start)
    {
        for (var dir = new DirectoryInfo(start); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "BertSharp.slnx"))) return dir.FullName;
        return null;
    }
}
