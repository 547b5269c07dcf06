using System.Buffers.Binary;
using System.Text;
using Microsoft.Win32.SafeHandles;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>TensorFlow <c>DataType</c> enum values (types.proto).</summary>
public enum TfDataType
{
    Invalid = 0, Float = 1, Double = 2, Int32 = 3, UInt8 = 4, Int16 = 5, Int8 = 6, String = 7, Complex64 = 8,
    Int64 = 9, Bool = 10, QInt8 = 11, QUInt8 = 12, QInt32 = 13, BFloat16 = 14, QInt16 = 15, QUInt16 = 16,
    UInt16 = 17, Complex128 = 18, Half = 19, Resource = 20, Variant = 21, UInt32 = 22, UInt64 = 23,
}

/// <summary>One tensor of a TF tensor bundle, as described by its <c>BundleEntryProto</c>.</summary>
/// <param name="MaskedCrc32C">The entry's masked crc32c of the tensor's bytes in the shard.</param>
/// <param name="IsSliced">True when the entry is a partitioned variable (<c>slices</c> set); such tensors cannot be read.</param>
public sealed record TfTensorInfo(string Name, TfDataType DType, long[] Shape, int ShardId, long Offset, long Size, uint MaskedCrc32C, bool IsSliced)
{
    /// <summary>Number of elements (1 for a scalar).</summary>
    public long ElementCount => Shape.Aggregate(1L, (a, b) => a * b);

    /// <summary>The dtype name as TF prints it, e.g. <c>DT_FLOAT</c>.</summary>
    public string DTypeName => TfBundleReader.DTypeName(DType);
}

/// <summary>
/// Reader for TensorFlow tensor-bundle checkpoints (<c>prefix.index</c> + <c>prefix.data-0000N-of-0000M</c>), the
/// format of <c>tf.train.Saver</c> V2 / <c>tf.train.Checkpoint</c> / SavedModel <c>variables/</c>. The index is a
/// LevelDB-style table (block crc32c verified, Snappy-compressed blocks supported); every tensor read is checked
/// against its entry's crc32c.
/// </summary>
public sealed class TfBundleReader : IDisposable
{
    const ulong TableMagic = 0xdb4775248b80fb57UL;
    const int FooterLength = 48;

    readonly Dictionary<string, TfTensorInfo> _byName;
    readonly SafeFileHandle?[] _shards;
    readonly string[] _shardPaths;

    /// <summary>The checkpoint prefix (without <c>.index</c>).</summary>
    public string Prefix { get; }

    /// <summary>Number of data shards declared by the bundle header.</summary>
    public int NumShards { get; }

    /// <summary>All tensors, sorted by name (the index order).</summary>
    public IReadOnlyList<TfTensorInfo> Tensors { get; }

    TfBundleReader(string prefix, int numShards, List<TfTensorInfo> tensors, string[] shardPaths)
    {
        Prefix = prefix;
        NumShards = numShards;
        Tensors = tensors;
        _byName = tensors.ToDictionary(t => t.Name, StringComparer.Ordinal);
        _shardPaths = shardPaths;
        _shards = new SafeFileHandle?[shardPaths.Length];
    }

    /// <summary>The tensor info for <paramref name="name"/>, or null.</summary>
    public TfTensorInfo? Find(string name) => _byName.GetValueOrDefault(name);

    /// <summary>True when the bundle has a tensor called <paramref name="name"/>.</summary>
    public bool Contains(string name) => _byName.ContainsKey(name);

    /// <summary>The index path for a prefix given with or without <c>.index</c>.</summary>
    public static string IndexPath(string prefix) => prefix.EndsWith(".index", StringComparison.Ordinal) ? prefix : prefix + ".index";

