using System.Globalization;
using System.Text.Json;

namespace BertSharp.Data.Tasks;

/// <summary>
/// GLUE TSV files by task name. Columns are found by header name (CoLA's headerless train/dev files use the fixed
/// columns source, label, original label, sentence); a file whose header lacks the label column (the test files) is
/// read as unlabelled. Every row must have as many tab-separated fields as the header.
/// </summary>
public static class GlueReader
{
    sealed record Format(string[] TextColumns, string LabelColumn, string IdColumn);

    static Format FormatOf(TaskSpec task) => task.Name switch
    {
        "mrpc" => new(["#1 String", "#2 String"], "Quality", "index"),
        "sst2" => new(["sentence"], "label", "index"),
        "stsb" => new(["sentence1", "sentence2"], "score", "index"),
        "cola" => new(["sentence"], "label", "index"),
        "rte" or "wnli" => new(["sentence1", "sentence2"], "label", "index"),
        "qnli" => new(["question", "sentence"], "label", "index"),
        _ => throw new ArgumentException($"'{task.Name}' is not a GLUE task (expected one of mrpc, sst2, stsb, cola, rte, wnli, qnli)"),
    };

    static readonly string[] ColaColumns = ["source", "label", "original_label", "sentence"];

    public static TextDataset Read(string task, string path) => Read(FineTuneTasks.Get(task), path);

    public static TextDataset Read(TaskSpec task, string path)
    {
        var format = FormatOf(task);
        var examples = new List<TextExample>();
        DelimitedRecord? header = null;
        int[] textCols = [];
        int labelCol = -1, idCol = -1, idA = -1, idB = -1;
        bool regression = task.Kind == TaskKind.Regression;
        foreach (var rec in DelimitedText.ReadTsvLines(path))
        {
            if (header is null)
            {
                bool headerless = task.Name == "cola" && !(rec.Fields.Length == 2 && rec.Fields[0] == "index");
                header = headerless ? new DelimitedRecord(0, ColaColumns) : rec;
                textCols = format.TextColumns.Select(c => DelimitedText.Column(path, header.Value, c)).ToArray();
                labelCol = Array.IndexOf(header.Value.Fields, format.LabelColumn);
                idCol = Array.IndexOf(header.Value.Fields, format.IdColumn);
                idA = Array.IndexOf(header.Value.Fields, "#1 ID");
                idB = Array.IndexOf(header.Value.Fields, "#2 ID");
                if (!headerless) continue;
            }
            var f = rec.Fields;
            int expected = header.Value.Fields.Length;
            if (f.Length != expected)
                throw new FormatException($"{path}:{rec.Line}: expected {expected} tab-separated fields ({Describe(header.Value)}), found {f.Length}");
            string id = idCol >= 0 ? f[idCol] : idA >= 0 && idB >= 0 ? $"{f[idA]}-{f[idB]}" : $"line-{rec.Line}";
            int? label = null;
            float? score = null;
            if (labelCol >= 0)
            {
                if (regression) score = ParseScore(path, rec.Line, format.LabelColumn, f[labelCol], 0, 5);
                else label = ParseLabel(path, rec.Line, format.LabelColumn, f[labelCol], task.FileLabels!);
            }
            examples.Add(new TextExample(id, f[textCols[0]], textCols.Length > 1 ? f[textCols[1]] : null, label, score, rec.Line));
        }
        if (header is null) throw new FormatException($"{path}:1: the file is empty (expected a GLUE {task.Name} TSV)");
        return new TextDataset(path, regression ? null : task.Labels, regression, labelCol >= 0, examples);
    }

    static string Describe(DelimitedRecord header) =>
        header.Line == 0 ? "CoLA: source, label, original label, sentence" : "header: " + string.Join(", ", header.Fields.Select(h => $"'{h}'"));

    internal static int ParseLabel(string path, int line, string column, string value, IReadOnlyList<string> labels)
    {
        for (int i = 0; i < labels.Count; i++)
            if (labels[i] == value) return i;
        throw new FormatException($"{path}:{line}/{column}: expected one of {string.Join(", ", labels)}; found '{value}'");
    }

    internal static float ParseScore(string path, int line, string column, string value, float? min, float? max)
    {
        if (!float.TryParse(value, NumberStyles.Float, CultureInfo.InvariantCulture, out var s) || !float.IsFinite(s))
            throw new FormatException($"{path}:{line}/{column}: expected a number; found '{value}'");
        if ((min is float lo && s < lo) || (max is float hi && s > hi))
            throw new FormatException($"{path}:{line}/{column}: expected a score between {min} and {max}; found {value}");
        return s;
    }
}

