using System.Buffers.Binary;
using System.Globalization;
using System.Text;
using System.Text.RegularExpressions;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>An array read from a NumPy <c>.npy</c> file (C order, little-endian).</summary>
public sealed class NpyArray
{
    /// <summary>The NumPy dtype descriptor, e.g. <c>&lt;f4</c>.</summary>
    public string Descr { get; }

    /// <summary>The array shape (empty for a scalar).</summary>
    public long[] Shape { get; }

    /// <summary>The raw little-endian element bytes.</summary>
    public byte[] Data { get; }

    /// <summary>Number of elements.</summary>
    public long Count => Shape.Aggregate(1L, (a, b) => a * b);

    internal NpyArray(string descr, long[] shape, byte[] data)
    {
        Descr = descr;
        Shape = shape;
        Data = data;
    }

    /// <summary>The elements converted to float32.</summary>
    public float[] ToFloat()
    {
        var n = checked((int)Count);
        var r = new float[n];
        var s = Data.AsSpan();
        switch (Descr)
        {
            case "<f4": for (var i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadSingleLittleEndian(s[(4 * i)..]); break;
            case "<f8": for (var i = 0; i < n; i++) r[i] = (float)BinaryPrimitives.ReadDoubleLittleEndian(s[(8 * i)..]); break;
            case "<f2": for (var i = 0; i < n; i++) r[i] = (float)BinaryPrimitives.ReadHalfLittleEndian(s[(2 * i)..]); break;
            default: { var l = ToInt64(); for (var i = 0; i < n; i++) r[i] = l[i]; break; }
        }
        return r;
    }

    /// <summary>The elements converted to float64.</summary>
    public double[] ToDouble()
    {
        if (Descr != "<f8") return ToFloat().Select(f => (double)f).ToArray();
        var n = checked((int)Count);
        var r = new double[n];
        for (var i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadDoubleLittleEndian(Data.AsSpan(8 * i));
        return r;
    }

    /// <summary>The elements as int64 (integer and bool arrays only).</summary>
    public long[] ToInt64()
    {
        var n = checked((int)Count);
        var r = new long[n];
        var s = Data.AsSpan();
        switch (Descr)
        {
            case "<i8": for (var i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadInt64LittleEndian(s[(8 * i)..]); break;
            case "<i4": for (var i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadInt32LittleEndian(s[(4 * i)..]); break;
            case "<i2": for (var i = 0; i < n; i++) r[i] = BinaryPrimitives.ReadInt16LittleEndian(s[(2 * i)..]); break;
            case "|i1": for (var i = 0; i < n; i++) r[i] = (sbyte)s[i]; break;
            case "|u1" or "|b1": for (var i = 0; i < n; i++) r[i] = s[i]; break;
            default: throw new InvalidOperationException($"npy array of dtype '{Descr}' cannot be read as int64");
        }
        return r;
    }

    /// <summary>A CPU tensor of the matching dtype and shape.</summary>
    public Tensor ToTensor() => TensorMemory.FromBytes(Data, Shape, Npy.ToScalarType(Descr));
}

/// <summary>Reader for NumPy <c>.npy</c> files (format versions 1–3, little-endian, C order).</summary>
public static partial class Npy
{
    static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    [GeneratedRegex(@"'descr'\s*:\s*'([^']*)'")]
    private static partial Regex DescrRx();

    [GeneratedRegex(@"'fortran_order'\s*:\s*(True|False)")]
    private static partial Regex FortranRx();

    [GeneratedRegex(@"'shape'\s*:\s*\(([^)]*)\)")]
    private static partial Regex ShapeRx();

    internal static ScalarType ToScalarType(string descr) => descr switch
    {
        "<f4" => ScalarType.Float32,
        "<f8" => ScalarType.Float64,
        "<f2" => ScalarType.Float16,
        "<i8" => ScalarType.Int64,
        "<i4" => ScalarType.Int32,
        "<i2" => ScalarType.Int16,
        "|i1" => ScalarType.Int8,
        "|u1" => ScalarType.Byte,
        "|b1" => ScalarType.Bool,
        _ => throw new NotSupportedException($"npy dtype '{descr}' is not supported"),
    };

    /// <summary>Reads <paramref name="path"/>.</summary>
    public static NpyArray Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"npy file '{path}' does not exist", path);
        var bytes = File.ReadAllBytes(path);
        if (bytes.Length < 10 || !bytes.AsSpan(0, 6).SequenceEqual(Magic))
            throw new InvalidDataException($"npy file '{path}': missing the \\x93NUMPY magic; not a .npy file");
        var major = bytes[6];
        int headerLen, start;
        switch (major)
        {
            case 1: headerLen = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(8)); start = 10; break;
            case 2 or 3:
                if (bytes.Length < 12) throw new InvalidDataException($"npy file '{path}': truncated header");
                var hl = BinaryPrimitives.ReadUInt32LittleEndian(bytes.AsSpan(8));
                if (hl > int.MaxValue) throw new InvalidDataException($"npy file '{path}': header length {hl} too large");
                headerLen = (int)hl;
                start = 12;
                break;
            default: throw new InvalidDataException($"npy file '{path}': unsupported format version {major}.{bytes[7]}");
        }
        if (headerLen > bytes.Length - start)
            throw new InvalidDataException($"npy file '{path}': header length {headerLen} runs past the end of the {bytes.Length}-byte file");
        var header = (major == 3 ? Encoding.UTF8 : Encoding.Latin1).GetString(bytes, start, headerLen);
        var d = DescrRx().Match(header);
        var f = FortranRx().Match(header);
        var s = ShapeRx().Match(header);
        if (!d.Success || !f.Success || !s.Success)
            throw new InvalidDataException($"npy file '{path}': cannot parse header {header.Trim()}");
        if (f.Groups[1].Value == "True")
            throw new NotSupportedException($"npy file '{path}': Fortran-order arrays are not supported");
        var descr = d.Groups[1].Value;
        var dtype = ToScalarType(descr);
        var shape = s.Groups[1].Value.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)
            .Select(x => long.TryParse(x, NumberStyles.None, CultureInfo.InvariantCulture, out var v) ? v
                : throw new InvalidDataException($"npy file '{path}': bad shape entry '{x}'"))
            .ToArray();
        var dataStart = start + headerLen;
        var expected = TensorMemory.Numel(shape, $"npy file '{path}'") * TensorMemory.ElementSize(dtype);
        if (bytes.Length - dataStart != expected)
            throw new InvalidDataException($"npy file '{path}': {descr} shape ({string.Join(", ", shape)}) needs {expected} data bytes, found {bytes.Length - dataStart}");
        return new NpyArray(descr, shape, bytes.AsSpan(dataStart).ToArray());
    }
}
