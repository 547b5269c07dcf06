using System.Text.RegularExpressions;

namespace BertSharp.Hub;

/// <summary>
/// A Hub model reference as typed on the command line: <c>ORG/NAME</c>, a legacy bare <c>NAME</c>
/// (<c>bert-base-uncased</c>), optionally followed by <c>@REVISION</c> (a branch, tag or 40-hex commit).
/// </summary>
public sealed partial record HubModelId(string RepoId, string Revision)
{
    public const string DefaultRevision = "main";

    // huggingface_hub's validate_repo_id: optional namespace, word characters, '-' and '.', at most 96 characters,
    // no "--" or "..", not ending in ".git".
    [GeneratedRegex(@"^(?:[\w\-.]+/)?[\w\-.]+$")]
    private static partial Regex RepoIdPattern();

    [GeneratedRegex("^[0-9a-f]{40}$")]
    private static partial Regex CommitPattern();

    /// <summary>True when <paramref name="revision"/> is a full commit hash (used directly, without refs).</summary>
    public static bool IsCommitHash(string revision) => CommitPattern().IsMatch(revision);

    public bool RevisionIsCommit => IsCommitHash(Revision);

    public override string ToString() => Revision == DefaultRevision ? RepoId : $"{RepoId}@{Revision}";

    /// <summary>Parses a reference, or returns null when the text cannot be a Hub repo id (a path, a URL, …).</summary>
    public static HubModelId? TryParse(string text)
    {
        if (string.IsNullOrWhiteSpace(text)) return null;
        var at = text.IndexOf('@');
        var repo = at < 0 ? text : text[..at];
        var rev = at < 0 ? DefaultRevision : text[(at + 1)..];
        if (!IsValidRepoId(repo)) return null;
        if (at >= 0) ValidateRevision(rev, text);
        return new HubModelId(repo, rev);
    }

    /// <summary>Parses a reference; a clear <see cref="ArgumentException"/> when it is not one.</summary>
    public static HubModelId Parse(string text) =>
        TryParse(text) ?? throw new ArgumentException(
            $"'{text}' is not a Hugging Face model id: expected ORG/NAME or NAME (letters, digits, '-', '_', '.'), optionally @REVISION");

    public static bool IsValidRepoId(string repo) =>
        repo.Length is > 0 and <= 96 && RepoIdPattern().IsMatch(repo) && !repo.Contains("--") && !repo.Contains("..") &&
        !repo.EndsWith(".git", StringComparison.Ordinal) && repo[0] is not ('.' or '-') && !repo.EndsWith('.') &&
        !repo.Contains("/.") && !repo.Contains("./");

    /// <summary>A revision must be a non-empty git ref name; the checks keep it from escaping the cache's refs folder.</summary>
    public static void ValidateRevision(string rev, string context)
    {
        if (rev.Length == 0 || rev.Length > 256 || rev.Contains("..") || rev.StartsWith('/') || rev.EndsWith('/') ||
            rev.Contains("//") || rev.Contains('\\') || rev.Any(c => char.IsControl(c) || c is ' ' or '~' or '^' or ':' or '?' or '*' or '[') ||
            rev.Split('/').Any(p => p.StartsWith('.') || p.EndsWith(".lock", StringComparison.Ordinal)))
            throw new ArgumentException($"'{context}': bad revision '{rev}': expected a branch, tag or 40-hex commit hash after '@'");
    }
}
