using System.Buffers.Binary;

namespace BertSharp.Checkpoints;

/// <summary>Decompressor for raw Snappy blocks (the format LevelDB/TF tables use for compressed blocks).</summary>
public static class Snappy
{
    /// <summary>Decompresses one raw Snappy block; <paramref name="what"/> names it in error messages.</summary>
    public static byte[] Decompress(ReadOnlySpan<byte> src, string what = "snappy block")
    {
        var pos = 0;
        ulong len = 0;
        for (var shift = 0; ; shift += 7)
        {
            if (pos >= src.Length || shift > 28) throw new InvalidDataException($"{what}: bad snappy length preamble");
            var b = src[pos++];
            len |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) break;
        }
        if (len > int.MaxValue) throw new InvalidDataException($"{what}: snappy uncompressed length {len} is too large");
        var dst = new byte[len];
        var d = 0;
        while (pos < src.Length)
        {
            var tag = src[pos++];
            int length, offset;
            switch (tag & 3)
            {
                case 0: // literal
                {
                    length = tag >> 2;
                    if (length >= 60)
                    {
                        var n = length - 59;
                        if (pos + n > src.Length) throw new InvalidDataException($"{what}: truncated snappy literal length");
                        long l = 0;
                        for (var i = 0; i < n; i++) l |= (long)src[pos + i] << (8 * i);
                        pos += n;
                        if (l >= int.MaxValue) throw new InvalidDataException($"{what}: bad snappy literal length {l + 1}");
                        length = (int)l;
                    }
                    length += 1;
                    if (length > src.Length - pos) throw new InvalidDataException($"{what}: snappy literal of {length} bytes runs past the input");
                    if (length > dst.Length - d) throw new InvalidDataException($"{what}: snappy output exceeds the declared {len} bytes");
                    src.Slice(pos, length).CopyTo(dst.AsSpan(d));
                    pos += length;
                    d += length;
                    continue;
                }
                case 1:
                    if (pos >= src.Length) throw new InvalidDataException($"{what}: truncated snappy copy");
                    length = 4 + ((tag >> 2) & 7);
                    offset = ((tag >> 5) << 8) | src[pos++];
                    break;
                case 2:
                    if (pos + 2 > src.Length) throw new InvalidDataException($"{what}: truncated snappy copy");
                    length = (tag >> 2) + 1;
                    offset = BinaryPrimitives.ReadUInt16LittleEndian(src[pos..]);
                    pos += 2;
                    break;
                default:
                    if (pos + 4 > src.Length) throw new InvalidDataException($"{what}: truncated snappy copy");
                    length = (tag >> 2) + 1;
                    var off = BinaryPrimitives.ReadUInt32LittleEndian(src[pos..]);
                    if (off > int.MaxValue) throw new InvalidDataException($"{what}: bad snappy copy offset {off}");
                    offset = (int)off;
                    pos += 4;
                    break;
            }
            if (offset == 0 || offset > d) throw new InvalidDataException($"{what}: snappy copy offset {offset} is outside the {d} bytes produced so far");
            if (length > dst.Length - d) throw new InvalidDataException($"{what}: snappy output exceeds the declared {len} bytes");
            // Byte by byte: the source may overlap the destination (run-length style copies).
            for (var i = 0; i < length; i++) dst[d + i] = dst[d - offset + i];
            d += length;
        }
        if (d != dst.Length) throw new InvalidDataException($"{what}: snappy produced {d} bytes, the header declared {len}");
        return dst;
    }
}
