using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using BertSharp.Checkpoints;
using BertSharp.Data;

namespace BertSharp.Inference;

/// <summary>Output formats of <c>bert embed</c>.</summary>
public enum EmbeddingFileFormat
{
    /// <summary>NumPy float32 [N, H], C order.</summary>
    Npy,
    /// <summary>One <c>{"index":i,"embedding":[…]}</c> object per line, floats in shortest round-trip form.</summary>
    Jsonl,
    /// <summary>A header <c>e0,e1,…</c> and one row of H floats per text (shortest round-trip form).</summary>
    Csv,
    /// <summary>Apache Parquet: <c>index</c> (int64) and <c>embedding</c> (a list of exactly H float32, an Arrow
    /// fixed-size list), streamed one row group at a time.</summary>
    Parquet,
}

/// <summary>Reading the texts and writing the vectors of <c>bert embed</c>.</summary>
public static class EmbeddingFiles
{
    /// <summary>The format of an output path from its extension.</summary>
    /// <exception cref="ArgumentException">not <c>.npy</c>, <c>.jsonl</c>, <c>.csv</c> or <c>.parquet</c>.</exception>
    public static EmbeddingFileFormat FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".npy" => EmbeddingFileFormat.Npy,
        ".jsonl" => EmbeddingFileFormat.Jsonl,
        ".csv" => EmbeddingFileFormat.Csv,
        ".parquet" => EmbeddingFileFormat.Parquet,
        var ext => throw new ArgumentException(
            $"{path}: unknown output format '{(ext.Length == 0 ? "(no extension)" : ext)}' (expected .npy, .jsonl, .csv or .parquet)"),
    };

    /// <summary>
    /// One text per line of a strict UTF-8 file (a BOM and CR line ends are accepted; an empty line is the empty
    /// text). Line i (0-based) is text i.
    /// </summary>
    /// <exception cref="FileNotFoundException">no such file.</exception>
    /// <exception cref="FormatException"><c>FILE:LINE: invalid UTF-8 …</c>.</exception>
    public static List<string> ReadTexts(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"input file not found: {path}", path);
        using var reader = new Utf8LineReader(path);
        var texts = new List<string>();
        while (reader.TryReadLine(out var line)) texts.Add(line);
        return texts;
    }

    /// <summary>
    /// Writes <paramref name="vectors"/> (all of length <paramref name="dimensions"/>) to <paramref name="path"/> in
    /// the format its extension names. The file is written beside the target under a temporary name and renamed
    /// into place, so the target is either the complete new file or untouched.
    /// </summary>
    public static void Write(string path, IReadOnlyList<float[]> vectors, int dimensions)
    {
        foreach (var v in vectors)
            if (v.Length != dimensions) throw new ArgumentException($"vector of length {v.Length} among {dimensions}-dimensional vectors");
        using var w = new EmbeddingFileWriter(path, dimensions);
        w.Append(vectors);
        w.Commit();
    }
}

/// <summary>
/// Appends vectors to an embeddings file (.npy / .jsonl / .csv / .parquet) as they come, for inputs too large to hold:
/// rows go to a temporary file beside the target; <see cref="Commit"/> completes it (the .npy header is rewritten with
/// the final row count — it has a fixed 128-byte size, so the data does not move; the Parquet footer is written) and
/// renames it into place. Disposing
/// without committing (an error, Ctrl-C) deletes the temporary file: the target is the complete new file or untouched.
/// </summary>
public sealed class EmbeddingFileWriter : IDisposable
{
    const int NpyHeaderBytes = 128;
    readonly string _target, _tmp;
    readonly FileStream _stream;
    readonly StreamWriter? _text;
    readonly ParquetEmbeddingSink? _parquet;
    readonly byte[] _row;
    readonly StringBuilder _sb = new();
    bool _done;

    public EmbeddingFileFormat Format { get; }
    public int Dimensions { get; }
    public long Rows { get; private set; }

    public EmbeddingFileWriter(string path, int dimensions) : this(path, dimensions, null) { }

