using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>Creating CPU tensors from raw little-endian bytes and reading their bytes back, in bounded chunks.</summary>
internal static class TensorMemory
{
    /// <summary>Largest span handed to a callback at once (tests lower it to exercise the chunked path).</summary>
    internal static int ChunkBytes = 1 << 30;

    public static long ElementSize(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 or ScalarType.Int32 => 4,
        ScalarType.Float64 or ScalarType.Int64 => 8,
        ScalarType.Float16 or ScalarType.BFloat16 or ScalarType.Int16 => 2,
        ScalarType.Int8 or ScalarType.Byte or ScalarType.Bool => 1,
        _ => throw new NotSupportedException($"tensor dtype {dtype} is not supported by the checkpoint readers"),
    };

    /// <summary>Number of elements of <paramref name="shape"/>; throws on negative dims or overflow.</summary>
    public static long Numel(IReadOnlyList<long> shape, string what)
    {
        long n = 1;
        foreach (var d in shape)
        {
            if (d < 0) throw new InvalidDataException($"{what}: negative dimension {d} in shape [{string.Join(", ", shape)}]");
            try { n = checked(n * d); }
            catch (OverflowException) { throw new InvalidDataException($"{what}: shape [{string.Join(", ", shape)}] has too many elements"); }
        }
        return n;
    }

    static void EnsureLittleEndian()
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("checkpoint readers assume a little-endian host");
    }

    /// <summary>
    /// A new contiguous CPU tensor of <paramref name="shape"/>/<paramref name="dtype"/> whose bytes are produced by
    /// <paramref name="fill"/>(byteOffset, destination) chunk by chunk.
    /// </summary>
    public static Tensor Create(long[] shape, ScalarType dtype, Action<long, Span<byte>> fill)
    {
        EnsureLittleEndian();
        var t = torch.empty(shape, dtype);
        try
        {
            ForEachChunk(t, fill);
            return t;
        }
        catch
        {
            t.Dispose();
            throw;
        }
    }

    /// <summary>A new tensor holding a copy of <paramref name="src"/>.</summary>
    public static Tensor FromBytes(ReadOnlySpan<byte> src, long[] shape, ScalarType dtype)
    {
        EnsureLittleEndian();
        var t = torch.empty(shape, dtype);
        var dst = t.numel() == 0 ? Span<byte>.Empty : t.bytes;
        if (dst.Length != src.Length)
        {
            t.Dispose();
            throw new InvalidDataException($"internal: {src.Length} bytes for a {dtype} tensor of shape [{string.Join(", ", shape)}] ({dst.Length} bytes)");
        }
        src.CopyTo(dst);
        return t;
    }

    /// <summary>Unsafe copy from native memory (e.g. a memory-mapped view) into a new tensor.</summary>
    public static unsafe Tensor FromPointer(byte* src, long byteLength, long[] shape, ScalarType dtype)
    {
        var expected = Numel(shape, "tensor") * ElementSize(dtype);
        if (expected != byteLength)
            throw new InvalidDataException($"internal: {byteLength} bytes for a {dtype} tensor of shape [{string.Join(", ", shape)}] ({expected} bytes)");
        return Create(shape, dtype, (off, dst) => new ReadOnlySpan<byte>(src + off, dst.Length).CopyTo(dst));
    }

    /// <summary>
    /// Calls <paramref name="action"/>(byteOffset, bytes) over the bytes of contiguous CPU tensor
    /// <paramref name="t"/> in chunks of at most <see cref="ChunkBytes"/> (whole elements).
    /// </summary>
    public static void ForEachChunk(Tensor t, Action<long, Span<byte>> action)
    {
        if (t.device_type != DeviceType.CPU || !t.is_contiguous())
            throw new ArgumentException("internal: expected a contiguous CPU tensor");
        var numel = t.numel();
        if (numel == 0) return;
        var esize = t.element_size();
        var total = numel * esize;
        if (total <= ChunkBytes)
        {
            action(0, t.bytes);
            return;
        }
        using var flat = t.view(-1);
        var perChunk = Math.Max(1, ChunkBytes / esize);
        for (long start = 0; start < numel; start += perChunk)
        {
            var n = Math.Min(perChunk, numel - start);
            using var part = flat.narrow(0, start, n);
            action(start * esize, part.bytes);
        }
    }
}