/// <summary>SNLI in the TAB format here: <c>premise&lt;TAB&gt;hypothesis&lt;TAB&gt;label</c>, labels 0/1/2, no header.</summary>
public static class SnliReader
{
    public static TextDataset Read(string path)
    {
        var task = FineTuneTasks.Get("snli");
        var examples = new List<TextExample>();
        foreach (var rec in DelimitedText.ReadTsvLines(path))
        {
            if (rec.Fields.Length != 3)
                throw new FormatException($"{path}:{rec.Line}: expected 3 tab-separated fields (premise, hypothesis, label), found {rec.Fields.Length}");
            int label = GlueReader.ParseLabel(path, rec.Line, "label", rec.Fields[2], task.FileLabels!);
            examples.Add(new TextExample($"line-{rec.Line}", rec.Fields[0], rec.Fields[1], label, null, rec.Line));
        }
        return new TextDataset(path, task.Labels, false, true, examples);
    }
}

/// <summary>IMDB JSONL: one object per line with <c>"text"</c> (string) and <c>"label"</c> (0 = neg, 1 = pos).
/// A file where no record has a label is read as unlabelled; a file mixing both is an error.</summary>
public static class ImdbReader
{
    public static TextDataset Read(string path)
    {
        var task = FineTuneTasks.Get("imdb");
        var examples = new List<TextExample>();
        bool? labelled = null;
        foreach (var (line, obj) in JsonLines.Read(path))
        {
            string text = JsonLines.String(path, line, obj, "text");
            string id = obj.TryGetProperty("id", out var idv) && idv.ValueKind == JsonValueKind.String ? idv.GetString()! : $"line-{line}";
            int? label = null;
            bool has = obj.TryGetProperty("label", out var lv) && lv.ValueKind != JsonValueKind.Null;
            if (labelled is bool l && l != has)
                throw new FormatException($"{path}:{line}/label: {(has ? "a label in a file whose first record has none" : "missing (earlier records have labels)")}");
            labelled = has;
            if (has)
            {
                if (lv.ValueKind != JsonValueKind.Number || !lv.TryGetInt32(out var v) || v is < 0 or > 1)
                    throw new FormatException($"{path}:{line}/label: expected 0 or 1; found {lv.GetRawText()}");
                label = v;
            }
            examples.Add(new TextExample(id, text, null, label, null, line));
        }
        return new TextDataset(path, task.Labels, false, labelled ?? false, examples);
    }
}

/// <summary>JSON Lines helpers: one object per non-blank line, errors with FILE:LINE.</summary>
public static class JsonLines
{
    public static IEnumerable<(int Line, JsonElement Object)> Read(string path)
    {
        foreach (var (n, text) in DelimitedText.Lines(path))
        {
            if (string.IsNullOrWhiteSpace(text)) continue;
            JsonElement root;
            try
            {
                using var doc = JsonDocument.Parse(text);
                root = doc.RootElement.Clone();
            }
            catch (JsonException e)
            {
                throw new FormatException($"{path}:{n}: invalid JSON ({FirstSentence(e.Message)})");
            }
            if (root.ValueKind != JsonValueKind.Object)
                throw new FormatException($"{path}:{n}: expected a JSON object; found {root.ValueKind.ToString().ToLowerInvariant()}");
            yield return (n, root);
        }
    }

    public static string String(string path, int line, JsonElement obj, string field)
    {
        if (!obj.TryGetProperty(field, out var v)) throw new FormatException($"{path}:{line}/{field}: missing (the record has no \"{field}\" field)");
        if (v.ValueKind != JsonValueKind.String) throw new FormatException($"{path}:{line}/{field}: expected a string; found {v.ValueKind.ToString().ToLowerInvariant()}");
        return v.GetString()!;
    }

    internal static string FirstSentence(string message)
    {
        int i = message.IndexOf(". ", StringComparison.Ordinal);
        return (i > 0 ? message[..i] : message).TrimEnd('.');
    }
}

/// <summary>Options of <see cref="GenericTextReader"/> (<c>--text-column</c>, <c>--text-pair-column</c>, <c>--label-column</c>).</summary>
public sealed record GenericTextOptions
{
    public string TextColumn { get; init; } = "text";
    public string? TextPairColumn { get; init; }
    /// <summary>Label column; when the file lacks it the examples are unlabelled.</summary>
    public string LabelColumn { get; init; } = "label";
    /// <summary>Read the label as a float (regression) instead of a class.</summary>
    public bool Regression { get; init; }
    /// <summary>Label values in id order; null = the distinct values of the file (numeric order when all are integers, else ordinal).</summary>
    public IReadOnlyList<string>? Labels { get; init; }
}

