using System.Buffers.Binary;
using System.Runtime.InteropServices;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>ONNX <c>TensorProto.DataType</c> values (onnx.proto).</summary>
public enum OnnxDataType
{
    Undefined = 0, Float = 1, UInt8 = 2, Int8 = 3, UInt16 = 4, Int16 = 5, Int32 = 6, Int64 = 7, String = 8, Bool = 9,
    Float16 = 10, Double = 11, UInt32 = 12, UInt64 = 13, Complex64 = 14, Complex128 = 15, BFloat16 = 16,
}

/// <summary>
/// One ONNX tensor (an initializer or a Constant node's value): its name, dims, type and where its data lies —
/// slices of the model file for <c>raw_data</c> and the typed fields (decoded lazily, so parsing allocates nothing
/// beyond the file), or an external-data reference.
/// </summary>
public sealed class OnnxTensor
{
    public required string Name { get; init; }
    public required long[] Dims { get; init; }
    public required OnnxDataType DataType { get; init; }
    internal ReadOnlyMemory<byte>? Raw { get; init; }
    /// <summary>Encoded values of float_data (fixed32), int32_data (varint), int64_data (varint), double_data (fixed64), uint64_data (varint).</summary>
    internal List<ReadOnlyMemory<byte>> Fixed32 { get; } = [];
    internal List<ReadOnlyMemory<byte>> Varints { get; } = [];
    internal List<ReadOnlyMemory<byte>> Fixed64 { get; } = [];
    internal string? ExternalLocation { get; init; }
    internal long ExternalOffset { get; init; }
    internal long? ExternalLength { get; init; }
    internal bool IsExternal { get; init; }
    /// <summary>Where errors point (file and tensor).</summary>
    public required string Source { get; init; }
    public required string BaseDirectory { get; init; }

    public long Numel => TensorMemory.Numel(Dims, $"{Source}: tensor '{Name}'");
    public bool IsFloatingPoint => DataType is OnnxDataType.Float or OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Double;
    public bool IsInteger => DataType is OnnxDataType.Int8 or OnnxDataType.UInt8 or OnnxDataType.Int16 or OnnxDataType.UInt16
        or OnnxDataType.Int32 or OnnxDataType.Int64 or OnnxDataType.UInt32 or OnnxDataType.UInt64 or OnnxDataType.Bool;

    InvalidDataException Error(string what) => new($"{Source}: tensor '{Name}' ({DataType}, dims [{string.Join(", ", Dims)}]): {what}");

    static int ElementBytes(OnnxDataType t) => t switch
    {
        OnnxDataType.Float or OnnxDataType.Int32 or OnnxDataType.UInt32 => 4,
        OnnxDataType.Double or OnnxDataType.Int64 or OnnxDataType.UInt64 => 8,
        OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Int16 or OnnxDataType.UInt16 => 2,
        OnnxDataType.Int8 or OnnxDataType.UInt8 or OnnxDataType.Bool => 1,
        _ => 0,
    };

    /// <summary>Size in bytes of the little-endian raw form; throws on an unsupported type or an overflowing shape.</summary>
    long RawByteSize()
    {
        var e = ElementBytes(DataType);
        if (e == 0) throw Error("BertSharp does not read this data type");
        try { return checked(Numel * e); }
        catch (OverflowException) { throw Error("the shape is too large"); }
    }

    static int CountVarints(ReadOnlySpan<byte> s)
    {
        var n = 0;
        foreach (var b in s) if ((b & 0x80) == 0) n++;
        return n;
    }

