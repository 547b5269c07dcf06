using System.Buffers.Binary;
using System.Text;

namespace BertSharp.Export;

/// <summary>
/// A minimal protobuf wire-format writer (varint, fixed32/64, length-delimited), the twin of
/// <see cref="Checkpoints.ProtoReader"/>. Writes straight to a stream; nested messages are <see cref="ProtoMessage"/>s
/// whose sizes are known before they are written, so large payloads are never buffered twice.
/// </summary>
internal sealed class ProtoWriter(Stream stream)
{
    readonly Stream _s = stream;
    readonly byte[] _buf = new byte[10];

    public const int Varint = 0, Fixed64 = 1, LengthDelimited = 2, Fixed32 = 5;

    public static int VarintSize(ulong v)
    {
        var n = 1;
        while (v >= 0x80) { v >>= 7; n++; }
        return n;
    }

    public static int TagSize(int field) => VarintSize((ulong)field << 3);

    public void WriteVarint(ulong v)
    {
        var n = 0;
        while (v >= 0x80)
        {
            _buf[n++] = (byte)(v | 0x80);
            v >>= 7;
        }
        _buf[n++] = (byte)v;
        _s.Write(_buf, 0, n);
    }

    public void WriteTag(int field, int wireType)
    {
        if (field <= 0 || field > (1 << 29) - 1) throw new ArgumentOutOfRangeException(nameof(field), $"invalid protobuf field number {field}");
        WriteVarint(((ulong)field << 3) | (uint)wireType);
    }

    public void WriteFixed32(uint v)
    {
        BinaryPrimitives.WriteUInt32LittleEndian(_buf, v);
        _s.Write(_buf, 0, 4);
    }

    public void WriteFixed64(ulong v)
    {
        BinaryPrimitives.WriteUInt64LittleEndian(_buf, v);
        _s.Write(_buf, 0, 8);
    }

    public void WriteRaw(ReadOnlySpan<byte> bytes) => _s.Write(bytes);
}

/// <summary>
/// A protobuf message under construction: an ordered list of fields. Its encoded size is computed (and cached) before
/// writing, so a parent can write the length prefix and then stream the body. Payloads can be supplied lazily
/// (<see cref="LazyBytes"/>) so that tensor data is copied from its source only once, at write time.
/// </summary>
internal sealed class ProtoMessage
{
    abstract record Field(int Number)
    {
        public abstract long Size { get; }
        public abstract void Write(ProtoWriter w);
    }

    sealed record VarintField(int Number, ulong Value) : Field(Number)
    {
        public override long Size => ProtoWriter.TagSize(Number) + ProtoWriter.VarintSize(Value);
        public override void Write(ProtoWriter w) { w.WriteTag(Number, ProtoWriter.Varint); w.WriteVarint(Value); }
    }

    sealed record Fixed32Field(int Number, uint Value) : Field(Number)
    {
        public override long Size => ProtoWriter.TagSize(Number) + 4;
        public override void Write(ProtoWriter w) { w.WriteTag(Number, ProtoWriter.Fixed32); w.WriteFixed32(Value); }
    }

    sealed record BytesField(int Number, byte[] Value) : Field(Number)
    {
        public override long Size => ProtoWriter.TagSize(Number) + ProtoWriter.VarintSize((ulong)Value.Length) + Value.Length;
        public override void Write(ProtoWriter w) { w.WriteTag(Number, ProtoWriter.LengthDelimited); w.WriteVarint((ulong)Value.Length); w.WriteRaw(Value); }
    }

    sealed record LazyBytesField(int Number, long Length, Action<Stream> Writer) : Field(Number)
    {
        public override long Size => ProtoWriter.TagSize(Number) + ProtoWriter.VarintSize((ulong)Length) + Length;
        public override void Write(ProtoWriter w)
        {
            w.WriteTag(Number, ProtoWriter.LengthDelimited);
            w.WriteVarint((ulong)Length);
            var counting = new CountingStream(w);
            Writer(counting);
            if (counting.Count != Length)
                throw new InvalidOperationException($"internal: protobuf field {Number} promised {Length} bytes but wrote {counting.Count}");
        }
    }

    sealed record MessageField(int Number, ProtoMessage Value) : Field(Number)
    {
        public override long Size => ProtoWriter.TagSize(Number) + ProtoWriter.VarintSize((ulong)Value.Size) + Value.Size;
        public override void Write(ProtoWriter w) { w.WriteTag(Number, ProtoWriter.LengthDelimited); w.WriteVarint((ulong)Value.Size); Value.WriteBody(w); }
    }

    readonly List<Field> _fields = [];
    long _size = -1;

    ProtoMessage Add(Field f)
    {
        _fields.Add(f);
        _size = -1;
        return this;
    }

    /// <summary>int32/int64/uint64/enum/bool field (negative values take 10 bytes, as protobuf requires).</summary>
    public ProtoMessage Int(int field, long value) => Add(new VarintField(field, unchecked((ulong)value)));

    public ProtoMessage Float(int field, float value) => Add(new Fixed32Field(field, BitConverter.SingleToUInt32Bits(value)));

    public ProtoMessage String(int field, string value) => Add(new BytesField(field, Encoding.UTF8.GetBytes(value)));

    public ProtoMessage Bytes(int field, byte[] value) => Add(new BytesField(field, value));

    /// <summary>A length-delimited field of <paramref name="length"/> bytes that <paramref name="writer"/> streams at write time.</summary>
    public ProtoMessage LazyBytes(int field, long length, Action<Stream> writer) => Add(new LazyBytesField(field, length, writer));

    public ProtoMessage Message(int field, ProtoMessage value) => Add(new MessageField(field, value));

    /// <summary>A packed repeated varint field (proto3 default for repeated scalars).</summary>
    public ProtoMessage PackedInts(int field, IEnumerable<long> values)
    {
        using var ms = new MemoryStream();
        var w = new ProtoWriter(ms);
        foreach (var v in values) w.WriteVarint(unchecked((ulong)v));
        return ms.Length == 0 ? this : Bytes(field, ms.ToArray());
    }

    /// <summary>A packed repeated float field.</summary>
    public ProtoMessage PackedFloats(int field, IEnumerable<float> values)
    {
        var bytes = values.SelectMany(v => BitConverter.GetBytes(v)).ToArray();
        return bytes.Length == 0 ? this : Bytes(field, bytes);
    }

    /// <summary>Encoded size of the body (without tag or length prefix).</summary>
    public long Size
    {
        get
        {
            if (_size < 0)
            {
                long s = 0;
                foreach (var f in _fields) s += f.Size;
                _size = s;
            }
            return _size;
        }
    }

    public void WriteBody(ProtoWriter w)
    {
        foreach (var f in _fields) f.Write(w);
    }

    /// <summary>Writes this message as a top-level protobuf (no length prefix) to <paramref name="stream"/>.</summary>
    public void WriteTo(Stream stream) => WriteBody(new ProtoWriter(stream));

    public byte[] ToArray()
    {
        using var ms = new MemoryStream();
        WriteTo(ms);
        return ms.ToArray();
    }

    /// <summary>Forwards writes to a <see cref="ProtoWriter"/> and counts them.</summary>
    sealed class CountingStream(ProtoWriter w) : Stream
    {
        public long Count { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => Count;
        public override long Position { get => Count; set => throw new NotSupportedException(); }
        public override void Flush() { }
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));
        public override void Write(ReadOnlySpan<byte> buffer)
        {
            w.WriteRaw(buffer);
            Count += buffer.Length;
        }
    }
}