/// <summary>
/// A CSV (<c>.csv</c>, comma), TSV (<c>.tsv</c>/<c>.tab</c>, tab; the same quote-aware parser) or JSONL
/// (<c>.jsonl</c>/<c>.ndjson</c>/<c>.json</c>) file with a header row / object fields naming the columns.
/// </summary>
public static class GenericTextReader
{
    public static TextDataset Read(string path, GenericTextOptions options)
    {
        var ext = Path.GetExtension(path).ToLowerInvariant();
        var rows = ext switch
        {
            ".csv" => FromDelimited(path, ',', options),
            ".tsv" or ".tab" => FromDelimited(path, '\t', options),
            ".jsonl" or ".ndjson" or ".json" => FromJsonl(path, options),
            _ => throw new ArgumentException($"{path}: unknown data format '{ext}' (expected .csv, .tsv, .tab, .jsonl, .ndjson or .json lines)"),
        };
        return Build(path, rows, options);
    }

    sealed record Row(int Line, string Text, string? Pair, string? Label);

    static List<Row> FromDelimited(string path, char delimiter, GenericTextOptions options)
    {
        var rows = new List<Row>();
        DelimitedRecord? header = null;
        int text = -1, pair = -1, label = -1;
        foreach (var rec in DelimitedText.ReadCsv(path, delimiter))
        {
            if (header is null)
            {
                header = rec;
                text = DelimitedText.Column(path, rec, options.TextColumn);
                if (options.TextPairColumn is string p) pair = DelimitedText.Column(path, rec, p);
                label = Array.IndexOf(rec.Fields, options.LabelColumn);
                continue;
            }
            if (rec.Fields.Length != header.Value.Fields.Length)
                throw new FormatException($"{path}:{rec.Line}: expected {header.Value.Fields.Length} fields as the header, found {rec.Fields.Length}");
            rows.Add(new Row(rec.Line, rec.Fields[text], pair >= 0 ? rec.Fields[pair] : null, label >= 0 ? rec.Fields[label] : null));
        }
        if (header is null) throw new FormatException($"{path}:1: the file is empty (expected a header row)");
        return rows;
    }

    static List<Row> FromJsonl(string path, GenericTextOptions options)
    {
        var rows = new List<Row>();
        foreach (var (line, obj) in JsonLines.Read(path))
        {
            var text = JsonLines.String(path, line, obj, options.TextColumn);
            var pair = options.TextPairColumn is string p ? JsonLines.String(path, line, obj, p) : null;
            string? label = null;
            if (obj.TryGetProperty(options.LabelColumn, out var lv) && lv.ValueKind != JsonValueKind.Null)
                label = lv.ValueKind switch
                {
                    JsonValueKind.String => lv.GetString()!,
                    JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => lv.GetRawText(),
                    _ => throw new FormatException($"{path}:{line}/{options.LabelColumn}: expected a string, number or boolean; found {lv.ValueKind.ToString().ToLowerInvariant()}"),
                };
            rows.Add(new Row(line, text, pair, label));
        }
        return rows;
    }

    static TextDataset Build(string path, List<Row> rows, GenericTextOptions options)
    {
        bool labelled = rows.Count > 0 && rows[0].Label is not null;
        foreach (var r in rows)
            if ((r.Label is not null) != labelled)
                throw new FormatException($"{path}:{r.Line}/{options.LabelColumn}: {(labelled ? "missing" : "present")} (the first record {(labelled ? "has" : "has no")} a label)");
        IReadOnlyList<string>? labels = null;
        if (labelled && !options.Regression)
        {
            labels = options.Labels ?? SortLabels(rows.Select(r => r.Label!).Distinct());
        }
        else if (!options.Regression) labels = options.Labels;
        var examples = new List<TextExample>(rows.Count);
        foreach (var r in rows)
        {
            int? label = null;
            float? score = null;
            if (r.Label is string l)
            {
                if (options.Regression) score = GlueReader.ParseScore(path, r.Line, options.LabelColumn, l, null, null);
                else label = GlueReader.ParseLabel(path, r.Line, options.LabelColumn, l, labels!);
            }
            examples.Add(new TextExample($"line-{r.Line}", r.Text, r.Pair, label, score, r.Line));
        }
        return new TextDataset(path, labels, options.Regression, labelled, examples);
    }

    /// <summary>Numeric order when every value is an integer, else ordinal.</summary>
    public static IReadOnlyList<string> SortLabels(IEnumerable<string> values)
    {
        var v = values.ToArray();
        if (v.All(x => long.TryParse(x, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)))
            return v.OrderBy(x => long.Parse(x, CultureInfo.InvariantCulture)).ToArray();
        return v.Order(StringComparer.Ordinal).ToArray();
    }
}
