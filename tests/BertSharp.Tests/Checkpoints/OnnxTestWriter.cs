using System.Text;

namespace BertSharp.Tests.Checkpoints;

/// <summary>A tiny protobuf writer (test-only) for hand-built ONNX ModelProtos; field numbers from onnx.proto.</summary>
public sealed class Pb
{
    readonly MemoryStream _s = new();

    public Pb Varint(ulong v)
    {
        while (v >= 0x80) { _s.WriteByte((byte)(v | 0x80)); v >>= 7; }
        _s.WriteByte((byte)v);
        return this;
    }
    public Pb Tag(int field, int wire) => Varint(((ulong)field << 3) | (uint)wire);
    public Pb Int(int field, long v) => Tag(field, 0).Varint((ulong)v);
    public Pb Bytes(int field, ReadOnlySpan<byte> b)
    {
        Tag(field, 2).Varint((ulong)b.Length);
        _s.Write(b);
        return this;
    }
    public Pb Str(int field, string s) => Bytes(field, Encoding.UTF8.GetBytes(s));
    public Pb Msg(int field, Pb m) => Bytes(field, m.ToArray());
    public Pb Float(int field, float f)
    {
        Tag(field, 5);
        _s.Write(BitConverter.GetBytes(f));
        return this;
    }
    public Pb PackedVarints(int field, IEnumerable<long> vals)
    {
        var p = new Pb();
        foreach (var v in vals) p.Varint((ulong)v);
        return Bytes(field, p.ToArray());
    }
    public byte[] ToArray() => _s.ToArray();
}

/// <summary>How a test tensor stores its data.</summary>
public enum TensorEncoding { Raw, FloatDataPacked, FloatDataUnpacked, Float16Raw, BFloat16Raw, Float16Int32Data, External }

/// <summary>Builds ONNX graphs for the name-recovery, config and corruption tests (and ONNX Runtime runs them).</summary>
public sealed class OnnxGraph
{
    readonly List<Pb> _nodes = [];
    readonly List<Pb> _inits = [];
    readonly List<Pb> _inputs = [];
    readonly List<Pb> _outputs = [];

    public static Pb Tensor(string name, long[] dims, float[] data, TensorEncoding enc = TensorEncoding.Raw, string? location = null, long offset = 0)
    {
        var t = new Pb();
        t.PackedVarints(1, dims);
        var dtype = enc switch { TensorEncoding.Float16Raw or TensorEncoding.Float16Int32Data => 10, TensorEncoding.BFloat16Raw => 16, _ => 1 };
        t.Int(2, dtype);
        t.Str(8, name);
        switch (enc)
        {
            case TensorEncoding.Raw: t.Bytes(9, data.SelectMany(BitConverter.GetBytes).ToArray()); break;
            case TensorEncoding.FloatDataPacked: t.Bytes(4, data.SelectMany(BitConverter.GetBytes).ToArray()); break;
            case TensorEncoding.FloatDataUnpacked: foreach (var f in data) t.Float(4, f); break;
            case TensorEncoding.Float16Raw: t.Bytes(9, data.SelectMany(f => BitConverter.GetBytes(BitConverter.HalfToUInt16Bits((Half)f))).ToArray()); break;
            case TensorEncoding.BFloat16Raw: t.Bytes(9, data.SelectMany(f => BitConverter.GetBytes((ushort)(BitConverter.SingleToUInt32Bits(f) >> 16))).ToArray()); break;
            case TensorEncoding.Float16Int32Data: t.PackedVarints(5, data.Select(f => (long)BitConverter.HalfToUInt16Bits((Half)f))); break;
            case TensorEncoding.External:
                t.Msg(13, new Pb().Str(1, "location").Str(2, location!));
                t.Msg(13, new Pb().Str(1, "offset").Str(2, offset.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                t.Msg(13, new Pb().Str(1, "length").Str(2, (data.Length * 4L).ToString(System.Globalization.CultureInfo.InvariantCulture)));
                t.Int(14, 1);
                break;
        }
        return t;
    }

    public static Pb Int64Tensor(string name, long[] dims, long[] data) =>
        new Pb().PackedVarints(1, dims).Int(2, 7).Str(8, name).Bytes(9, data.SelectMany(BitConverter.GetBytes).ToArray());

    public OnnxGraph Init(string name, long[] dims, float[] data, TensorEncoding enc = TensorEncoding.Raw, string? location = null, long offset = 0)
    {
        _inits.Add(Tensor(name, dims, data, enc, location, offset));
        return this;
    }

    public OnnxGraph InitInt64(string name, long[] data)
    {
        _inits.Add(Int64Tensor(name, [data.Length], data));
        return this;
    }

    public OnnxGraph Node(string op, string[] inputs, string[] outputs, Action<Pb>? attrs = null, string domain = "")
    {
        var n = new Pb();
        foreach (var i in inputs) n.Str(1, i);
        foreach (var o in outputs) n.Str(2, o);
        n.Str(3, $"{op}_{_nodes.Count}");
        n.Str(4, op);
        if (domain.Length > 0) n.Str(7, domain);
        attrs?.Invoke(n);
        _nodes.Add(n);
        return this;
    }

    public static Action<Pb> IntAttr(string name, long v) => n => n.Msg(5, new Pb().Str(1, name).Int(3, v).Int(20, 2));
    public static Action<Pb> FloatAttr(string name, float v) => n => n.Msg(5, new Pb().Str(1, name).Float(2, v).Int(20, 1));
    public static Action<Pb> IntsAttr(string name, params long[] v) => n => n.Msg(5, new Pb().Str(1, name).PackedVarints(8, v).Int(20, 7));
    public static Action<Pb> StrAttr(string name, string v) => n => n.Msg(5, new Pb().Str(1, name).Str(4, v).Int(20, 3));
    public static Action<Pb> TensorAttr(string name, Pb t) => n => n.Msg(5, new Pb().Str(1, name).Msg(5, t).Int(20, 4));

    static Pb ValueInfo(string name, int elemType, long[] dims)
    {
        var shape = new Pb();
        foreach (var d in dims) shape.Msg(1, new Pb().Int(1, d));
        return new Pb().Str(1, name).Msg(2, new Pb().Msg(1, new Pb().Int(1, elemType).Msg(2, shape)));
    }

    public OnnxGraph Input(string name, long[] dims, int elemType = 1) { _inputs.Add(ValueInfo(name, elemType, dims)); return this; }
    public OnnxGraph Output(string name, long[] dims, int elemType = 1) { _outputs.Add(ValueInfo(name, elemType, dims)); return this; }

    public byte[] ToModel(long opset = 13)
    {
        var g = new Pb();
        foreach (var n in _nodes) g.Msg(1, n);
        g.Str(2, "test");
        foreach (var t in _inits) g.Msg(5, t);
        foreach (var i in _inputs) g.Msg(11, i);
        foreach (var o in _outputs) g.Msg(12, o);
        return new Pb().Int(1, 7).Str(2, "bertsharp-tests").Msg(7, g).Msg(8, new Pb().Str(1, "").Int(2, opset)).ToArray();
    }

    public string Save(string path)
    {
        File.WriteAllBytes(path, ToModel());
        return path;
    }

    /// <summary>Deterministic values for test weights.</summary>
    public static float[] Values(int n, int seed)
    {
        var rng = new Random(seed);
        return Enumerable.Range(0, n).Select(_ => (float)Math.Round(rng.NextDouble() * 2 - 1, 3)).ToArray();
    }
}
