using System.Buffers.Binary;

namespace BertSharp.Checkpoints;

/// <summary>
/// A reflected CRC-32 for any polynomial, table-driven (slicing by 8): the one engine behind zip's CRC-32
/// (<see cref="Zip"/>, ISO-HDLC 0xEDB88320) and TensorFlow's CRC-32C (<see cref="Castagnoli"/>, 0x82F63B78).
/// </summary>
public sealed class Crc32
{
    public static readonly Crc32 Zip = new(0xEDB88320u);
    public static readonly Crc32 Castagnoli = new(0x82F63B78u);

    readonly uint[] _table = new uint[8 * 256];

    Crc32(uint polynomial)
    {
        var t = _table;
        for (uint i = 0; i < 256; i++)
        {
            var c = i;
            for (var k = 0; k < 8; k++) c = (c & 1) != 0 ? (c >> 1) ^ polynomial : c >> 1;
            t[i] = c;
        }
        for (var i = 0; i < 256; i++)
            for (var s = 1; s < 8; s++)
                t[s * 256 + i] = (t[(s - 1) * 256 + i] >> 8) ^ t[t[(s - 1) * 256 + i] & 0xff];
    }

    /// <summary>The CRC of <paramref name="data"/>.</summary>
    public uint Compute(ReadOnlySpan<byte> data) => Extend(0, data);

    /// <summary>Extends a running CRC (as returned by <see cref="Compute"/>) with more bytes.</summary>
    public uint Extend(uint crc, ReadOnlySpan<byte> data)
    {
        var c = ~crc;
        var t = _table;
        while (data.Length >= 8)
        {
            var lo = BinaryPrimitives.ReadUInt32LittleEndian(data) ^ c;
            var hi = BinaryPrimitives.ReadUInt32LittleEndian(data[4..]);
            c = t[7 * 256 + (lo & 0xff)] ^ t[6 * 256 + ((lo >> 8) & 0xff)] ^ t[5 * 256 + ((lo >> 16) & 0xff)] ^ t[4 * 256 + (lo >> 24)]
              ^ t[3 * 256 + (hi & 0xff)] ^ t[2 * 256 + ((hi >> 8) & 0xff)] ^ t[1 * 256 + ((hi >> 16) & 0xff)] ^ t[hi >> 24];
            data = data[8..];
        }
        foreach (var b in data) c = t[(c ^ b) & 0xff] ^ (c >> 8);
        return ~c;
    }
}

/// <summary>CRC-32C (Castagnoli) plus the LevelDB/TF masking of stored checksums.</summary>
public static class Crc32C
{
    const uint MaskDelta = 0xa282ead8u;

    /// <summary>The CRC-32C of <paramref name="data"/>.</summary>
    public static uint Compute(ReadOnlySpan<byte> data) => Crc32.Castagnoli.Compute(data);

    /// <summary>Extends a running CRC-32C (as returned by <see cref="Compute"/>) with more bytes.</summary>
    public static uint Extend(uint crc, ReadOnlySpan<byte> data) => Crc32.Castagnoli.Extend(crc, data);

    /// <summary>The masked form stored by LevelDB and TensorFlow: rotate right by 15 bits and add a constant.</summary>
    public static uint Mask(uint crc) => ((crc >> 15) | (crc << 17)) + MaskDelta;

    /// <summary>Inverse of <see cref="Mask"/>.</summary>
    public static uint Unmask(uint masked)
    {
        var rot = masked - MaskDelta;
        return (rot >> 17) | (rot << 15);
    }
}