    /// <summary>Opens the bundle at <paramref name="prefix"/> (with or without <c>.index</c>) and parses its index.</summary>
    public static TfBundleReader Open(string prefix)
    {
        ArgumentException.ThrowIfNullOrEmpty(prefix);
        var indexPath = IndexPath(prefix);
        prefix = indexPath[..^".index".Length];
        if (!File.Exists(indexPath))
            throw new FileNotFoundException($"TF checkpoint index '{indexPath}' does not exist (expected '<prefix>.index' next to '<prefix>.data-*' shards)", indexPath);
        var file = File.ReadAllBytes(indexPath);
        var (header, tensors) = ParseIndex(file, indexPath);
        if (header.Endianness != 0)
            throw new InvalidDataException($"TF checkpoint index '{indexPath}': big-endian bundles are not supported (header endianness={header.Endianness})");
        if (header.NumShards <= 0)
            throw new InvalidDataException($"TF checkpoint index '{indexPath}': header declares {header.NumShards} data shards");
        var shardPaths = new string[header.NumShards];
        for (var i = 0; i < header.NumShards; i++)
        {
            shardPaths[i] = $"{prefix}.data-{i:D5}-of-{header.NumShards:D5}";
            if (!File.Exists(shardPaths[i]))
                throw new FileNotFoundException($"TF checkpoint '{prefix}': data shard '{shardPaths[i]}' (shard {i} of {header.NumShards}) is missing", shardPaths[i]);
        }
        foreach (var t in tensors)
            if (t.ShardId < 0 || t.ShardId >= header.NumShards)
                throw new InvalidDataException($"TF checkpoint index '{indexPath}': tensor '{t.Name}' is in shard {t.ShardId} but the header declares {header.NumShards} shards");
        return new TfBundleReader(prefix, header.NumShards, tensors, shardPaths);
    }

    /// <summary>Reads a numeric tensor as a CPU tensor of the matching dtype (DT_FLOAT → float32, DT_DOUBLE → float64, …).</summary>
    public Tensor ReadTensor(string name)
    {
        var info = Info(name);
        if (info.DType == TfDataType.String)
            throw new InvalidOperationException($"TF checkpoint '{Prefix}': tensor '{name}' is DT_STRING; read it with ReadStrings");
        var dtype = ToScalarType(info.DType)
            ?? throw new NotSupportedException($"TF checkpoint '{Prefix}': tensor '{name}' has unsupported dtype {info.DTypeName}");
        var expected = TensorMemory.ByteSize(info.Shape, dtype, $"TF checkpoint '{Prefix}', tensor '{name}'");
        if (expected != info.Size)
            throw new InvalidDataException($"TF checkpoint '{Prefix}': tensor '{name}' ({info.DTypeName} [{string.Join(", ", info.Shape)}]) needs {expected} bytes but its entry says {info.Size}");
        var handle = Shard(info);
        uint crc = 0;
        var t = TensorMemory.Create(info.Shape, dtype, (off, dst) =>
        {
            ReadExactly(handle, dst, info.Offset + off, info);
            crc = Crc32C.Extend(crc, dst);
        });
        if (Crc32C.Mask(crc) != info.MaskedCrc32C)
        {
            t.Dispose();
            throw CrcError(info, Crc32C.Mask(crc));
        }
        return t;
    }

