using System.Globalization;
using Parquet;
using Parquet.Schema;

namespace BertSharp.Inference;

/// <summary>
/// Parquet texts for <see cref="TextInputs"/>: one string column (and optionally a label column) read one row group
/// at a time, so a file of any number of rows is never held in memory at once (only its largest row group). Rows are
/// numbered from 1 in the records and errors (as lines are). A missing column, a column that does not hold strings,
/// a null value or an unreadable file is a <see cref="FormatException"/> <c>FILE: column 'C': what was expected</c>.
/// </summary>
static class ParquetTexts
{
    public static IEnumerable<(string Text, string? Label, long Row)> Read(string path, string column, string? labelColumn)
    {
        using var stream = File.OpenRead(path);
        var reader = Open(path, stream);
        try
        {
            var text = StringField(path, reader.Schema, column);
            var label = labelColumn is null ? null : LabelField(path, reader.Schema, labelColumn);
            long row = 0;
            for (int g = 0; g < reader.RowGroupCount; g++)
            {
                var group = reader.OpenRowGroupReader(g);
                int n = checked((int)group.RowCount);
                var texts = new string?[n];
                Wait(path, () => group.ReadAsync(text, texts.AsMemory(), null, default));
                var labels = label is null ? null : ReadLabels(path, group, label, n);
                for (int i = 0; i < n; i++)
                {
                    long r = row + i + 1;
                    var t = texts[i] ?? throw new FormatException($"{path}: column '{column}': row {r} is null; expected a string in every row");
                    string? l = null;
                    if (labels is not null)
                        l = labels[i] ?? throw new FormatException($"{path}: column '{labelColumn}': row {r} is null; expected a label in every row");
                    yield return (t, l, r);
                }
                row += n;
            }
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    /// <summary>Rows of the file (from its footer; no data is read).</summary>
    public static long Count(string path, string column)
    {
        using var stream = File.OpenRead(path);
        var reader = Open(path, stream);
        try
        {
            StringField(path, reader.Schema, column);
            long n = 0;
            for (int g = 0; g < reader.RowGroupCount; g++) n += reader.OpenRowGroupReader(g).RowCount;
            return n;
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }

    static ParquetReader Open(string path, Stream stream)
    {
        try
        {
            return ParquetReader.CreateAsync(stream, null, leaveStreamOpen: true).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or InvalidOperationException or ArgumentException)
        {
            throw new FormatException($"{path}: not a readable Parquet file ({e.Message})");
        }
    }

    static void Wait(string path, Func<ValueTask> read)
    {
        try
        {
            read().AsTask().GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or InvalidOperationException or ArgumentException)
        {
            throw new FormatException($"{path}: a row group could not be read ({e.Message})");
        }
    }

    static Field Find(string path, ParquetSchema schema, string column)
    {
        foreach (var f in schema.Fields)
            if (f.Name == column) return f;
        var names = schema.Fields.Select(f => f.Name).ToList();
        throw new FormatException($"{path}: column '{column}': no such column (columns: {string.Join(", ", names.Take(12))}{(names.Count > 12 ? ", …" : "")})");
    }

    static bool IsString(DataField f) => f.ClrType == typeof(string) || f.ClrType == typeof(ReadOnlyMemory<char>);

    static DataField StringField(string path, ParquetSchema schema, string column)
    {
        var f = Find(path, schema, column);
        if (f is DataField d && !d.IsArray && IsString(d)) return d;
        throw new FormatException($"{path}: column '{column}': {Describe(f)}; expected a column of strings");
    }

    static readonly Type[] LabelTypes = [typeof(bool), typeof(sbyte), typeof(byte), typeof(short), typeof(ushort), typeof(int), typeof(uint), typeof(long), typeof(ulong)];

    static DataField LabelField(string path, ParquetSchema schema, string column)
    {
        var f = Find(path, schema, column);
        if (f is DataField d && !d.IsArray && (IsString(d) || LabelTypes.Contains(d.ClrType))) return d;
        throw new FormatException($"{path}: column '{column}': {Describe(f)}; expected a label column of strings, integers or booleans");
    }

    static string Describe(Field f) => f switch
    {
        DataField { IsArray: true } => "is a repeated (array) column",
        DataField d => $"holds {TypeName(d.ClrType)} values",
        ListField => "is a list column",
        MapField => "is a map column",
        StructField => "is a struct column",
        _ => $"is a {f.SchemaType.ToString().ToLowerInvariant()} column",
    };

    static string TypeName(Type t) =>
        t == typeof(bool) ? "boolean" : t == typeof(int) ? "int32" : t == typeof(long) ? "int64" : t == typeof(float) ? "float32"
        : t == typeof(double) ? "float64" : t == typeof(byte[]) ? "binary (not UTF-8 string)" : t == typeof(DateTime) ? "timestamp"
        : t.Name.ToLowerInvariant();

    static string?[] ReadLabels(string path, ParquetRowGroupReader group, DataField field, int n)
    {
        if (IsString(field))
        {
            var s = new string?[n];
            Wait(path, () => group.ReadAsync(field, s.AsMemory(), null, default));
            return s;
        }
        var t = field.ClrType;
        if (t == typeof(bool)) return Values<bool>(path, group, field, n, v => v ? "true" : "false");
        if (t == typeof(sbyte)) return Values<sbyte>(path, group, field, n, Invariant);
        if (t == typeof(byte)) return Values<byte>(path, group, field, n, Invariant);
        if (t == typeof(short)) return Values<short>(path, group, field, n, Invariant);
        if (t == typeof(ushort)) return Values<ushort>(path, group, field, n, Invariant);
        if (t == typeof(int)) return Values<int>(path, group, field, n, Invariant);
        if (t == typeof(uint)) return Values<uint>(path, group, field, n, Invariant);
        if (t == typeof(long)) return Values<long>(path, group, field, n, Invariant);
        return Values<ulong>(path, group, field, n, Invariant);
    }

    static string Invariant<T>(T v) where T : IFormattable => v.ToString(null, CultureInfo.InvariantCulture);

    static string?[] Values<T>(string path, ParquetRowGroupReader group, DataField field, int n, Func<T, string> format) where T : struct
    {
        var result = new string?[n];
        if (field.IsNullable)
        {
            var v = new T?[n];
            Wait(path, () => group.ReadAsync<T>(field, v.AsMemory(), null, default));
            for (int i = 0; i < n; i++) result[i] = v[i] is { } x ? format(x) : null;
        }
        else
        {
            var v = new T[n];
            Wait(path, () => group.ReadAsync<T>(field, v.AsMemory(), null, default));
            for (int i = 0; i < n; i++) result[i] = format(v[i]);
        }
        return result;
    }
}

/// <summary>
/// The <c>.parquet</c> output of <c>bert embed</c>: columns <c>index</c> (int64, the 0-based input row, as the .jsonl
/// output's <c>"index"</c>) and <c>embedding</c> (a Parquet LIST of float32, exactly H per row, tagged in the footer's
/// <c>ARROW:schema</c> as Arrow <c>fixed_size_list&lt;element: float&gt;[H]</c> so pyarrow/pandas read it as such).
/// Rows are buffered and written one row group at a time (<see cref="RowsPerGroup"/>), so memory is bounded by
/// one row group; the stream is left open.
/// </summary>
sealed class ParquetEmbeddingSink
{
    /// <summary>Default row group size: about 16 MB of float32 values (the buffers, with the repetition and
    /// definition levels Parquet.Net takes as int32 arrays, are three times that).</summary>
    public static int DefaultRowsPerGroup(int dimensions) => Math.Max(1, (4 << 20) / Math.Max(dimensions, 1));

    readonly ParquetWriter _writer;
    readonly DataField _index = new DataField<long>("index");
    readonly DataField _element = new DataField<float>("element");
    readonly int _dims;
    readonly float[] _values;
    readonly long[] _indices;
    readonly int[] _repetition, _definition;
    int _buffered;
    long _rows;
    bool _finished;

    public int RowsPerGroup { get; }

    public ParquetEmbeddingSink(Stream stream, int dimensions, int? rowsPerGroup = null)
    {
        if (dimensions < 1) throw new ArgumentException($"a Parquet embeddings file needs at least one dimension (got {dimensions})");
        _dims = dimensions;
        RowsPerGroup = rowsPerGroup ?? DefaultRowsPerGroup(dimensions);
        if (RowsPerGroup < 1) throw new ArgumentException($"rows per group must be at least 1 (got {RowsPerGroup})");
        var list = new ListField("embedding", _element);   // optional group (LIST) { repeated group list { required float element } }
        var schema = new ParquetSchema(_index, list);
        _writer = ParquetWriter.CreateAsync(schema, stream, null, false, default).GetAwaiter().GetResult();
        _writer.CustomMetadata = new Dictionary<string, string>
        {
            [ArrowSchemaMetadata.Key] = ArrowSchemaMetadata.Encode([
                new("index", false, new ArrowSchemaMetadata.IntType(64, true)),
                new("embedding", true, new ArrowSchemaMetadata.FixedSizeListType(dimensions, new("element", false, new ArrowSchemaMetadata.Float32Type()))),
            ]),
        };
        _values = new float[checked(RowsPerGroup * dimensions)];
        _indices = new long[RowsPerGroup];
        _repetition = new int[_values.Length];
        for (int i = 0; i < _repetition.Length; i++) _repetition[i] = i % dimensions == 0 ? 0 : 1;
        // Every element is present: the optional list is defined (1) and holds a value (2).
        _definition = new int[_values.Length];
        Array.Fill(_definition, 2);
    }

    public void Add(ReadOnlySpan<float> vector)
    {
        if (_finished) throw new InvalidOperationException("the Parquet output is already finished");
        if (vector.Length != _dims) throw new ArgumentException($"vector of length {vector.Length} among {_dims}-dimensional vectors");
        vector.CopyTo(_values.AsSpan(_buffered * _dims));
        _indices[_buffered] = _rows++;
        if (++_buffered == RowsPerGroup) FlushGroup();
    }

    void FlushGroup()
    {
        if (_buffered == 0) return;
        int n = _buffered * _dims;
        using (var group = _writer.CreateRowGroup())
        {
            group.WriteAsync<long>(_index, _indices.AsMemory(0, _buffered), null, null, default).GetAwaiter().GetResult();
            group.WriteAllPartsAsync<float>(_element, _values.AsMemory(0, n), _definition.AsMemory(0, n), _repetition.AsMemory(0, n), default).GetAwaiter().GetResult();
            group.CompleteValidate();
        }
        _buffered = 0;
    }

    /// <summary>Writes the last row group and the footer. Without it (an aborted output) the stream just holds
    /// the row groups written so far, no footer: the caller deletes it.</summary>
    public void Finish()
    {
        if (_finished) throw new InvalidOperationException("the Parquet output is already finished");
        FlushGroup();
        _finished = true;
        _writer.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}
