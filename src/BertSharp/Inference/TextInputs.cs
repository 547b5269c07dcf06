using System.Text.Json;
using BertSharp.Data;
using BertSharp.Data.Tasks;

namespace BertSharp.Inference;

/// <summary>Kinds of text input <see cref="TextInputs"/> reads, picked by the file's extension.</summary>
public enum TextInputFormat
{
    /// <summary>One text per line (any extension other than the ones below).</summary>
    Lines,
    /// <summary><c>.jsonl</c>: one JSON object per line; the text is a string field.</summary>
    Jsonl,
    /// <summary><c>.csv</c>: RFC 4180 with a header row; the text is a named column.</summary>
    Csv,
    /// <summary><c>.tsv</c>: tab-separated with a header row, no quoting (GLUE's format); the text is a named column.</summary>
    Tsv,
    /// <summary><c>.parquet</c>: Apache Parquet; the text is a named string column (read one row group at a time).</summary>
    Parquet,
}

/// <summary>One input text and the 1-based line of the file it starts on (for Parquet: the 1-based row).</summary>
public readonly record struct TextRecord(string Text, long Line);

/// <summary>
/// Streaming readers for the texts of <c>bert embed</c>, <c>bert search</c> and <c>bert classify-demo</c>: records
/// are produced one at a time (a file of any size is never held in memory; Parquet: one row group at a time), in file
/// order, and every malformed record is a <see cref="FormatException"/> <c>FILE:LINE: what was expected</c> (Parquet:
/// <c>FILE: column 'C': what was expected</c>).
/// </summary>
public static class TextInputs
{
    public static TextInputFormat FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".jsonl" => TextInputFormat.Jsonl,
        ".csv" => TextInputFormat.Csv,
        ".tsv" => TextInputFormat.Tsv,
        ".parquet" => TextInputFormat.Parquet,
        _ => TextInputFormat.Lines,
    };

    /// <summary>
    /// Checks that the path exists and that the field/column options fit its format: <c>.jsonl</c> needs
    /// <paramref name="field"/>, <c>.csv</c>/<c>.tsv</c>/<c>.parquet</c> need <paramref name="column"/>, a plain text file takes neither.
    /// </summary>
    public static TextInputFormat Validate(string path, string? field, string? column)
    {
        if (Directory.Exists(path)) throw new FileNotFoundException($"input {path} is a directory, expected a file", path);
        if (!File.Exists(path)) throw new FileNotFoundException($"input file not found: {path}", path);
        var format = FormatOf(path);
        switch (format)
        {
            case TextInputFormat.Jsonl:
                if (field is null) throw new ArgumentException($"{path}: a .jsonl input needs --field NAME (the string field that holds the text)");
                if (column is not null) throw new ArgumentException($"{path}: --column is for .csv/.tsv inputs; a .jsonl input takes --field");
                break;
            case TextInputFormat.Csv or TextInputFormat.Tsv:
                if (column is null) throw new ArgumentException($"{path}: a .csv/.tsv input needs --column NAME (a column of its header row)");
                if (field is not null) throw new ArgumentException($"{path}: --field is for .jsonl inputs; a .csv/.tsv input takes --column");
                break;
            case TextInputFormat.Parquet:
                if (column is null) throw new ArgumentException($"{path}: a .parquet input needs --column NAME (a string column)");
                if (field is not null) throw new ArgumentException($"{path}: --field is for .jsonl inputs; a .parquet input takes --column");
                ParquetTexts.Count(path, column);   // the footer: a Parquet file with that string column, before any work
                break;
            default:
                if (field is not null || column is not null)
                    throw new ArgumentException($"{path}: --field/--column are for .jsonl/.csv/.tsv/.parquet inputs; this file is read as one text per line");
                break;
        }
        return format;
    }

    /// <summary>The texts of <paramref name="path"/> in file order: the lines of a text file (an empty line is the empty text), field <paramref name="field"/> of each JSONL object (blank lines skipped), column <paramref name="column"/> of each CSV/TSV record after the header (blank lines skipped) or of each Parquet row (a null is an error).</summary>
    public static IEnumerable<TextRecord> Read(string path, string? field = null, string? column = null) =>
        ReadRows(path, field ?? column, null).Select(r => new TextRecord(r.Text, r.Line));

    /// <summary>
    /// Texts with a second string value per record (a label): <paramref name="textKey"/> and
    /// <paramref name="labelKey"/> name JSONL fields or CSV/TSV/Parquet columns. A JSON label may be a string or a number
    /// (written back as its JSON text); a Parquet label column may hold strings, integers or booleans.
    /// </summary>
    public static IEnumerable<(string Text, string? Label, long Line)> ReadRows(string path, string? textKey, string? labelKey)
    {
        var format = FormatOf(path);
        if (format == TextInputFormat.Lines)
        {
            Validate(path, null, null);
            if (labelKey is not null) throw new ArgumentException($"{path}: a plain text file has no labels; use .jsonl or .csv/.tsv");
            return Lines(path);
        }
        if (textKey is null) throw new ArgumentException($"{path}: name the field/column that holds the text");
        Validate(path, format == TextInputFormat.Jsonl ? textKey : null, format == TextInputFormat.Jsonl ? null : textKey);
        return format switch
        {
            TextInputFormat.Jsonl => Jsonl(path, textKey, labelKey),
            TextInputFormat.Parquet => ParquetTexts.Read(path, textKey, labelKey),
            _ => Delimited(path, format == TextInputFormat.Csv, textKey, labelKey),
        };
    }

    /// <summary>Number of records <see cref="Read(string, string?, string?)"/> yields (one streaming pass; for progress
    /// bars; a Parquet file's row count comes from its footer).</summary>
    public static long Count(string path, string? field = null, string? column = null)
    {
        if (FormatOf(path) == TextInputFormat.Parquet)
        {
            Validate(path, field, column);
            return ParquetTexts.Count(path, column!);
        }
        long n = 0;
        foreach (var _ in Read(path, field, column)) n++;
        return n;
    }

    static IEnumerable<(string, string?, long)> Lines(string path)
    {
        using var reader = new Utf8LineReader(path);
        while (reader.TryReadLine(out var line)) yield return (line, null, reader.LineNumber);
    }

    static IEnumerable<(string, string?, long)> Jsonl(string path, string field, string? labelField)
    {
        using var reader = new Utf8LineReader(path);
        while (reader.TryReadLine(out var line))
        {
            if (string.IsNullOrWhiteSpace(line)) continue;
            long n = reader.LineNumber;
            JsonDocument doc;
            try
            {
                doc = JsonDocument.Parse(line);
            }
            catch (JsonException e)
            {
                throw new FormatException($"{path}:{n}: invalid JSON ({e.Message.Split(" LineNumber")[0].TrimEnd()}); expected one JSON object per line");
            }
            using (doc)
            {
                if (doc.RootElement.ValueKind != JsonValueKind.Object)
                    throw new FormatException($"{path}:{n}: expected a JSON object with a string field \"{field}\", found a JSON {doc.RootElement.ValueKind.ToString().ToLowerInvariant()}");
                if (!doc.RootElement.TryGetProperty(field, out var v))
                    throw new FormatException($"{path}:{n}: the object has no field \"{field}\" (fields: {string.Join(", ", doc.RootElement.EnumerateObject().Select(p => p.Name).Take(8))})");
                if (v.ValueKind != JsonValueKind.String)
                    throw new FormatException($"{path}:{n}: field \"{field}\" must be a string, found a JSON {v.ValueKind.ToString().ToLowerInvariant()}");
                string? label = null;
                if (labelField is not null)
                {
                    if (!doc.RootElement.TryGetProperty(labelField, out var l))
                        throw new FormatException($"{path}:{n}: the object has no label field \"{labelField}\"");
                    label = l.ValueKind switch
                    {
                        JsonValueKind.String => l.GetString(),
                        JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => l.GetRawText(),
                        _ => throw new FormatException($"{path}:{n}: label field \"{labelField}\" must be a string, number or boolean, found a JSON {l.ValueKind.ToString().ToLowerInvariant()}"),
                    };
                }
                yield return (v.GetString()!, label, n);
            }
        }
    }

    static IEnumerable<(string, string?, long)> Delimited(string path, bool csv, string column, string? labelColumn)
    {
        var records = csv ? DelimitedText.ReadCsv(path) : DelimitedText.ReadTsvLines(path, skipBlank: true);
        int col = -1, labelCol = -1;
        foreach (var rec in DelimitedText.RowsWithHeader(path, records, $"the column '{column}'", header =>
                 {
                     col = DelimitedText.Column(path, header, column);
                     if (labelColumn is not null) labelCol = DelimitedText.Column(path, header, labelColumn);
                 }))
            yield return (rec.Fields[col], labelCol >= 0 ? rec.Fields[labelCol] : null, rec.Line);
    }
}
