using System.Buffers.Binary;
using System.IO.Compression;

namespace BertSharp.Checkpoints;

/// <summary>
/// Structural checks of a zip archive that <see cref="ZipArchive"/> does not make: the end-of-central-directory
/// record (and its zip64 form) must be self-consistent, the central directory must end exactly where the end records
/// begin, entry names must be unique, and each entry read is verified against its CRC-32.
/// </summary>
internal static class ZipChecks
{
    const uint EocdSignature = 0x06054b50;
    const uint Zip64LocatorSignature = 0x07064b50;
    const uint Zip64EocdSignature = 0x06064b50;
    const int EocdLength = 22;
    const int Zip64LocatorLength = 20;
    const int Zip64EocdFixedLength = 56;

    /// <summary>Largest ratio of uncompressed to compressed size that deflate can produce (about 1032:1).</summary>
    const long MaxDeflateRatio = 1032;

    /// <summary>Validates the end records of the zip archive in <paramref name="fs"/>; throws naming <paramref name="what"/>.</summary>
    public static void ValidateEnd(FileStream fs, string what)
    {
        var length = fs.Length;
        if (length < EocdLength)
            throw new InvalidDataException($"{what}: {length} bytes, too short for the 22-byte zip end-of-central-directory record (truncated?)");
        var tailLength = (int)Math.Min(length, EocdLength + 0xFFFF + Zip64LocatorLength);
        var tail = new byte[tailLength];
        fs.Position = length - tailLength;
        fs.ReadExactly(tail);
        fs.Position = 0;
        var tailStart = length - tailLength;

        // The record whose comment runs exactly to the end of the file.
        var at = -1;
        for (var i = tailLength - EocdLength; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(i)) != EocdSignature) continue;
            var commentLength = BinaryPrimitives.ReadUInt16LittleEndian(tail.AsSpan(i + 20));
            if (i + EocdLength + commentLength == tailLength) { at = i; break; }
        }
        if (at < 0)
            throw new InvalidDataException($"{what}: no zip end-of-central-directory record that ends the file (truncated, or trailing bytes after the archive)");
        var eocdPos = tailStart + at;
        var e = tail.AsSpan(at);
        ulong disk = BinaryPrimitives.ReadUInt16LittleEndian(e[4..]);
        ulong cdDisk = BinaryPrimitives.ReadUInt16LittleEndian(e[6..]);
        ulong entriesOnDisk = BinaryPrimitives.ReadUInt16LittleEndian(e[8..]);
        ulong totalEntries = BinaryPrimitives.ReadUInt16LittleEndian(e[10..]);
        ulong cdSize = BinaryPrimitives.ReadUInt32LittleEndian(e[12..]);
        ulong cdOffset = BinaryPrimitives.ReadUInt32LittleEndian(e[16..]);
        var markers = disk == 0xFFFF || cdDisk == 0xFFFF || entriesOnDisk == 0xFFFF || totalEntries == 0xFFFF
                      || cdSize == 0xFFFFFFFF || cdOffset == 0xFFFFFFFF;

        var locatorAt = at - Zip64LocatorLength;
        var hasLocator = locatorAt >= 0 && BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(locatorAt)) == Zip64LocatorSignature;
        var endOfCentralDirectory = (ulong)eocdPos;
        if (hasLocator)
        {
            var loc = tail.AsSpan(locatorAt);
            var locatorPos = (ulong)(tailStart + locatorAt);
            var zip64Disk = BinaryPrimitives.ReadUInt32LittleEndian(loc[4..]);
            var zip64Pos = BinaryPrimitives.ReadUInt64LittleEndian(loc[8..]);
            var totalDisks = BinaryPrimitives.ReadUInt32LittleEndian(loc[16..]);
            if (zip64Disk != 0 || totalDisks != 1)
                throw new InvalidDataException($"{what}: the zip64 end locator names disk {zip64Disk} of {totalDisks}; expected a single-disk archive (disk 0 of 1)");
            if (zip64Pos > locatorPos || locatorPos - zip64Pos < Zip64EocdFixedLength)
                throw new InvalidDataException($"{what}: the zip64 end locator points to offset {zip64Pos}, expected a 56-byte zip64 end record before the locator at {locatorPos}");
            var rec = new byte[Zip64EocdFixedLength];
            fs.Position = (long)zip64Pos;
            fs.ReadExactly(rec);
            fs.Position = 0;
            if (BinaryPrimitives.ReadUInt32LittleEndian(rec) != Zip64EocdSignature)
                throw new InvalidDataException($"{what}: no zip64 end-of-central-directory record at offset {zip64Pos}, where the zip64 locator points");
            var recordSize = BinaryPrimitives.ReadUInt64LittleEndian(rec.AsSpan(4));
            if (recordSize != locatorPos - zip64Pos - 12)
                throw new InvalidDataException($"{what}: the zip64 end record at {zip64Pos} declares {recordSize} bytes, expected {locatorPos - zip64Pos - 12} (it must end where the locator begins)");
            var d64 = (ulong)BinaryPrimitives.ReadUInt32LittleEndian(rec.AsSpan(16));
            var cd64 = (ulong)BinaryPrimitives.ReadUInt32LittleEndian(rec.AsSpan(20));
            var eod64 = BinaryPrimitives.ReadUInt64LittleEndian(rec.AsSpan(24));
            var tot64 = BinaryPrimitives.ReadUInt64LittleEndian(rec.AsSpan(32));
            var size64 = BinaryPrimitives.ReadUInt64LittleEndian(rec.AsSpan(40));
            var off64 = BinaryPrimitives.ReadUInt64LittleEndian(rec.AsSpan(48));
            Agree(what, "disk number", disk, 0xFFFF, d64);
            Agree(what, "central directory disk", cdDisk, 0xFFFF, cd64);
            Agree(what, "entries on this disk", entriesOnDisk, 0xFFFF, eod64);
            Agree(what, "total entries", totalEntries, 0xFFFF, tot64);
            Agree(what, "central directory size", cdSize, 0xFFFFFFFF, size64);
            Agree(what, "central directory offset", cdOffset, 0xFFFFFFFF, off64);
            (disk, cdDisk, entriesOnDisk, totalEntries, cdSize, cdOffset) = (d64, cd64, eod64, tot64, size64, off64);
            endOfCentralDirectory = zip64Pos;
        }
        else if (markers)
        {
            throw new InvalidDataException(
                $"{what}: the end-of-central-directory record holds zip64 markers (disk {disk}, entries {entriesOnDisk}/{totalEntries}, " +
                $"size {cdSize}, offset {cdOffset}) but no zip64 end locator precedes it; expected real values or a zip64 end record");
        }
        if (disk != 0 || cdDisk != 0)
            throw new InvalidDataException($"{what}: the zip end record names disk {disk} (central directory on disk {cdDisk}); expected a single-disk archive");
        if (entriesOnDisk != totalEntries)
            throw new InvalidDataException($"{what}: the zip end record counts {entriesOnDisk} entries on this disk but {totalEntries} in total; expected the same number");
        if (cdOffset > endOfCentralDirectory || cdSize != endOfCentralDirectory - cdOffset)
            throw new InvalidDataException(
                $"{what}: the zip central directory is declared at offset {cdOffset} with {cdSize} bytes, expected it to end exactly where the end records begin (offset {endOfCentralDirectory})");
        if (totalEntries > cdSize / 46)
            throw new InvalidDataException($"{what}: the zip end record counts {totalEntries} entries, more than a {cdSize}-byte central directory can hold (46 bytes each at least)");
    }

    static void Agree(string what, string field, ulong small, ulong marker, ulong wide)
    {
        if (small != marker && small != wide)
            throw new InvalidDataException($"{what}: the zip end record's {field} is {small} but the zip64 end record says {wide}; expected them to agree");
    }

    /// <summary>Opens the archive's entry list (the central directory is read here), refusing duplicate names.</summary>
    public static IReadOnlyCollection<ZipArchiveEntry> Entries(ZipArchive zip, long fileLength, string what)
    {
        IReadOnlyCollection<ZipArchiveEntry> entries;
        try { entries = zip.Entries; }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"{what}: the zip central directory is corrupt ({ex.Message})", ex);
        }
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var entry in entries)
        {
            if (!names.Add(entry.FullName))
                throw new InvalidDataException($"{what}: the zip archive holds entry '{entry.FullName}' twice, expected unique names");
            if (entry.CompressedLength < 0 || entry.CompressedLength > fileLength)
                throw new InvalidDataException($"{what}: entry '{entry.FullName}' declares {entry.CompressedLength} compressed bytes in a {fileLength}-byte file");
            if (entry.Length < 0 || entry.Length > Math.Max(entry.CompressedLength, entry.CompressedLength * MaxDeflateRatio + 64))
                throw new InvalidDataException($"{what}: entry '{entry.FullName}' declares {entry.Length} bytes from {entry.CompressedLength} compressed bytes, more than any zip method produces");
        }
        return entries;
    }

    /// <summary>
    /// Streams the bytes of <paramref name="entry"/> (exactly its declared length) through <paramref name="readInto"/>
    /// in order, then checks the count and the CRC-32 against the central directory.
    /// </summary>
    public static void Read(ZipArchiveEntry entry, string what, Action<Stream, uint> readInto, Func<uint> crcOfWhatWasRead)
    {
        try
        {
            using var s = entry.Open();
            readInto(s, 0);
            Span<byte> probe = stackalloc byte[1];
            if (s.Read(probe) != 0)
                throw new InvalidDataException($"entry '{entry.FullName}' holds more than the {entry.Length} bytes its header declares");
        }
        catch (Exception ex) when (ex is InvalidDataException or EndOfStreamException or IOException)
        {
            throw new InvalidDataException($"{what}: cannot read entry '{entry.FullName}' (truncated or corrupt archive; expected {entry.Length} bytes): {ex.Message}", ex);
        }
        var crc = crcOfWhatWasRead();
        if (crc != entry.Crc32)
            throw new InvalidDataException($"{what}: entry '{entry.FullName}' fails its CRC-32 check (the zip directory says {entry.Crc32:x8}, the data gives {crc:x8}); the file is corrupt");
    }

    /// <summary>Reads a small entry whole, verifying its length and CRC-32; never allocates more than it reads.</summary>
    public static byte[] ReadAll(ZipArchiveEntry entry, string what, long maxBytes)
    {
        if (entry.Length > maxBytes)
            throw new InvalidDataException($"{what}: entry '{entry.FullName}' declares {entry.Length} bytes, expected at most {maxBytes}");
        var buffer = new MemoryStream();
        uint crc = 0;
        Read(entry, what, (s, _) =>
        {
            var chunk = new byte[81920];
            long total = 0;
            while (total < entry.Length)
            {
                var n = s.Read(chunk, 0, (int)Math.Min(chunk.Length, entry.Length - total));
                if (n == 0) throw new EndOfStreamException($"entry '{entry.FullName}' ends after {total} of its declared {entry.Length} bytes");
                crc = Crc32.Zip.Extend(crc, chunk.AsSpan(0, n));
                buffer.Write(chunk, 0, n);
                total += n;
            }
        }, () => crc);
        return buffer.ToArray();
    }
}
