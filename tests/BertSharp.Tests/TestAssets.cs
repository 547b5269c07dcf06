using Xunit;

namespace BertSharp.Tests;

/// <summary>Access to ../shared for asset-backed tests.</summary>
public static class TestAssets
{
    /// <summary>True when CI demands the assets (BERTSHARP_REQUIRE_ASSETS=1): missing assets fail instead of skip.</summary>
    public static bool Required => Environment.GetEnvironmentVariable("BERTSHARP_REQUIRE_ASSETS") == "1";

    /// <summary>Why the given asset paths are unavailable, or null when all exist.</summary>
    public static string? MissingReason(params string[] relative)
    {
        if (SharedAssets.Root is null)
            return $"shared assets not found (set {SharedAssets.EnvVar} or place them at ../shared beside the repository)";
        foreach (var r in relative)
        {
            var p = System.IO.Path.Combine(SharedAssets.Root, r);
            if (!File.Exists(p) && !Directory.Exists(p)) return $"asset missing: {p}";
        }
        return null;
    }

    /// <summary>Full path of an asset; throws with a clear message when it is missing (only reached when required).</summary>
    public static string Path(string relative)
    {
        var why = MissingReason(relative);
        if (why is not null) throw new FileNotFoundException(why + " (BERTSHARP_REQUIRE_ASSETS=1)");
        return System.IO.Path.Combine(SharedAssets.Root!, relative);
    }

    public const string TinyRandom = "golden/models/tiny-random";
    public const string UncasedVocab = "assets/vocab/bert-base-uncased/vocab.txt";
}

/// <summary>
/// A fact that needs files under ../shared: skipped with a clear message when they are absent, unless
/// BERTSHARP_REQUIRE_ASSETS=1, in which case it runs and fails on the missing file.
/// </summary>
public sealed class AssetFactAttribute : FactAttribute
{
    public AssetFactAttribute(params string[] relativePaths)
    {
        var why = TestAssets.MissingReason(relativePaths);
        if (why is not null && !TestAssets.Required) Skip = why;
    }
}

/// <summary>Theory counterpart of <see cref="AssetFactAttribute"/>.</summary>
public sealed class AssetTheoryAttribute : TheoryAttribute
{
    public AssetTheoryAttribute(params string[] relativePaths)
    {
        var why = TestAssets.MissingReason(relativePaths);
        if (why is not null && !TestAssets.Required) Skip = why;
    }
}
