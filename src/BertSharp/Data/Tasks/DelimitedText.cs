using System.Text;

namespace BertSharp.Data.Tasks;

/// <summary>One record of a delimited file with the 1-based line it starts on.</summary>
public readonly record struct DelimitedRecord(int Line, string[] Fields);

/// <summary>
/// Readers for delimited text: plain TSV lines (GLUE's format: no quoting at all, as GLUE's own readers use
/// <c>quotechar=None</c>) and RFC 4180 CSV (quoted fields, doubled quotes, embedded newlines, CRLF). Both decode
/// strict UTF-8, skip a BOM and name FILE:LINE in every error (<see cref="FormatException"/>).
/// </summary>
public static class DelimitedText
{
    /// <summary>Non-empty lines of a UTF-8 file with their line numbers (a BOM and trailing CR are removed).</summary>
    public static IEnumerable<(int Line, string Text)> Lines(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"data file not found: {path}", path);
        using var reader = new Utf8LineReader(path);
        while (reader.TryReadLine(out var line))
            yield return ((int)reader.LineNumber, line);
    }

    /// <summary>
    /// Tab-separated lines, split on every tab with no quote handling. Empty lines are skipped only when
    /// <paramref name="skipBlank"/>; otherwise they are an error.
    /// </summary>
    public static IEnumerable<DelimitedRecord> ReadTsvLines(string path, bool skipBlank = false)
    {
        foreach (var (n, text) in Lines(path))
        {
            if (text.Length == 0)
            {
                if (skipBlank) continue;
                throw new FormatException($"{path}:{n}: empty line (expected tab-separated fields)");
            }
            yield return new DelimitedRecord(n, text.Split('\t'));
        }
    }

    /// <summary>
    /// RFC 4180 records: a field that starts with a quote runs to the next lone quote (<c>""</c> is a literal quote,
    /// newlines inside are kept as <c>\n</c>); a quote inside an unquoted field is literal (as Python's csv module);
    /// after a closing quote only the delimiter or the end of the line may follow. Blank lines are skipped.
    /// </summary>
    public static IEnumerable<DelimitedRecord> ReadCsv(string path, char delimiter = ',')
    {
        var fields = new List<string>();
        var field = new StringBuilder();
        bool inQuotes = false;
        int recordLine = 0, quoteLine = 0;
        int lastLine = 0;
        foreach (var (n, text) in Lines(path))
        {
            lastLine = n;
            if (!inQuotes)
            {
                if (text.Length == 0) continue;
                recordLine = n;
                fields.Clear();
                field.Clear();
            }
            else field.Append('\n');

            int i = 0;
            bool atFieldStart = !inQuotes && true;
            while (true)
            {
                if (inQuotes)
                {
                    int q = text.IndexOf('"', i);
                    if (q < 0) { field.Append(text, i, text.Length - i); i = text.Length; break; }
                    field.Append(text, i, q - i);
                    if (q + 1 < text.Length && text[q + 1] == '"') { field.Append('"'); i = q + 2; continue; }
                    inQuotes = false;
                    i = q + 1;
                    if (i < text.Length && text[i] != delimiter)
                        throw new FormatException($"{path}:{n}: unexpected '{text[i]}' after the closing quote of field {fields.Count + 1} (expected '{Show(delimiter)}' or the end of the line)");
                    atFieldStart = false;
                    if (i == text.Length) break;
                    // text[i] is the delimiter
                    fields.Add(field.ToString());
                    field.Clear();
                    i++;
                    atFieldStart = true;
                    if (i == text.Length) { break; }
                    continue;
                }
                if (atFieldStart && i < text.Length && text[i] == '"')
                {
                    inQuotes = true;
                    quoteLine = n;
                    i++;
                    atFieldStart = false;
                    continue;
                }
                int d = text.IndexOf(delimiter, i);
                if (d < 0) { field.Append(text, i, text.Length - i); i = text.Length; break; }
                field.Append(text, i, d - i);
                fields.Add(field.ToString());
                field.Clear();
                i = d + 1;
                atFieldStart = true;
                if (i == text.Length) break;
            }
            if (inQuotes) continue;
            fields.Add(field.ToString());
            field.Clear();
            yield return new DelimitedRecord(recordLine, fields.ToArray());
        }
        if (inQuotes)
            throw new FormatException($"{path}:{quoteLine}: unterminated quoted field (the file ends at line {lastLine} inside quotes)");
    }

    static string Show(char c) => c == '\t' ? "\\t" : c.ToString();

    /// <summary>Index of the column <paramref name="name"/> in a header; a missing one is an error listing the header.</summary>
    public static int Column(string path, DelimitedRecord header, string name)
    {
        int i = Array.IndexOf(header.Fields, name);
        if (i < 0)
            throw new FormatException($"{path}:{header.Line}: the header has no column '{name}' (columns: {string.Join(", ", header.Fields.Select(f => $"'{f}'"))})");
        return i;
    }

    /// <summary>
    /// The rows after the header of <paramref name="records"/>; <paramref name="onHeader"/> sees the header first (to
    /// find its columns). A row whose field count differs from the header's is an error (file:line), and so is a file
    /// without a header (<paramref name="expected"/> says what the header should name).
    /// </summary>
    public static IEnumerable<DelimitedRecord> RowsWithHeader(string path, IEnumerable<DelimitedRecord> records, string expected, Action<DelimitedRecord> onHeader)
    {
        DelimitedRecord? header = null;
        foreach (var rec in records)
        {
            if (header is null) { header = rec; onHeader(rec); continue; }
            if (rec.Fields.Length != header.Value.Fields.Length)
                throw new FormatException($"{path}:{rec.Line}: expected {header.Value.Fields.Length} fields as in the header (line {header.Value.Line}), found {rec.Fields.Length}");
            yield return rec;
        }
        if (header is null) throw new FormatException($"{path}:1: empty file; expected a header row naming {expected}");
    }
}
