using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using System.Text.RegularExpressions;

namespace BertSharp.Data;

/// <summary>The on-disk layouts a pretraining corpus can come in (see docs/data.md).</summary>
public enum CorpusFormat
{
    /// <summary>Google BERT format: one sentence per line, blank line between documents.</summary>
    Text,
    /// <summary>WikiText tokens files: <c> = Title = </c> lines start documents; paragraphs are sentence-split.</summary>
    [JsonStringEnumMemberName("wikitext")] WikiText,
    /// <summary>JSON Lines, one record = one document; a string field holds the text (HTML <c>&lt;br /&gt;</c> → space).</summary>
    Jsonl,
    /// <summary>A folder of <c>*.txt</c> files (top level, ordinal name order); see <see cref="TextFolderMode"/>.</summary>
    [JsonStringEnumMemberName("dir")] TextFolder,
}

/// <summary>How files of a <see cref="CorpusFormat.TextFolder"/> corpus map to documents.</summary>
public enum TextFolderMode
{
    /// <summary>Each file is one document; its text (blank lines = paragraph breaks) is sentence-split.</summary>
    FilePerDocument,
    /// <summary>Each file is in Google format (one sentence per line, blank line between documents).</summary>
    GoogleFormat,
}

/// <summary>What to do with WikiText sub-headings (<c> = = Section = = </c>).</summary>
public enum WikiSubheadingMode
{
    /// <summary>Dropped (default): sections of an article run on as one document.</summary>
    Drop,
    /// <summary>Kept as a sentence of their own (the heading text without the <c>=</c> marks).</summary>
    KeepAsSentence,
}

/// <summary>A corpus: its format, its files (or folder) and the reader options.</summary>
public sealed record CorpusSpec
{
    public required CorpusFormat Format { get; init; }
    /// <summary>Input files, read in this order; for <see cref="CorpusFormat.TextFolder"/>, folders.</summary>
    public required IReadOnlyList<string> Paths { get; init; }
    /// <summary>JSONL: the string field holding the document text.</summary>
    public string JsonTextField { get; init; } = "text";
    public TextFolderMode FolderMode { get; init; } = TextFolderMode.FilePerDocument;
    public WikiSubheadingMode WikiSubheadings { get; init; } = WikiSubheadingMode.Drop;
    /// <summary>WikiText: keep the article title as the document's first sentence (default false).</summary>
    public bool WikiKeepTitle { get; init; }
    /// <summary>WikiText: undo the <c> @.@ </c>, <c> @,@ </c>, <c> @-@ </c> number/hyphen markers (default true).</summary>
    public bool WikiDetokenizeAtMarkers { get; init; } = true;

    public static CorpusSpec GoogleText(params string[] paths) => new() { Format = CorpusFormat.Text, Paths = paths };
    public static CorpusSpec WikiText(params string[] paths) => new() { Format = CorpusFormat.WikiText, Paths = paths };
    public static CorpusSpec Jsonl(string field, params string[] paths) => new() { Format = CorpusFormat.Jsonl, Paths = paths, JsonTextField = field };
    public static CorpusSpec TextFolder(string folder, TextFolderMode mode = TextFolderMode.FilePerDocument) =>
        new() { Format = CorpusFormat.TextFolder, Paths = [folder], FolderMode = mode };

    /// <summary>The concrete files read, in order (folders expanded to their top-level <c>*.txt</c>, ordinal order).</summary>
    public IReadOnlyList<string> ResolveFiles()
    {
        if (Paths.Count == 0) throw new ArgumentException("the corpus has no input paths");
        var files = new List<string>();
        foreach (var p in Paths)
        {
            if (Format == CorpusFormat.TextFolder)
            {
                if (!Directory.Exists(p)) throw new DirectoryNotFoundException($"corpus folder not found: {p}");
                var txt = Directory.GetFiles(p, "*.txt", SearchOption.TopDirectoryOnly);
                Array.Sort(txt, StringComparer.Ordinal);
                files.AddRange(txt.Select(Path.GetFullPath));
            }
            else
            {
                if (Directory.Exists(p))
                    throw new FileNotFoundException($"corpus path {p} is a directory, expected a file; to read the *.txt files in a folder use --corpus-format dir", p);
                if (!File.Exists(p)) throw new FileNotFoundException($"corpus file not found: {p}", p);
                files.Add(Path.GetFullPath(p));
            }
        }
        return files;
    }

    /// <summary>A canonical description of the reader options (part of the cache key).</summary>
    public string DescribeOptions() =>
        $"format={Format};field={JsonTextField};folder={FolderMode};sub={WikiSubheadings};title={WikiKeepTitle};at={WikiDetokenizeAtMarkers}";
}

/// <summary>Streaming readers: each yields documents lazily, so corpora larger than memory can be processed.</summary>
public static class CorpusReader
{
    /// <summary>Reads every file of <paramref name="spec"/>; <paramref name="bytesRead"/> receives byte-count deltas.</summary>
    public static IEnumerable<Document> Read(CorpusSpec spec, Action<long>? bytesRead = null, SentenceSplitter? splitter = null)
    {
        splitter ??= SentenceSplitter.Default;
        foreach (var file in spec.ResolveFiles())
        {
            var docs = spec.Format switch
            {
                CorpusFormat.Text => ReadGoogleText(file, bytesRead),
                CorpusFormat.WikiText => ReadWikiText(file, spec.WikiSubheadings, spec.WikiKeepTitle, spec.WikiDetokenizeAtMarkers, bytesRead, splitter),
                CorpusFormat.Jsonl => ReadJsonl(file, spec.JsonTextField, bytesRead, splitter),
                CorpusFormat.TextFolder => spec.FolderMode == TextFolderMode.GoogleFormat
                    ? ReadGoogleText(file, bytesRead)
                    : ReadTextFile(file, bytesRead, splitter),
                _ => throw new ArgumentOutOfRangeException(nameof(spec), spec.Format, "unknown corpus format"),
            };
            foreach (var d in docs) yield return d;
        }
    }