    /// <summary>Reads a DT_STRING tensor as its elements' raw bytes (row-major).</summary>
    public byte[][] ReadStrings(string name)
    {
        var info = Info(name);
        if (info.DType != TfDataType.String)
            throw new InvalidOperationException($"TF checkpoint '{Prefix}': tensor '{name}' is {info.DTypeName}, not DT_STRING");
        if (info.Size > int.MaxValue)
            throw new NotSupportedException($"TF checkpoint '{Prefix}': string tensor '{name}' is too large ({info.Size} bytes)");
        var buf = new byte[info.Size];
        ReadExactly(Shard(info), buf, info.Offset, info);
        var where = $"TF checkpoint '{Prefix}', string tensor '{name}'";
        var n = TensorMemory.Numel(info.Shape, where);
        if (n > buf.Length) // every element needs at least a 1-byte length
            throw new InvalidDataException($"{where}: shape [{string.Join(", ", info.Shape)}] has {n} elements but the tensor is only {buf.Length} bytes");
        // Layout: varint64 length per element, uint32 masked crc32c of the lengths, then the bytes. The entry's crc
        // covers each length (as uint32 LE, uint64 if larger), the stored length checksum and the string bytes.
        var lengths = new ulong[n];
        var pos = 0;
        uint crc = 0;
        Span<byte> le = stackalloc byte[8];
        for (long i = 0; i < n; i++)
        {
            lengths[i] = Varint.Read64(buf, ref pos, buf.Length, where);
            if (lengths[i] <= uint.MaxValue)
            {
                BinaryPrimitives.WriteUInt32LittleEndian(le, (uint)lengths[i]);
                crc = Crc32C.Extend(crc, le[..4]);
            }
            else
            {
                BinaryPrimitives.WriteUInt64LittleEndian(le, lengths[i]);
                crc = Crc32C.Extend(crc, le);
            }
        }
        if (buf.Length - pos < 4) throw new InvalidDataException($"{where}: truncated (no length checksum after {n} lengths)");
        var lengthChecksum = BinaryPrimitives.ReadUInt32LittleEndian(buf.AsSpan(pos));
        if (lengthChecksum != Crc32C.Mask(crc))
            throw new InvalidDataException($"{where}: checksum of the element lengths does not match (stored {lengthChecksum:x8}, computed {Crc32C.Mask(crc):x8}); the shard is corrupt");
        crc = Crc32C.Extend(crc, buf.AsSpan(pos, 4));
        pos += 4;
        var result = new byte[n][];
        for (long i = 0; i < n; i++)
        {
            if (lengths[i] > (ulong)(buf.Length - pos))
                throw new InvalidDataException($"{where}: element {i} of {lengths[i]} bytes runs past the tensor's {buf.Length} bytes");
            result[i] = buf.AsSpan(pos, (int)lengths[i]).ToArray();
            crc = Crc32C.Extend(crc, result[i]);
            pos += (int)lengths[i];
        }
        if (pos != buf.Length)
            throw new InvalidDataException($"{where}: {buf.Length - pos} unexpected trailing bytes");
        if (Crc32C.Mask(crc) != info.MaskedCrc32C) throw CrcError(info, Crc32C.Mask(crc));
        return result;
    }

    TfTensorInfo Info(string name)
    {
        ObjectDisposedException.ThrowIf(_disposed, this);
        var info = Find(name) ?? throw new KeyNotFoundException($"TF checkpoint '{Prefix}' has no tensor named '{name}'");
        if (info.IsSliced)
            throw new NotSupportedException($"TF checkpoint '{Prefix}': tensor '{name}' is a partitioned (sliced) variable, which is not supported");
        return info;
    }

    InvalidDataException CrcError(TfTensorInfo info, uint computed) =>
        new($"TF checkpoint '{Prefix}': tensor '{info.Name}' in data shard '{_shardPaths[info.ShardId]}' (offset {info.Offset}, {info.Size} bytes) " +
            $"fails its crc32c check (index says {info.MaskedCrc32C:x8}, data gives {computed:x8}); the shard is corrupt or does not belong to this index");

    SafeFileHandle Shard(TfTensorInfo info)
    {
        var h = _shards[info.ShardId];
        if (h is null)
        {
            var path = _shardPaths[info.ShardId];
            if (!File.Exists(path))
                throw new FileNotFoundException($"TF checkpoint '{Prefix}': data shard '{path}' is missing", path);
            h = _shards[info.ShardId] = File.OpenHandle(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        }
        var length = RandomAccess.GetLength(h);
        if (info.Offset < 0 || info.Size < 0 || info.Offset + info.Size > length)
            throw new InvalidDataException($"TF checkpoint '{Prefix}': tensor '{info.Name}' needs bytes [{info.Offset}, {info.Offset + info.Size}) of data shard '{_shardPaths[info.ShardId]}', which is only {length} bytes (truncated?)");
        return h;
    }

    void ReadExactly(SafeFileHandle h, Span<byte> dst, long offset, TfTensorInfo info)
    {
        while (dst.Length > 0)
        {
            var n = RandomAccess.Read(h, dst, offset);
            if (n <= 0)
                throw new InvalidDataException($"TF checkpoint '{Prefix}': data shard '{_shardPaths[info.ShardId]}' ended while reading tensor '{info.Name}'");
            dst = dst[n..];
            offset += n;
        }
    }

    bool _disposed;

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        foreach (var h in _shards) h?.Dispose();
    }