    /// <summary>The tensor as float32 (float16, bfloat16 and double converted), or int64 for integer types.</summary>
    public Tensor ToTensor()
    {
        var numel = Numel;
        var shape = (long[])Dims.Clone();
        if (IsExternal) return ReadExternal(shape);
        if (Raw is { } raw)
        {
            if (raw.Length != RawByteSize()) throw Error($"raw_data holds {raw.Length} bytes, the dims need {RawByteSize()}");
            return FromRaw(raw.Span, shape);
        }
        // Typed fields.
        switch (DataType)
        {
            case OnnxDataType.Float:
            {
                var bytes = Fixed32.Sum(m => (long)m.Length);
                if (bytes % 4 != 0 || bytes / 4 != numel) throw Error($"float_data holds {bytes / 4} values, the dims need {numel}");
                var t = torch.empty(shape, ScalarType.Float32);
                var dst = numel == 0 ? Span<byte>.Empty : t.bytes;
                var at = 0;
                foreach (var m in Fixed32) { m.Span.CopyTo(dst[at..]); at += m.Length; }
                return t;
            }
            case OnnxDataType.Double:
            {
                var bytes = Fixed64.Sum(m => (long)m.Length);
                if (bytes % 8 != 0 || bytes / 8 != numel) throw Error($"double_data holds {bytes / 8} values, the dims need {numel}");
                var vals = new float[numel];
                var i = 0;
                foreach (var m in Fixed64)
                    for (var o = 0; o < m.Length; o += 8)
                        vals[i++] = (float)BitConverter.Int64BitsToDouble(BinaryPrimitives.ReadInt64LittleEndian(m.Span[o..]));
                return torch.tensor(vals, shape);
            }
            default:
            {
                if (!IsInteger && DataType is not (OnnxDataType.Float16 or OnnxDataType.BFloat16))
                    throw Error("BertSharp does not read this data type");
                var count = Varints.Sum(m => (long)CountVarints(m.Span));
                if (count != numel) throw Error($"the typed data field holds {count} values, the dims need {numel}");
                var vals = new long[numel];
                var i = 0;
                foreach (var m in Varints)
                {
                    var r = new ProtoReader(m.Span, $"{Source}: tensor '{Name}' data");
                    while (!r.End) vals[i++] = (long)r.ReadVarint();
                }
                if (DataType is OnnxDataType.Float16 or OnnxDataType.BFloat16)
                {
                    var f = new float[numel];
                    for (var k = 0; k < numel; k++) f[k] = HalfBits((ushort)vals[k]);
                    return torch.tensor(f, shape);
                }
                if (DataType == OnnxDataType.Int32) for (var k = 0; k < numel; k++) vals[k] = (int)vals[k];
                return torch.tensor(vals, shape);
            }
        }
    }

    float HalfBits(ushort bits) => DataType == OnnxDataType.BFloat16
        ? BitConverter.Int32BitsToSingle(bits << 16)
        : (float)BitConverter.UInt16BitsToHalf(bits);

    /// <summary>Raw little-endian data as a tensor: floats widened to float32, integers and bools to int64.</summary>
    Tensor FromRaw(ReadOnlySpan<byte> raw, long[] shape)
    {
        var (stored, target) = DataType switch
        {
            OnnxDataType.Float => (ScalarType.Float32, ScalarType.Float32),
            OnnxDataType.Float16 => (ScalarType.Float16, ScalarType.Float32),
            OnnxDataType.BFloat16 => (ScalarType.BFloat16, ScalarType.Float32),
            OnnxDataType.Double => (ScalarType.Float64, ScalarType.Float32),
            OnnxDataType.Int64 => (ScalarType.Int64, ScalarType.Int64),
            OnnxDataType.Int32 => (ScalarType.Int32, ScalarType.Int64),
            OnnxDataType.Int16 => (ScalarType.Int16, ScalarType.Int64),
            OnnxDataType.Int8 => (ScalarType.Int8, ScalarType.Int64),
            OnnxDataType.UInt8 or OnnxDataType.Bool => (ScalarType.Byte, ScalarType.Int64),
            _ => throw Error("BertSharp does not read this data type"),
        };
        var t = TensorMemory.FromBytes(raw, shape, stored);
        if (stored == target) return t;
        using (t) return t.to(target);
    }