    /// <summary>Google format: each non-blank line is one sentence (not split further); blank lines end documents.</summary>
    public static IEnumerable<Document> ReadGoogleText(string path, Action<long>? bytesRead = null)
    {
        using var reader = new Utf8LineReader(path, bytesRead);
        var sentences = new List<string>();
        long startLine = 1;
        while (reader.TryReadLine(out var line))
        {
            var t = line.Trim();
            if (t.Length == 0)
            {
                if (sentences.Count > 0) yield return new Document($"{path}:{startLine}", sentences);
                sentences = new List<string>();
                startLine = reader.LineNumber + 1;
                continue;
            }
            sentences.Add(t);
        }
        if (sentences.Count > 0) yield return new Document($"{path}:{startLine}", sentences);
    }

    /// <summary>Is this WikiText line an article title (<c> = Title = </c>, exactly one '=' on each side)?</summary>
    public static bool IsWikiTitle(string line)
    {
        var t = line.Trim();
        return t.Length >= 5 && t.StartsWith("= ", StringComparison.Ordinal) && t.EndsWith(" =", StringComparison.Ordinal)
               && !t.StartsWith("= =", StringComparison.Ordinal) && !t.EndsWith("= =", StringComparison.Ordinal);
    }

    /// <summary>Is this WikiText line a sub-heading (<c> = = Section = = </c>, two or more '=')?</summary>
    public static bool IsWikiSubheading(string line)
    {
        var t = line.Trim();
        return t.StartsWith("= =", StringComparison.Ordinal) && t.EndsWith("= =", StringComparison.Ordinal);
    }

    /// <summary>
    /// WikiText: a title line starts a new document; sub-headings are dropped or kept as sentences; every other
    /// non-blank line is a paragraph and is sentence-split. Text before the first title forms its own document.
    /// </summary>
    public static IEnumerable<Document> ReadWikiText(string path, WikiSubheadingMode subheadings = WikiSubheadingMode.Drop,
        bool keepTitle = false, bool detokenizeAtMarkers = true, Action<long>? bytesRead = null, SentenceSplitter? splitter = null)
    {
        splitter ??= SentenceSplitter.Default;
        using var reader = new Utf8LineReader(path, bytesRead);
        var sentences = new List<string>();
        long startLine = 1;
        while (reader.TryReadLine(out var line))
        {
            if (IsWikiTitle(line))
            {
                if (sentences.Count > 0) yield return new Document($"{path}:{startLine}", sentences);
                sentences = new List<string>();
                startLine = reader.LineNumber;
                if (keepTitle) sentences.Add(HeadingText(line));
                continue;
            }
            if (IsWikiSubheading(line))
            {
                if (subheadings == WikiSubheadingMode.KeepAsSentence) sentences.Add(HeadingText(line));
                continue;
            }
            if (string.IsNullOrWhiteSpace(line)) continue;
            var text = detokenizeAtMarkers ? DetokenizeAtMarkers(line) : line;
            sentences.AddRange(splitter.Split(text));
        }
        if (sentences.Count > 0) yield return new Document($"{path}:{startLine}", sentences);
    }

    static string HeadingText(string line) => line.Trim().Trim('=', ' ');

    /// <summary>WikiText <c>1 @,@ 000 @.@ 5</c> → <c>1,000.5</c>; <c>well @-@ known</c> → <c>well-known</c>.</summary>
    public static string DetokenizeAtMarkers(string line) =>
        line.Contains('@') ? line.Replace(" @.@ ", ".").Replace(" @,@ ", ",").Replace(" @-@ ", "-") : line;


    /// <summary>
    /// JSONL: each non-blank line is one JSON object and one document; <paramref name="field"/> must be a string.
    /// <c>&lt;br /&gt;</c> tags become spaces, then the text is sentence-split. Errors name <c>file:line</c>.
    /// </summary>
    public static IEnumerable<Document> ReadJsonl(string path, string field = "text", Action<long>? bytesRead = null, SentenceSplitter? splitter = null)
    {
        splitter ??= SentenceSplitter.Default;
        using var reader = new Utf8LineReader(path, bytesRead);
        while (reader.TryReadLine(out var line))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            var text = TextCorpus.ParseJsonLine(line, field, path, reader.LineNumber);
            if (text is null) continue;
            var sentences = splitter.Split(TextCorpus.StripHtmlBreaks(text));
            if (sentences.Count > 0) yield return new Document($"{path}:{reader.LineNumber}", sentences);
        }
    }

    /// <summary>A whole text file as one document (blank lines are paragraph breaks), sentence-split.</summary>
    public static IEnumerable<Document> ReadTextFile(string path, Action<long>? bytesRead = null, SentenceSplitter? splitter = null)
    {
        splitter ??= SentenceSplitter.Default;
        var sb = new StringBuilder();
        using (var reader = new Utf8LineReader(path, bytesRead))
            while (reader.TryReadLine(out var line)) sb.Append(line).Append('\n');
        var sentences = splitter.Split(sb.ToString());
        if (sentences.Count > 0) yield return new Document(path, sentences);
    }
}