    /// <param name="parquetRowsPerGroup">rows per Parquet row group (default: about 16 MB of floats)</param>
    internal EmbeddingFileWriter(string path, int dimensions, int? parquetRowsPerGroup)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(dimensions);
        Format = EmbeddingFiles.FormatOf(path);
        Dimensions = dimensions;
        _target = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(_target)!;
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{path}: output directory {dir} does not exist");
        _tmp = Path.Combine(dir, $".{Path.GetFileName(_target)}.tmp-{Guid.NewGuid():N}");
        _stream = new FileStream(_tmp, FileMode.CreateNew, FileAccess.ReadWrite, FileShare.None, 1 << 16);
        _row = new byte[checked(dimensions * 4)];
        if (Format == EmbeddingFileFormat.Npy)
        {
            var header = NpyHeader(0);
            _stream.Write(header);
        }
        else if (Format == EmbeddingFileFormat.Parquet)
        {
            try
            {
                _parquet = new ParquetEmbeddingSink(_stream, dimensions, parquetRowsPerGroup);
            }
            catch
            {
                _stream.Dispose();
                File.Delete(_tmp);
                throw;
            }
        }
        else
        {
            _text = new StreamWriter(_stream, new UTF8Encoding(false), 1 << 16, leaveOpen: true) { NewLine = "\n" };
            if (Format == EmbeddingFileFormat.Csv)
                _text.WriteLine(string.Join(',', Enumerable.Range(0, dimensions).Select(j => "e" + j.ToString(CultureInfo.InvariantCulture))));
        }
    }

    byte[] NpyHeader(long rows)
    {
        var h = NpyFloat32Writer.Header(rows, Dimensions);
        if (h.Length != NpyHeaderBytes) throw new InvalidOperationException($"npy header of {h.Length} bytes (expected {NpyHeaderBytes})");
        return h;
    }

    public void Append(IReadOnlyList<float[]> vectors)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        foreach (var v in vectors) Append(v);
    }

    public void Append(ReadOnlySpan<float> v)
    {
        ObjectDisposedException.ThrowIf(_done, this);
        if (v.Length != Dimensions) throw new ArgumentException($"vector of length {v.Length} among {Dimensions}-dimensional vectors");
        if (Format == EmbeddingFileFormat.Npy)
        {
            for (int j = 0; j < v.Length; j++) BinaryPrimitives.WriteSingleLittleEndian(_row.AsSpan(4 * j), v[j]);
            _stream.Write(_row);
        }
        else if (_parquet is not null) _parquet.Add(v);
        else
        {
            _sb.Clear();
            if (Format == EmbeddingFileFormat.Jsonl) _sb.Append("{\"index\":").Append(Rows.ToString(CultureInfo.InvariantCulture)).Append(",\"embedding\":[");
            for (int j = 0; j < v.Length; j++)
            {
                if (!float.IsFinite(v[j]))
                    throw new InvalidDataException($"embedding {Rows} has a non-finite value ({v[j]}) at {j}; {(Format == EmbeddingFileFormat.Jsonl ? "JSON" : "the CSV output")} cannot hold it");
                if (j > 0) _sb.Append(',');
                _sb.Append(v[j].ToString("R", CultureInfo.InvariantCulture));
            }
            if (Format == EmbeddingFileFormat.Jsonl) _sb.Append("]}");
            _text!.WriteLine(_sb);
        }
        Rows++;
    }

    /// <summary>Completes the file and renames it into place.</summary>
    public void Commit()
    {
        ObjectDisposedException.ThrowIf(_done, this);
        if (_text is not null) _text.Flush();
        else if (_parquet is not null) _parquet.Finish();
        else
        {
            _stream.Position = 0;
            _stream.Write(NpyHeader(Rows));
        }
        _stream.Flush(flushToDisk: true);
        _stream.Dispose();
        File.Move(_tmp, _target, overwrite: true);
        _done = true;
    }

    public void Dispose()
    {
        if (_done) return;
        _done = true;
        try { _text?.Dispose(); } catch (IOException) { }
        _stream.Dispose();
        try { File.Delete(_tmp); } catch (IOException) { }
    }
}