    Tensor ReadExternal(long[] shape)
    {
        var size = RawByteSize();
        if (ExternalLocation is null) throw Error("external data without a 'location' entry");
        if (ExternalLength is { } len && len != size) throw Error($"external data 'length' is {len} bytes, the dims need {size}");
        if (ExternalOffset < 0) throw Error($"external data 'offset' {ExternalOffset} is negative");
        var baseDir = Path.GetFullPath(BaseDirectory);
        var full = Path.GetFullPath(Path.Combine(baseDir, ExternalLocation));
        var rel = Path.GetRelativePath(baseDir, full);
        if (Path.IsPathRooted(ExternalLocation) || rel == ".." || rel.StartsWith(".." + Path.DirectorySeparatorChar, StringComparison.Ordinal) || Path.IsPathRooted(rel))
            throw Error($"external data location '{ExternalLocation}' is outside the model's directory");
        if (!File.Exists(full)) throw Error($"external data file '{full}' does not exist");
        using var fs = new FileStream(full, FileMode.Open, FileAccess.Read, FileShare.Read);
        if (ExternalOffset > fs.Length || size > fs.Length - ExternalOffset)
            throw Error($"external data [{ExternalOffset}, +{size}) runs past the end of '{full}' ({fs.Length} bytes)");
        var dtype = DataType switch
        {
            OnnxDataType.Float => ScalarType.Float32,
            OnnxDataType.Float16 => ScalarType.Float16,
            OnnxDataType.BFloat16 => ScalarType.BFloat16,
            OnnxDataType.Double => ScalarType.Float64,
            OnnxDataType.Int64 => ScalarType.Int64,
            OnnxDataType.Int32 => ScalarType.Int32,
            _ => throw Error("BertSharp does not read this data type from external data"),
        };
        fs.Position = ExternalOffset;
        var t = TensorMemory.Create(shape, dtype, (_, dst) => fs.ReadExactly(dst));
        if (dtype is ScalarType.Float32 or ScalarType.Int64) return t;
        using (t) return t.to(IsFloatingPoint ? ScalarType.Float32 : ScalarType.Int64);
    }

    /// <summary>Integer values (for shape constants and the like); null unless an integer tensor of at most <paramref name="max"/> elements.</summary>
    public long[]? ReadInt64s(int max = 64)
    {
        if (!IsInteger || IsExternal || Dims.Length > 1 || Numel > max) return null;
        using var t = ToTensor();
        return t.data<long>().ToArray();
    }

    /// <summary>The value of a floating-point scalar (or one-element) constant; null otherwise.</summary>
    public double? ReadScalar()
    {
        if (!IsFloatingPoint || IsExternal || Numel != 1) return null;
        using var t = ToTensor();
        return t.item<float>();
    }
}

/// <summary>An ONNX attribute (the kinds BertSharp reads: float, int, string, tensor, ints, floats).</summary>
public sealed class OnnxAttribute
{
    public required string Name { get; init; }
    public float? F { get; init; }
    public long? I { get; init; }
    public string? S { get; init; }
    public OnnxTensor? T { get; init; }
    public IReadOnlyList<long> Ints { get; init; } = [];
    public IReadOnlyList<float> Floats { get; init; } = [];
    public bool HasSubgraph { get; init; }
}

/// <summary>An ONNX node: op type, domain, input and output value names, attributes.</summary>
public sealed class OnnxNode
{
    public required string Name { get; init; }
    public required string OpType { get; init; }
    public required string Domain { get; init; }
    public required IReadOnlyList<string> Inputs { get; init; }
    public required IReadOnlyList<string> Outputs { get; init; }
    public required IReadOnlyList<OnnxAttribute> Attributes { get; init; }

    public OnnxAttribute? Attr(string name) => Attributes.FirstOrDefault(a => a.Name == name);
    public override string ToString() => $"{OpType}({string.Join(", ", Inputs)}) -> {string.Join(", ", Outputs)}";
}

/// <summary>
/// The parts of an ONNX <c>ModelProto</c> BertSharp uses: opsets, producer, the main graph's nodes, initializers and
/// input/output names. Field numbers follow onnx.proto; read with <see cref="ProtoReader"/>. The file is read once
/// into memory (protobuf files are under 2 GB; larger models keep their tensors in external data files, read on
/// demand); tensor data stays as slices of that buffer until <see cref="OnnxTensor.ToTensor"/>.
/// </summary>
public sealed class OnnxModel
{
    public string Path { get; }
    public long IrVersion { get; private set; }
    public string Producer { get; private set; } = "";
    public string ProducerVersion { get; private set; } = "";
    public Dictionary<string, long> Opsets { get; } = new(StringComparer.Ordinal);
    public List<OnnxNode> Nodes { get; } = [];
    public Dictionary<string, OnnxTensor> Initializers { get; } = new(StringComparer.Ordinal);
    public List<string> Inputs { get; } = [];
    public List<string> Outputs { get; } = [];

