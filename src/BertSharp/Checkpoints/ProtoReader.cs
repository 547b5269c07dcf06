namespace BertSharp.Checkpoints;

/// <summary>A minimal protobuf wire-format reader (varint, fixed32/64, length-delimited) over a byte span.</summary>
internal ref struct ProtoReader
{
    readonly ReadOnlySpan<byte> _data;
    readonly string _what;
    int _pos;

    public ProtoReader(ReadOnlySpan<byte> data, string what)
    {
        _data = data;
        _what = what;
        _pos = 0;
    }

    public bool End => _pos >= _data.Length;

    /// <summary>Current byte offset.</summary>
    public int Position => _pos;

    /// <summary>The bytes read since <paramref name="position"/> (an earlier <see cref="Position"/>).</summary>
    public ReadOnlySpan<byte> Since(int position) => _data[position.._pos];

    InvalidDataException Error(string m) => new($"{_what}: malformed protobuf: {m} (byte {_pos} of {_data.Length})");

    public ulong ReadVarint()
    {
        ulong v = 0;
        for (var shift = 0; shift < 64; shift += 7)
        {
            if (_pos >= _data.Length) throw Error("truncated varint");
            var b = _data[_pos++];
            v |= (ulong)(b & 0x7f) << shift;
            if ((b & 0x80) == 0) return v;
        }
        throw Error("varint longer than 10 bytes");
    }

    /// <summary>Reads a field tag; returns (field number, wire type).</summary>
    public (int Field, int WireType) ReadTag()
    {
        var tag = ReadVarint();
        var field = tag >> 3;
        if (field == 0 || field > int.MaxValue) throw Error($"invalid field number {field}");
        return ((int)field, (int)(tag & 7));
    }

    public uint ReadFixed32()
    {
        if (_data.Length - _pos < 4) throw Error("truncated fixed32");
        var v = System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(_data[_pos..]);
        _pos += 4;
        return v;
    }

    public ulong ReadFixed64()
    {
        if (_data.Length - _pos < 8) throw Error("truncated fixed64");
        var v = System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(_data[_pos..]);
        _pos += 8;
        return v;
    }

    public ReadOnlySpan<byte> ReadBytes()
    {
        var len = ReadVarint();
        if (len > (ulong)(_data.Length - _pos)) throw Error($"length-delimited field of {len} bytes runs past the end");
        var s = _data.Slice(_pos, (int)len);
        _pos += (int)len;
        return s;
    }

    public void Skip(int wireType)
    {
        switch (wireType)
        {
            case 0: ReadVarint(); break;
            case 1: ReadFixed64(); break;
            case 2: ReadBytes(); break;
            case 5: ReadFixed32(); break;
            default: throw Error($"unsupported wire type {wireType}");
        }
    }

    /// <summary>Throws unless the field has the expected wire type.</summary>
    public void Expect(int field, int wireType, int expected)
    {
        if (wireType != expected) throw Error($"field {field} has wire type {wireType}, expected {expected}");
    }
}
