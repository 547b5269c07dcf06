using System.Text;
using BertSharp.Checkpoints;

namespace BertSharp.Tests.Export;

/// <summary>
/// A test-side reader of the parts of an ONNX ModelProto the exporter tests look at, written against onnx.proto with
/// the library's <see cref="ProtoReader"/> (not the exporter's writer), accepting packed and unpacked repeated fields.
/// </summary>
sealed class OnnxFile
{
    public sealed record Node(string Op, string Name, List<string> Inputs, List<string> Outputs, Dictionary<string, object> Attributes)
    {
        /// <summary>The operator domain ("" = ONNX's default).</summary>
        public string Domain { get; init; } = "";
    }
    public sealed record Initializer(string Name, int DataType, long[] Dims, byte[]? Raw, Dictionary<string, string> External)
    {
        public float[] Floats(string modelDir)
        {
            var bytes = Raw;
            if (bytes is null)
            {
                using var fs = File.OpenRead(Path.Combine(modelDir, External["location"]));
                fs.Position = long.Parse(External["offset"]);
                bytes = new byte[long.Parse(External["length"])];
                fs.ReadExactly(bytes);
            }
            var f = new float[bytes.Length / 4];
            Buffer.BlockCopy(bytes, 0, f, 0, bytes.Length);
            return f;
        }
    }
    public sealed record ValueInfo(string Name, int ElemType, List<object> Dims);

    public long IrVersion;
    public string ProducerName = "";
    public List<(string Domain, long Version)> Opsets = [];
    public List<Node> Nodes = [];
    public List<Initializer> Initializers = [];
    public List<ValueInfo> Inputs = [];
    public List<ValueInfo> Outputs = [];
    public Dictionary<string, string> Metadata = [];