    readonly byte[] _bytes;
    readonly string _dir;

    OnnxModel(string path, byte[] bytes)
    {
        Path = path;
        _bytes = bytes;
        _dir = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(path)) ?? ".";
    }

    /// <summary>Parses <paramref name="path"/>; every structural problem is an <see cref="InvalidDataException"/> naming the file.</summary>
    public static OnnxModel Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"ONNX file '{path}' does not exist", path);
        var len = new FileInfo(path).Length;
        if (len > Array.MaxLength) throw new InvalidDataException($"{path}: {len} bytes is larger than any valid ONNX protobuf (2 GB limit; big models keep weights in external data)");
        return Parse(File.ReadAllBytes(path), path);
    }

    /// <summary>Parses an in-memory ModelProto (<paramref name="path"/> names it in errors and anchors external data).</summary>
    public static OnnxModel Parse(byte[] bytes, string path)
    {
        var m = new OnnxModel(path, bytes);
        m.ParseModel();
        return m;
    }

    string Str(ReadOnlySpan<byte> s, string what)
    {
        try { return new UTF8Encoding(false, true).GetString(s); }
        catch (DecoderFallbackException) { throw new InvalidDataException($"{Path}: {what} is not valid UTF-8"); }
    }

    /// <summary>The slice of the file buffer that <paramref name="span"/> (a slice of it) covers.</summary>
    ReadOnlyMemory<byte> Slice(ReadOnlySpan<byte> span)
    {
        if (span.IsEmpty) return ReadOnlyMemory<byte>.Empty;
        var off = (int)System.Runtime.CompilerServices.Unsafe.ByteOffset(ref MemoryMarshal.GetArrayDataReference(_bytes), ref MemoryMarshal.GetReference(span));
        return new ReadOnlyMemory<byte>(_bytes, off, span.Length);
    }

    void ParseModel()
    {
        var r = new ProtoReader(_bytes, $"{Path}: ModelProto");
        var sawGraph = false;
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            switch (f)
            {
                case 1: r.Expect(f, w, 0); IrVersion = (long)r.ReadVarint(); break;
                case 2: r.Expect(f, w, 2); Producer = Str(r.ReadBytes(), "producer_name"); break;
                case 3: r.Expect(f, w, 2); ProducerVersion = Str(r.ReadBytes(), "producer_version"); break;
                case 7: r.Expect(f, w, 2); ParseGraph(r.ReadBytes()); sawGraph = true; break;
                case 8: r.Expect(f, w, 2); ParseOpset(r.ReadBytes()); break;
                default: r.Skip(w); break;
            }
        }
        if (!sawGraph) throw new InvalidDataException($"{Path}: not an ONNX model (no graph in the ModelProto)");
        if (Nodes.Count == 0) throw new InvalidDataException($"{Path}: the ONNX graph has no nodes");
    }

    void ParseOpset(ReadOnlySpan<byte> data)
    {
        var r = new ProtoReader(data, $"{Path}: OperatorSetIdProto");
        string domain = "";
        long version = 0;
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            if (f == 1) { r.Expect(f, w, 2); domain = Str(r.ReadBytes(), "opset domain"); }
            else if (f == 2) { r.Expect(f, w, 0); version = (long)r.ReadVarint(); }
            else r.Skip(w);
        }
        Opsets[domain] = version;
    }

    void ParseGraph(ReadOnlySpan<byte> data)
    {
        var r = new ProtoReader(data, $"{Path}: GraphProto");
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            switch (f)
            {
                case 1: r.Expect(f, w, 2); Nodes.Add(ParseNode(r.ReadBytes())); break;
                case 5:
                {
                    r.Expect(f, w, 2);
                    var t = ParseTensor(r.ReadBytes(), "initializer");
                    if (!Initializers.TryAdd(t.Name, t)) throw new InvalidDataException($"{Path}: initializer '{t.Name}' appears twice");
                    break;
                }
                case 11: r.Expect(f, w, 2); Inputs.Add(ValueInfoName(r.ReadBytes())); break;
                case 12: r.Expect(f, w, 2); Outputs.Add(ValueInfoName(r.ReadBytes())); break;
                default: r.Skip(w); break;
            }
        }
    }

    string ValueInfoName(ReadOnlySpan<byte> data)
    {
        var r = new ProtoReader(data, $"{Path}: ValueInfoProto");
        var name = "";
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            if (f == 1) { r.Expect(f, w, 2); name = Str(r.ReadBytes(), "value name"); }
            else r.Skip(w);
        }
        return name;
    }

    OnnxNode ParseNode(ReadOnlySpan<byte> data)
    {
        var r = new ProtoReader(data, $"{Path}: NodeProto");
        var inputs = new List<string>();
        var outputs = new List<string>();
        var attrs = new List<OnnxAttribute>();
        string name = "", op = "", domain = "";
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            switch (f)
            {
                case 1: r.Expect(f, w, 2); inputs.Add(Str(r.ReadBytes(), "node input")); break;
                case 2: r.Expect(f, w, 2); outputs.Add(Str(r.ReadBytes(), "node output")); break;
                case 3: r.Expect(f, w, 2); name = Str(r.ReadBytes(), "node name"); break;
                case 4: r.Expect(f, w, 2); op = Str(r.ReadBytes(), "op_type"); break;
                case 5: r.Expect(f, w, 2); attrs.Add(ParseAttribute(r.ReadBytes(), name)); break;
                case 7: r.Expect(f, w, 2); domain = Str(r.ReadBytes(), "node domain"); break;
                default: r.Skip(w); break;
            }
        }
        if (op.Length == 0) throw new InvalidDataException($"{Path}: node '{name}' has no op_type");
        return new OnnxNode { Name = name, OpType = op, Domain = domain, Inputs = inputs, Outputs = outputs, Attributes = attrs };
    }

    OnnxAttribute ParseAttribute(ReadOnlySpan<byte> data, string node)
    {
        var r = new ProtoReader(data, $"{Path}: AttributeProto of node '{node}'");
        string name = "";
        float? fv = null;
        long? iv = null;
        string? sv = null;
        OnnxTensor? tv = null;
        var ints = new List<long>();
        var floats = new List<float>();
        var sub = false;
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            switch (f)
            {
                case 1: r.Expect(f, w, 2); name = Str(r.ReadBytes(), "attribute name"); break;
                case 2: r.Expect(f, w, 5); fv = BitConverter.UInt32BitsToSingle(r.ReadFixed32()); break;
                case 3: r.Expect(f, w, 0); iv = (long)r.ReadVarint(); break;
                case 4: r.Expect(f, w, 2); sv = Encoding.UTF8.GetString(r.ReadBytes()); break;
                case 5: r.Expect(f, w, 2); tv = ParseTensor(r.ReadBytes(), $"attribute '{name}' of node '{node}'"); break;
                case 6: case 11: sub = true; r.Skip(w); break;
                case 7:
                    if (w == 2)
                    {
                        var p = r.ReadBytes();
                        if (p.Length % 4 != 0) throw new InvalidDataException($"{Path}: attribute '{name}' of node '{node}': packed floats of {p.Length} bytes");
                        for (var o = 0; o < p.Length; o += 4) floats.Add(BinaryPrimitives.ReadSingleLittleEndian(p[o..]));
                    }
                    else { r.Expect(f, w, 5); floats.Add(BitConverter.UInt32BitsToSingle(r.ReadFixed32())); }
                    break;
                case 8:
                    if (w == 2)
                    {
                        var pr = new ProtoReader(r.ReadBytes(), $"{Path}: attribute '{name}' of node '{node}' ints");
                        while (!pr.End) ints.Add((long)pr.ReadVarint());
                    }
                    else { r.Expect(f, w, 0); ints.Add((long)r.ReadVarint()); }
                    break;
                default: r.Skip(w); break;
            }
        }
        return new OnnxAttribute { Name = name, F = fv, I = iv, S = sv, T = tv, Ints = ints, Floats = floats, HasSubgraph = sub };
    }

    OnnxTensor ParseTensor(ReadOnlySpan<byte> data, string what)
    {
        var r = new ProtoReader(data, $"{Path}: TensorProto ({what})");
        var dims = new List<long>();
        var dataType = 0;
        string name = "";
        ReadOnlyMemory<byte>? raw = null;
        List<ReadOnlyMemory<byte>> f32 = [], vi = [], f64 = [];
        var ext = new Dictionary<string, string>(StringComparer.Ordinal);
        var location = 0;
        var hasStrings = false;
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            switch (f)
            {
                case 1:
                    if (w == 2)
                    {
                        var pr = new ProtoReader(r.ReadBytes(), $"{Path}: TensorProto ({what}) dims");
                        while (!pr.End) dims.Add((long)pr.ReadVarint());
                    }
                    else { r.Expect(f, w, 0); dims.Add((long)r.ReadVarint()); }
                    if (dims.Count > 64) throw new InvalidDataException($"{Path}: TensorProto ({what}) has more than 64 dims");
                    break;
                case 2: r.Expect(f, w, 0); dataType = (int)(uint)r.ReadVarint(); break;
                case 4: f32.Add(Packed(ref r, w, 5)); break;
                case 5: case 7: case 11: vi.Add(Packed(ref r, w, 0)); break;
                case 10: f64.Add(Packed(ref r, w, 1)); break;
                case 6: r.Expect(f, w, 2); r.ReadBytes(); hasStrings = true; break;
                case 8: r.Expect(f, w, 2); name = Str(r.ReadBytes(), "tensor name"); break;
                case 9: r.Expect(f, w, 2); raw = Slice(r.ReadBytes()); break;
                case 13:
                {
                    r.Expect(f, w, 2);
                    var er = new ProtoReader(r.ReadBytes(), $"{Path}: TensorProto ({what}) external_data entry");
                    string k = "", v = "";
                    while (!er.End)
                    {
                        var (ef, ew) = er.ReadTag();
                        if (ef == 1) { er.Expect(ef, ew, 2); k = Str(er.ReadBytes(), "external_data key"); }
                        else if (ef == 2) { er.Expect(ef, ew, 2); v = Str(er.ReadBytes(), "external_data value"); }
                        else er.Skip(ew);
                    }
                    ext[k] = v;
                    break;
                }
                case 14: r.Expect(f, w, 0); location = (int)r.ReadVarint(); break;
                default: r.Skip(w); break;
            }
        }
        var label = name.Length > 0 ? name : what;
        var dt = Enum.IsDefined(typeof(OnnxDataType), dataType) ? (OnnxDataType)dataType
            : throw new InvalidDataException($"{Path}: tensor '{label}' has unknown data type {dataType}");
        if (hasStrings || dt == OnnxDataType.String) dt = OnnxDataType.String;
        var dimsArr = dims.ToArray();
        foreach (var d in dimsArr)
            if (d < 0 || d > int.MaxValue) throw new InvalidDataException($"{Path}: tensor '{label}' has an invalid dimension {(long)(ulong)d} in dims");
        var numel = TensorMemory.Numel(dimsArr, $"{Path}: tensor '{label}'");
        long extOffset = 0;
        long? extLength = null;
        var external = location == 1;
        if (external)
        {
            if (ext.TryGetValue("offset", out var o) && !long.TryParse(o, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out extOffset))
                throw new InvalidDataException($"{Path}: tensor '{label}': external data offset '{o}' is not a non-negative integer");
            if (ext.TryGetValue("length", out var l))
            {
                if (!long.TryParse(l, System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var lv))
                    throw new InvalidDataException($"{Path}: tensor '{label}': external data length '{l}' is not a non-negative integer");
                extLength = lv;
            }
        }
        else if (dt != OnnxDataType.String)
        {
            // The data must be in the file: check the declared size against the bytes actually there before anything is allocated.
            if (raw is { } rd)
            {
                long need;
                try { need = checked(numel * ElementSizeOf(dt)); }
                catch (OverflowException) { throw new InvalidDataException($"{Path}: tensor '{label}': dims [{string.Join(", ", dimsArr)}] are too large"); }
                if (need != rd.Length)
                    throw new InvalidDataException($"{Path}: tensor '{label}' ({dt}, dims [{string.Join(", ", dimsArr)}]) needs {need} bytes but its raw_data holds {rd.Length}");
            }
            else
            {
                var have = f32.Sum(m => (long)m.Length) + vi.Sum(m => (long)m.Length) + f64.Sum(m => (long)m.Length);
                if (numel > have)
                    throw new InvalidDataException($"{Path}: tensor '{label}' ({dt}, dims [{string.Join(", ", dimsArr)}]) declares {numel} elements but only {have} bytes of data are in the file");
            }
        }
        var t = new OnnxTensor
        {
            Name = name, Dims = dimsArr, DataType = dt, Raw = raw, Source = Path, BaseDirectory = _dir,
            IsExternal = external, ExternalLocation = ext.GetValueOrDefault("location"), ExternalOffset = extOffset, ExternalLength = extLength,
        };
        t.Fixed32.AddRange(f32);
        t.Varints.AddRange(vi);
        t.Fixed64.AddRange(f64);
        return t;
    }

    static int ElementSizeOf(OnnxDataType t) => t switch
    {
        OnnxDataType.Float or OnnxDataType.Int32 or OnnxDataType.UInt32 => 4,
        OnnxDataType.Double or OnnxDataType.Int64 or OnnxDataType.UInt64 => 8,
        OnnxDataType.Float16 or OnnxDataType.BFloat16 or OnnxDataType.Int16 or OnnxDataType.UInt16 => 2,
        _ => 1,
    };

    /// <summary>A typed repeated field occurrence: a packed run (wire type 2) or one value of <paramref name="scalarWire"/>.</summary>
    ReadOnlyMemory<byte> Packed(ref ProtoReader r, int wire, int scalarWire)
    {
        if (wire == 2)
        {
            var p = r.ReadBytes();
            if (scalarWire == 5 && p.Length % 4 != 0) throw new InvalidDataException($"{Path}: packed fixed32 field of {p.Length} bytes");
            if (scalarWire == 1 && p.Length % 8 != 0) throw new InvalidDataException($"{Path}: packed fixed64 field of {p.Length} bytes");
            if (scalarWire == 0 && p.Length > 0 && (p[^1] & 0x80) != 0) throw new InvalidDataException($"{Path}: packed varint field ends inside a varint");
            return Slice(p);
        }
        if (wire != scalarWire) throw new InvalidDataException($"{Path}: tensor data field has wire type {wire}, expected {scalarWire} or 2");
        var before = r.Position;
        switch (wire)
        {
            case 0: r.ReadVarint(); break;
            case 5: r.ReadFixed32(); break;
            default: r.ReadFixed64(); break;
        }
        return Slice(r.Since(before));
    }

    /// <summary>Constant values by output name: initializers and Constant nodes' <c>value</c> tensors (plus value_float/int/ints).</summary>
    public Dictionary<string, OnnxTensor> Constants()
    {
        var result = new Dictionary<string, OnnxTensor>(Initializers, StringComparer.Ordinal);
        foreach (var n in Nodes)
        {
            if (n.OpType != "Constant" || n.Outputs.Count != 1) continue;
            if (n.Attr("value")?.T is { } t) result[n.Outputs[0]] = t;
        }
        return result;
    }

    /// <summary>Small scalar constants from Constant nodes' value_float / value_int / value_ints attributes.</summary>
    public Dictionary<string, double[]> AttributeConstants()
    {
        var result = new Dictionary<string, double[]>(StringComparer.Ordinal);
        foreach (var n in Nodes)
        {
            if (n.OpType != "Constant" || n.Outputs.Count != 1) continue;
            if (n.Attr("value_float")?.F is { } f) result[n.Outputs[0]] = [f];
            else if (n.Attr("value_int")?.I is { } i) result[n.Outputs[0]] = [i];
            else if (n.Attr("value_ints") is { Ints.Count: > 0 } a) result[n.Outputs[0]] = a.Ints.Select(x => (double)x).ToArray();
        }
        return result;
    }
}
