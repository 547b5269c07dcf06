using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace BertSharp.Checkpoints;

/// <summary>
/// Writes a float32 NumPy <c>.npy</c> file (format 1.0, little-endian, C order) row by row onto a stream: the header
/// carries the final shape, so the row count must be known up front and exactly that many rows written.
/// </summary>
public sealed class NpyFloat32Writer
{
    readonly Stream _stream;
    readonly byte[] _row;
    long _written;

    public long Rows { get; }
    public int Columns { get; }

    public NpyFloat32Writer(Stream stream, long rows, int columns)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(rows);
        ArgumentOutOfRangeException.ThrowIfNegative(columns);
        _stream = stream;
        Rows = rows;
        Columns = columns;
        _row = new byte[checked(columns * 4)];
        var header = Header(rows, columns);
        stream.Write(header);
    }

    /// <summary>The complete header (magic, version, length, dict padded so the data starts at a multiple of 64 bytes).</summary>
    public static byte[] Header(long rows, int columns)
    {
        var dict = string.Create(CultureInfo.InvariantCulture, $"{{'descr': '<f4', 'fortran_order': False, 'shape': ({rows}, {columns}), }}");
        int total = 10 + dict.Length + 1;
        int padded = (total + 63) / 64 * 64;
        var text = dict + new string(' ', padded - total) + "\n";
        var bytes = new byte[10 + text.Length];
        bytes[0] = 0x93;
        "NUMPY"u8.CopyTo(bytes.AsSpan(1));
        bytes[6] = 1;
        bytes[7] = 0;
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(8), checked((ushort)text.Length));
        Encoding.ASCII.GetBytes(text, bytes.AsSpan(10));
        return bytes;
    }

    public void WriteRow(ReadOnlySpan<float> row)
    {
        if (row.Length != Columns) throw new ArgumentException($"npy row has {row.Length} values; the file's rows have {Columns}");
        if (_written == Rows) throw new InvalidOperationException($"npy file already holds its {Rows} rows");
        for (int i = 0; i < row.Length; i++) BinaryPrimitives.WriteSingleLittleEndian(_row.AsSpan(4 * i), row[i]);
        _stream.Write(_row);
        _written++;
    }

    /// <summary>Checks that every row announced in the header was written.</summary>
    public void Finish()
    {
        if (_written != Rows) throw new InvalidOperationException($"npy file announced {Rows} rows but {_written} were written");
        _stream.Flush();
    }
}