    public static OnnxFile Read(string path)
    {
        var f = new OnnxFile();
        var r = new ProtoReader(File.ReadAllBytes(path), path);
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            switch (field)
            {
                case 1: f.IrVersion = (long)r.ReadVarint(); break;
                case 2: f.ProducerName = Str(r.ReadBytes()); break;
                case 7: f.ReadGraph(r.ReadBytes()); break;
                case 8:
                {
                    var m = new ProtoReader(r.ReadBytes(), "opset");
                    string domain = ""; long version = 0;
                    while (!m.End)
                    {
                        var (ff, w) = m.ReadTag();
                        if (ff == 1) domain = Str(m.ReadBytes());
                        else if (ff == 2) version = (long)m.ReadVarint();
                        else m.Skip(w);
                    }
                    f.Opsets.Add((domain, version));
                    break;
                }
                case 14:
                {
                    var (k, v) = Entry(r.ReadBytes());
                    f.Metadata[k] = v;
                    break;
                }
                default: r.Skip(wt); break;
            }
        }
        return f;
    }

    static string Str(ReadOnlySpan<byte> b) => Encoding.UTF8.GetString(b);

    static (string, string) Entry(ReadOnlySpan<byte> b)
    {
        var r = new ProtoReader(b, "entry");
        string k = "", v = "";
        while (!r.End)
        {
            var (f, w) = r.ReadTag();
            if (f == 1) k = Str(r.ReadBytes());
            else if (f == 2) v = Str(r.ReadBytes());
            else r.Skip(w);
        }
        return (k, v);
    }

    static void ReadInts(ref ProtoReader r, int wireType, List<long> into)
    {
        if (wireType == 0) { into.Add((long)r.ReadVarint()); return; }
        var packed = new ProtoReader(r.ReadBytes(), "packed");
        while (!packed.End) into.Add((long)packed.ReadVarint());
    }

    void ReadGraph(ReadOnlySpan<byte> b)
    {
        var r = new ProtoReader(b, "graph");
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            switch (field)
            {
                case 1: Nodes.Add(ReadNode(r.ReadBytes())); break;
                case 5: Initializers.Add(ReadTensor(r.ReadBytes())); break;
                case 11: Inputs.Add(ReadValueInfo(r.ReadBytes())); break;
                case 12: Outputs.Add(ReadValueInfo(r.ReadBytes())); break;
                default: r.Skip(wt); break;
            }
        }
    }

    static Node ReadNode(ReadOnlySpan<byte> b)
    {
        var r = new ProtoReader(b, "node");
        var n = new Node("", "", [], [], []);
        string op = "", name = "", domain = "";
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            switch (field)
            {
                case 1: n.Inputs.Add(Str(r.ReadBytes())); break;
                case 2: n.Outputs.Add(Str(r.ReadBytes())); break;
                case 3: name = Str(r.ReadBytes()); break;
                case 4: op = Str(r.ReadBytes()); break;
                case 7: domain = Str(r.ReadBytes()); break;
                case 5:
                {
                    var a = new ProtoReader(r.ReadBytes(), "attribute");
                    string an = ""; object? value = null; var ints = new List<long>();
                    while (!a.End)
                    {
                        var (af, aw) = a.ReadTag();
                        switch (af)
                        {
                            case 1: an = Str(a.ReadBytes()); break;
                            case 2: value = BitConverter.UInt32BitsToSingle(a.ReadFixed32()); break;
                            case 3: value = (long)a.ReadVarint(); break;
                            case 5: value = ReadTensor(a.ReadBytes()); break;
                            case 8: ReadInts(ref a, aw, ints); value = ints; break;
                            default: a.Skip(aw); break;
                        }
                    }
                    n.Attributes[an] = value!;
                    break;
                }
                default: r.Skip(wt); break;
            }
        }
        return n with { Op = op, Name = name, Domain = domain };
    }

    static Initializer ReadTensor(ReadOnlySpan<byte> b)
    {
        var r = new ProtoReader(b, "tensor");
        var dims = new List<long>();
        int type = 0; string name = ""; byte[]? raw = null; var ext = new Dictionary<string, string>();
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            switch (field)
            {
                case 1: ReadInts(ref r, wt, dims); break;
                case 2: type = (int)r.ReadVarint(); break;
                case 8: name = Str(r.ReadBytes()); break;
                case 9: raw = r.ReadBytes().ToArray(); break;
                case 13: { var (k, v) = Entry(r.ReadBytes()); ext[k] = v; break; }
                default: r.Skip(wt); break;
            }
        }
        return new Initializer(name, type, dims.ToArray(), raw, ext);
    }

    static ValueInfo ReadValueInfo(ReadOnlySpan<byte> b)
    {
        var r = new ProtoReader(b, "value_info");
        string name = ""; int elem = 0; var dims = new List<object>();
        while (!r.End)
        {
            var (field, wt) = r.ReadTag();
            if (field == 1) { name = Str(r.ReadBytes()); continue; }
            if (field != 2) { r.Skip(wt); continue; }
            var type = new ProtoReader(r.ReadBytes(), "type");
            while (!type.End)
            {
                var (tf, tw) = type.ReadTag();
                if (tf != 1) { type.Skip(tw); continue; }
                var tensor = new ProtoReader(type.ReadBytes(), "tensor_type");
                while (!tensor.End)
                {
                    var (xf, xw) = tensor.ReadTag();
                    if (xf == 1) elem = (int)tensor.ReadVarint();
                    else if (xf == 2)
                    {
                        var shape = new ProtoReader(tensor.ReadBytes(), "shape");
                        while (!shape.End)
                        {
                            var (sf, sw) = shape.ReadTag();
                            if (sf != 1) { shape.Skip(sw); continue; }
                            var dim = new ProtoReader(shape.ReadBytes(), "dim");
                            object? d = null;
                            while (!dim.End)
                            {
                                var (df, dw) = dim.ReadTag();
                                if (df == 1) d = (long)dim.ReadVarint();
                                else if (df == 2) d = Str(dim.ReadBytes());
                                else dim.Skip(dw);
                            }
                            dims.Add(d!);
                        }
                    }
                    else tensor.Skip(xw);
                }
            }
        }
        return new ValueInfo(name, elem, dims);
    }
}