    /// <summary>The TorchSharp dtype for a TF dtype, or null if unsupported.</summary>
    public static ScalarType? ToScalarType(TfDataType dtype) => dtype switch
    {
        TfDataType.Float => ScalarType.Float32,
        TfDataType.Double => ScalarType.Float64,
        TfDataType.Int32 => ScalarType.Int32,
        TfDataType.Int64 => ScalarType.Int64,
        TfDataType.Half => ScalarType.Float16,
        TfDataType.BFloat16 => ScalarType.BFloat16,
        TfDataType.Int16 => ScalarType.Int16,
        TfDataType.Int8 => ScalarType.Int8,
        TfDataType.UInt8 => ScalarType.Byte,
        TfDataType.Bool => ScalarType.Bool,
        _ => null,
    };

    /// <summary>TF's name for a dtype, e.g. <c>DT_FLOAT</c>.</summary>
    public static string DTypeName(TfDataType dtype) => dtype switch
    {
        TfDataType.Float => "DT_FLOAT",
        TfDataType.Double => "DT_DOUBLE",
        TfDataType.Int32 => "DT_INT32",
        TfDataType.UInt8 => "DT_UINT8",
        TfDataType.Int16 => "DT_INT16",
        TfDataType.Int8 => "DT_INT8",
        TfDataType.String => "DT_STRING",
        TfDataType.Int64 => "DT_INT64",
        TfDataType.Bool => "DT_BOOL",
        TfDataType.BFloat16 => "DT_BFLOAT16",
        TfDataType.Half => "DT_HALF",
        _ => Enum.IsDefined(dtype) ? "DT_" + dtype.ToString().ToUpperInvariant() : $"DT_{(int)dtype}",
    };

    // ---- index parsing ---------------------------------------------------------------------------------------------

    internal sealed record BundleHeader(int NumShards, int Endianness, int Producer);

    internal static (BundleHeader Header, List<TfTensorInfo> Tensors) ParseIndex(byte[] file, string path)
    {
        if (file.Length < FooterLength)
            throw new InvalidDataException($"TF checkpoint index '{path}' is {file.Length} bytes, too short for the {FooterLength}-byte table footer");
        var footer = file.AsSpan(file.Length - FooterLength);
        var magic = BinaryPrimitives.ReadUInt64LittleEndian(footer[40..]);
        if (magic != TableMagic)
            throw new InvalidDataException($"TF checkpoint index '{path}': bad table magic 0x{magic:x16} (expected 0x{TableMagic:x16}); not a TensorFlow tensor-bundle index");
        var fpos = file.Length - FooterLength;
        var limit = file.Length - 8;
        var metaOffset = Varint.Read64(file, ref fpos, limit, $"TF checkpoint index '{path}' footer");
        var metaSize = Varint.Read64(file, ref fpos, limit, $"TF checkpoint index '{path}' footer");
        var indexOffset = Varint.Read64(file, ref fpos, limit, $"TF checkpoint index '{path}' footer");
        var indexSize = Varint.Read64(file, ref fpos, limit, $"TF checkpoint index '{path}' footer");
        _ = ReadBlock(file, metaOffset, metaSize, path, "metaindex");
        var indexBlock = ReadBlock(file, indexOffset, indexSize, path, "index");

        BundleHeader? header = null;
        var tensors = new List<TfTensorInfo>();
        var names = new HashSet<string>(StringComparer.Ordinal);
        foreach (var (_, handle) in BlockEntries(indexBlock, path, "index"))
        {
            var hpos = 0;
            var what = $"TF checkpoint index '{path}' index entry";
            var off = Varint.Read64(handle, ref hpos, handle.Length, what);
            var size = Varint.Read64(handle, ref hpos, handle.Length, what);
            var data = ReadBlock(file, off, size, path, "data");
            foreach (var (key, value) in BlockEntries(data, path, $"data block at {off}"))
            {
                if (key.Length == 0)
                {
                    if (header is not null)
                        throw new InvalidDataException($"TF checkpoint index '{path}': two BundleHeaderProto entries under the empty key, expected one");
                    header = ParseHeader(value, path);
                    continue;
                }
                var name = Encoding.UTF8.GetString(key);
                if (!names.Add(name))
                    throw new InvalidDataException($"TF checkpoint index '{path}': tensor '{name}' has two entries, expected each key once (the index is corrupt)");
                tensors.Add(ParseEntry(name, value, path));
            }
        }
        if (header is null)
            throw new InvalidDataException($"TF checkpoint index '{path}': no BundleHeaderProto under the empty key; not a tensor bundle");
        return (header, tensors);
    }

