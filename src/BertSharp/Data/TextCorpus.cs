using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace BertSharp.Data;

/// <summary>Options for <see cref="TextCorpus"/>.</summary>
public sealed record TextCorpusOptions
{
    public CorpusFormat Format { get; init; } = CorpusFormat.Text;
    /// <summary>The JSONL property holding the text.</summary>
    public string Field { get; init; } = "text";
    /// <summary>
    /// Replace HTML line breaks (<c>&lt;br /&gt;</c>, <c>&lt;br/&gt;</c>, <c>&lt;br&gt;</c>, any case) with a space, as the IMDB
    /// reviews need. Null = on for JSONL, off for plain text.
    /// </summary>
    public bool? StripHtmlBreaks { get; init; }

    public bool EffectiveStripHtmlBreaks => StripHtmlBreaks ?? Format == CorpusFormat.Jsonl;

    /// <summary>Parses a --format value (a <see cref="CorpusFormat"/> name: text, wikitext, jsonl or dir; case-insensitive).</summary>
    public static CorpusFormat ParseFormat(string value)
    {
        try { return (CorpusFormat)Configuration.ConfigJson.ParseEnum(typeof(CorpusFormat), value); }
        catch (FormatException) { throw new ArgumentException($"unknown input format '{value}' (expected {Configuration.ConfigJson.EnumChoices(typeof(CorpusFormat))})"); }
    }
}

/// <summary>
/// Streams texts from a corpus in any <see cref="CorpusFormat"/>, one line at a time (memory is independent of file
/// size): the text-like formats (text, wikitext, the .txt files of a dir) yield each non-blank line, JSONL the field of
/// each record. The same files <see cref="CorpusReader"/> reads as documents; this flat view is what vocabulary training needs.
/// Reports progress in bytes read over the total size of all files.
/// </summary>
public static partial class TextCorpus
{
    [GeneratedRegex(@"<br\s*/?>", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex HtmlBreak();

    /// <summary>Replaces HTML line breaks with a single space.</summary>
    public static string StripHtmlBreaks(string text) =>
        text.Contains('<') ? HtmlBreak().Replace(text, " ") : text;

    /// <summary>The files of <paramref name="paths"/>: for <see cref="CorpusFormat.TextFolder"/> each folder's top-level
    /// <c>*.txt</c> in ordinal order (as <see cref="CorpusSpec.ResolveFiles"/>), otherwise the paths themselves.</summary>
    public static IReadOnlyList<string> Files(IReadOnlyList<string> paths, CorpusFormat format) =>
        format == CorpusFormat.TextFolder ? new CorpusSpec { Format = format, Paths = paths }.ResolveFiles() : paths;

    /// <summary>Checks that every path is an existing file; returns the total size in bytes.</summary>
    public static long TotalBytes(IReadOnlyList<string> paths)
    {
        if (paths.Count == 0) throw new ArgumentException("no input files given");
        long total = 0;
        foreach (var p in paths)
        {
            if (Directory.Exists(p)) throw new ArgumentException($"{p}: is a directory, expected a file");
            if (!File.Exists(p)) throw new FileNotFoundException($"input file not found: {p}", p);
            total += new FileInfo(p).Length;
        }
        return total;
    }

    /// <summary>
    /// Lazily reads the documents of <paramref name="paths"/> in order. <paramref name="bytesRead"/> (if given) is called
    /// now and then with the cumulative number of bytes consumed. Bad JSONL lines throw <see cref="FormatException"/> naming
    /// file:line.
    /// </summary>
    public static IEnumerable<string> Read(IReadOnlyList<string> paths, TextCorpusOptions? options = null, Action<long>? bytesRead = null)
    {
        options ??= new TextCorpusOptions();
        paths = Files(paths, options.Format);
        TotalBytes(paths); // fail fast on a missing file, before anything is read
        long done = 0;
        foreach (var path in paths)
        {
            long inFile = 0, lastReport = 0;
            using var reader = new Utf8LineReader(path, n => inFile += n);
            while (reader.TryReadLine(out var line))
            {
                if (bytesRead is not null && inFile - lastReport >= 1 << 16)
                {
                    lastReport = inFile;
                    bytesRead(done + inFile);
                }
                string? doc = options.Format == CorpusFormat.Jsonl ? ParseJsonLine(line, options.Field, path, reader.LineNumber) : line;
                if (string.IsNullOrWhiteSpace(doc)) continue;
                if (options.EffectiveStripHtmlBreaks) doc = StripHtmlBreaks(doc);
                yield return doc;
            }
            done += new FileInfo(path).Length;
            bytesRead?.Invoke(done);
        }
    }

    /// <summary>The string value of <paramref name="field"/> in one JSONL line; null for a blank line.</summary>
    internal static string? ParseJsonLine(string line, string field, string path, long lineNo)
    {
        if (string.IsNullOrWhiteSpace(line)) return null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(line);
        }
        catch (JsonException e)
        {
            var why = e.Message;
            int cut = why.IndexOf(" LineNumber:", StringComparison.Ordinal);
            if (cut > 0) why = why[..cut];
            var at = e.BytePositionInLine is long b ? $" at byte {b + 1}" : "";
            throw new FormatException($"{path}:{lineNo}: invalid JSON{at}: {why}");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new FormatException($"{path}:{lineNo}: expected a JSON object, found {doc.RootElement.ValueKind}");
            if (!doc.RootElement.TryGetProperty(field, out var value))
                throw new FormatException($"{path}:{lineNo}: the object has no field \"{field}\"");
            if (value.ValueKind == JsonValueKind.Null) return null;
            if (value.ValueKind != JsonValueKind.String)
                throw new FormatException($"{path}:{lineNo}: field \"{field}\" is a {value.ValueKind}, expected a string");
            return value.GetString();
        }
    }
}