    static byte[] ReadBlock(byte[] file, ulong offset, ulong size, string path, string which)
    {
        if (offset > (ulong)file.Length || size > (ulong)file.Length || offset + size + 5 > (ulong)file.Length)
            throw new InvalidDataException($"TF checkpoint index '{path}': {which} block (offset {offset}, size {size}) lies beyond the end of the {file.Length}-byte file (truncated?)");
        var o = (int)offset;
        var n = (int)size;
        var type = file[o + n];
        var stored = BinaryPrimitives.ReadUInt32LittleEndian(file.AsSpan(o + n + 1));
        var actual = Crc32C.Extend(Crc32C.Compute(file.AsSpan(o, n)), file.AsSpan(o + n, 1));
        if (Crc32C.Unmask(stored) != actual)
            throw new InvalidDataException($"TF checkpoint index '{path}': {which} block at offset {offset} ({size} bytes) fails its crc32c check (stored {Crc32C.Unmask(stored):x8}, computed {actual:x8}); the index file is corrupt");
        return type switch
        {
            0 => file.AsSpan(o, n).ToArray(),
            1 => Snappy.Decompress(file.AsSpan(o, n), $"TF checkpoint index '{path}' {which} block at offset {offset}"),
            _ => throw new InvalidDataException($"TF checkpoint index '{path}': {which} block at offset {offset} has unknown compression type {type} (0 = none, 1 = snappy)"),
        };
    }

    static List<(byte[] Key, byte[] Value)> BlockEntries(byte[] block, string path, string which)
    {
        var what = $"TF checkpoint index '{path}' {which} block";
        if (block.Length < 4) throw new InvalidDataException($"{what}: {block.Length} bytes, too short for the restart count");
        var numRestarts = BinaryPrimitives.ReadUInt32LittleEndian(block.AsSpan(block.Length - 4));
        var end = block.Length - 4 - 4L * numRestarts;
        if (numRestarts == 0 || end < 0)
            throw new InvalidDataException($"{what}: invalid restart count {numRestarts} for a {block.Length}-byte block");
        var limit = (int)end;
        var list = new List<(byte[], byte[])>();
        var prev = Array.Empty<byte>();
        var pos = 0;
        while (pos < limit)
        {
            var shared = Varint.Read64(block, ref pos, limit, what);
            var nonShared = Varint.Read64(block, ref pos, limit, what);
            var valueLen = Varint.Read64(block, ref pos, limit, what);
            if (shared > (ulong)prev.Length)
                throw new InvalidDataException($"{what}: entry shares {shared} key bytes with a {prev.Length}-byte previous key");
            if (nonShared > (ulong)(limit - pos) || valueLen > (ulong)(limit - pos) - nonShared)
                throw new InvalidDataException($"{what}: entry at byte {pos} (key {nonShared} + value {valueLen} bytes) runs past the entries area ({limit} bytes)");
            var key = new byte[(int)shared + (int)nonShared];
            prev.AsSpan(0, (int)shared).CopyTo(key);
            block.AsSpan(pos, (int)nonShared).CopyTo(key.AsSpan((int)shared));
            pos += (int)nonShared;
            var value = block.AsSpan(pos, (int)valueLen).ToArray();
            pos += (int)valueLen;
            list.Add((key, value));
            prev = key;
        }
        return list;
    }

    static BundleHeader ParseHeader(byte[] value, string path)
    {
        var r = new ProtoReader(value, $"TF checkpoint index '{path}' BundleHeaderProto");
        int numShards = 0, endianness = 0, producer = 0;
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            switch (field)
            {
                case 1: r.Expect(field, wt, 0); numShards = (int)r.ReadVarint(); break;
                case 2: r.Expect(field, wt, 0); endianness = (int)r.ReadVarint(); break;
                case 3:
                {
                    r.Expect(field, wt, 2);
                    var v = new ProtoReader(r.ReadBytes(), $"TF checkpoint index '{path}' VersionDef");
                    while (!v.End)
                    {
                        var (f, w) = v.ReadTag();
                        if (f == 1 && w == 0) producer = (int)v.ReadVarint();
                        else v.Skip(w);
                    }
                    break;
                }
                default: r.Skip(wt); break;
            }
        }
        return new BundleHeader(numShards, endianness, producer);
    }

    static TfTensorInfo ParseEntry(string name, byte[] value, string path)
    {
        var what = $"TF checkpoint index '{path}' BundleEntryProto of '{name}'";
        var r = new ProtoReader(value, what);
        var dtype = TfDataType.Invalid;
        var shape = new List<long>();
        int shard = 0;
        long offset = 0, size = 0;
        uint crc = 0;
        var sliced = false;
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            switch (field)
            {
                case 1: r.Expect(field, wt, 0); dtype = (TfDataType)(int)r.ReadVarint(); break;
                case 2:
                {
                    r.Expect(field, wt, 2);
                    var s = new ProtoReader(r.ReadBytes(), what + " shape");
                    while (!s.End)
                    {
                        var (f, w) = s.ReadTag();
                        if (f == 2 && w == 2)
                        {
                            var d = new ProtoReader(s.ReadBytes(), what + " shape dim");
                            long dim = 0;
                            while (!d.End)
                            {
                                var (df, dw) = d.ReadTag();
                                if (df == 1 && dw == 0) dim = (long)d.ReadVarint();
                                else d.Skip(dw);
                            }
                            if (dim < 0) throw new InvalidDataException($"{what}: negative or unknown dimension {dim}");
                            shape.Add(dim);
                        }
                        else if (f == 3 && w == 0)
                        {
                            if (s.ReadVarint() != 0) throw new InvalidDataException($"{what}: shape has unknown rank");
                        }
                        else s.Skip(w);
                    }
                    break;
                }
                case 3: r.Expect(field, wt, 0); shard = (int)r.ReadVarint(); break;
                case 4: r.Expect(field, wt, 0); offset = (long)r.ReadVarint(); break;
                case 5: r.Expect(field, wt, 0); size = (long)r.ReadVarint(); break;
                case 6: r.Expect(field, wt, 5); crc = r.ReadFixed32(); break;
                case 7: r.Skip(wt); sliced = true; break;
                default: r.Skip(wt); break;
            }
        }
        if (offset < 0 || size < 0) throw new InvalidDataException($"{what}: negative offset {offset} or size {size}");
        return new TfTensorInfo(name, dtype, shape.ToArray(), shard, offset, size, crc, sliced);
    }
}

/// <summary>Base-128 varint decoding over a byte array with an explicit limit.</summary>
internal static class Varint
{
    public static ulong Read64(byte[] data, ref int pos, int limit, string what)
    {
        ulong v = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (pos >= limit) throw new InvalidDataException($"{what}: truncated varint at byte {pos}");
            var b = data[pos++];
            v |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return v;
        }
        throw new InvalidDataException($"{what}: varint longer than 10 bytes at byte {pos}");
    }
}
