using BertSharp.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Export;

/// <summary>The subset of ONNX's <c>TensorProto.DataType</c> the exporter writes.</summary>
internal enum OnnxDataType
{
    Float = 1,
    UInt8 = 2,
    Int8 = 3,
    Int32 = 6,
    Int64 = 7,
}

/// <summary>A node attribute (ONNX <c>AttributeProto</c>): one of int, ints, float, tensor.</summary>
internal sealed record OnnxAttribute(string Name, long? I = null, long[]? Ints = null, float? F = null, OnnxTensor? T = null)
{
    public static OnnxAttribute Int(string name, long v) => new(name, I: v);
    public static OnnxAttribute IntList(string name, params long[] v) => new(name, Ints: v);
    public static OnnxAttribute Float(string name, float v) => new(name, F: v);
    public static OnnxAttribute Tensor(string name, OnnxTensor t) => new(name, T: t);

    // AttributeProto: name 1, f 2, i 3, t 5, ints 8, type 20 (FLOAT 1, INT 2, TENSOR 4, INTS 7).
    public ProtoMessage ToProto()
    {
        var m = new ProtoMessage().String(1, Name);
        if (F is { } f) m.Float(2, f).Int(20, 1);
        else if (I is { } i) m.Int(3, i).Int(20, 2);
        else if (T is { } t) m.Message(5, t.ToProto()).Int(20, 4);
        else if (Ints is { } ints)
        {
            foreach (var v in ints) m.Int(8, v);
            m.Int(20, 7);
        }
        else throw new InvalidOperationException($"internal: attribute '{Name}' has no value");
        return m;
    }
}

/// <summary>
/// An ONNX tensor (initializer or Constant value): name, type, dims and little-endian raw bytes, either inline
/// (<c>raw_data</c>) or in an external data file (<c>data_location = EXTERNAL</c> + location/offset/length).
/// </summary>
internal sealed class OnnxTensor
{
    public required string Name { get; init; }
    public required OnnxDataType DataType { get; init; }
    public required long[] Dims { get; init; }
    /// <summary>Inline bytes (small constants), or null when <see cref="Source"/> holds the data.</summary>
    public byte[]? Raw { get; init; }
    /// <summary>A contiguous CPU torch tensor of the right dtype whose bytes are the data (owned by the graph).</summary>
    public Tensor? Source { get; init; }

    public long ByteLength => Raw?.LongLength ?? Source!.numel() * Source.element_size();

    /// <summary>Set when the data goes to an external file.</summary>
    public (string Location, long Offset)? External { get; set; }

    public void WriteData(Stream s)
    {
        if (Raw is not null) s.Write(Raw);
        else if (Source!.numel() > 0) TensorMemory.ForEachChunk(Source, (_, span) => s.Write(span));
    }

    // TensorProto: dims 1, data_type 2, name 8, raw_data 9, external_data 13 (key 1, value 2), data_location 14.
    public ProtoMessage ToProto()
    {
        var m = new ProtoMessage();
        foreach (var d in Dims) m.Int(1, d);
        m.Int(2, (int)DataType);
        m.String(8, Name);
        if (External is { } ext)
        {
            void Entry(string k, string v) => m.Message(13, new ProtoMessage().String(1, k).String(2, v));
            Entry("location", ext.Location);
            Entry("offset", ext.Offset.ToString(System.Globalization.CultureInfo.InvariantCulture));
            Entry("length", ByteLength.ToString(System.Globalization.CultureInfo.InvariantCulture));
            m.Int(14, 1);
        }
        else if (Raw is not null) m.Bytes(9, Raw);
        else m.LazyBytes(9, ByteLength, WriteData);
        return m;
    }

    public static OnnxTensor Floats(string name, long[] dims, params float[] values) => new()
    {
        Name = name, DataType = OnnxDataType.Float, Dims = dims, Raw = values.SelectMany(BitConverter.GetBytes).ToArray(),
    };

    public static OnnxTensor Longs(string name, long[] dims, params long[] values) => new()
    {
        Name = name, DataType = OnnxDataType.Int64, Dims = dims, Raw = values.SelectMany(BitConverter.GetBytes).ToArray(),
    };
}

/// <summary>A graph input or output (ONNX <c>ValueInfoProto</c>): a tensor type whose dims are numbers or symbolic names.</summary>
internal sealed record OnnxValueInfo(string Name, OnnxDataType ElemType, object[] Dims)
{
    // ValueInfoProto: name 1, type 2; TypeProto: tensor_type 1; Tensor: elem_type 1, shape 2;
    // TensorShapeProto: dim 1; Dimension: dim_value 1, dim_param 2.
    public ProtoMessage ToProto()
    {
        var shape = new ProtoMessage();
        foreach (var d in Dims)
            shape.Message(1, d switch
            {
                string s => new ProtoMessage().String(2, s),
                long v => new ProtoMessage().Int(1, v),
                int v => new ProtoMessage().Int(1, v),
                _ => throw new InvalidOperationException($"internal: bad dim {d}"),
            });
        var tensor = new ProtoMessage().Int(1, (int)ElemType).Message(2, shape);
        return new ProtoMessage().String(1, Name).Message(2, new ProtoMessage().Message(1, tensor));
    }
}

/// <summary>
/// Builds an ONNX graph the way <c>torch.onnx.export</c> names things: nodes <c>/scope/Op</c> (<c>_1</c>, <c>_2</c> …
/// when repeated), their outputs <c>/scope/Op_output_0</c>, anonymous initializers <c>onnx::Op_N</c>.
/// Owns the torch tensors it is given as initializer data.
/// </summary>
internal sealed class OnnxGraphBuilder : IDisposable
{
    /// <summary>ONNX Runtime's contrib-op domain (<c>com.microsoft</c>).</summary>
    public const string MicrosoftDomain = "com.microsoft";

    readonly List<(string Op, string Name, string[] Inputs, string[] Outputs, OnnxAttribute[] Attrs, string Domain)> _nodes = [];
    readonly List<OnnxTensor> _initializers = [];
    readonly HashSet<string> _values = new(StringComparer.Ordinal);
    readonly Dictionary<string, int> _nodeNames = new(StringComparer.Ordinal);
    int _anonymous;

    public List<OnnxValueInfo> Inputs { get; } = [];
    public List<OnnxValueInfo> Outputs { get; } = [];
    public IReadOnlyList<OnnxTensor> Initializers => _initializers;
    public int NodeCount => _nodes.Count;
    public IEnumerable<string> OpTypes => _nodes.Select(n => n.Op);

    /// <summary>The non-default operator domains the nodes use (each needs its own <c>opset_import</c>).</summary>
    public IEnumerable<string> Domains => _nodes.Select(n => n.Domain).Where(d => d.Length > 0).Distinct();

    /// <summary>The current module path, e.g. <c>/bert/encoder/layer.0/attention/self/query</c>.</summary>
    public string Scope { get; set; } = "";

    public string Input(string name, OnnxDataType type, params object[] dims)
    {
        Inputs.Add(new OnnxValueInfo(name, type, dims));
        Define(name);
        return name;
    }

    public void Output(string name, OnnxDataType type, params object[] dims) => Outputs.Add(new OnnxValueInfo(name, type, dims));

    void Define(string name)
    {
        if (!_values.Add(name)) throw new InvalidOperationException($"internal: ONNX value '{name}' defined twice");
    }

    string NodeName(string op)
    {
        var baseName = $"{Scope}/{op}";
        var n = _nodeNames.GetValueOrDefault(baseName);
        _nodeNames[baseName] = n + 1;
        return n == 0 ? baseName : $"{baseName}_{n}";
    }

    /// <summary>Adds a node with one output (named <paramref name="output"/>, or after the node) and returns that name.</summary>
    public string Op(string opType, string[] inputs, string? output = null, params OnnxAttribute[] attrs) =>
        Ops(opType, inputs, 1, output is null ? null : [output], attrs)[0];

    public string[] Ops(string opType, string[] inputs, int outputCount, string[]? outputs, params OnnxAttribute[] attrs) =>
        DomainOps("", opType, inputs, outputCount, outputs, attrs);

    /// <summary>A <c>com.microsoft</c> contrib op with one output; "" in <paramref name="inputs"/> skips an optional input.</summary>
    public string Contrib(string opType, string[] inputs, string? output = null, params OnnxAttribute[] attrs) =>
        DomainOps(MicrosoftDomain, opType, inputs, 1, output is null ? null : [output], attrs)[0];

    /// <summary>A <c>com.microsoft</c> contrib op with several outputs.</summary>
    public string[] ContribOps(string opType, string[] inputs, int outputCount, params OnnxAttribute[] attrs) =>
        DomainOps(MicrosoftDomain, opType, inputs, outputCount, null, attrs);

    string[] DomainOps(string domain, string opType, string[] inputs, int outputCount, string[]? outputs, OnnxAttribute[] attrs)
    {
        foreach (var i in inputs)
            if (i.Length > 0 && !_values.Contains(i)) throw new InvalidOperationException($"internal: ONNX node {opType} reads undefined value '{i}'");
        var name = NodeName(opType);
        var outs = outputs ?? Enumerable.Range(0, outputCount).Select(k => $"{name}_output_{k}").ToArray();
        foreach (var o in outs) Define(o);
        _nodes.Add((opType, name, inputs, outs, attrs, domain));
        return outs;
    }

    /// <summary>A Constant node holding a float scalar.</summary>
    public string Scalar(float v) => Constant(OnnxTensor.Floats("", [], v));

    /// <summary>A Constant node holding a 1-D int64 tensor.</summary>
    public string Longs(params long[] v) => Constant(OnnxTensor.Longs("", [v.Length], v));

    /// <summary>A Constant node holding an int64 scalar.</summary>
    public string LongScalar(long v) => Constant(OnnxTensor.Longs("", [], v));

    string Constant(OnnxTensor value) => Op("Constant", [], null, OnnxAttribute.Tensor("value", value));

    /// <summary>A named initializer (a state-dict key); the builder takes ownership of <paramref name="data"/>.</summary>
    public string Initializer(string name, Tensor data)
    {
        Define(name);
        _initializers.Add(new OnnxTensor { Name = name, DataType = TypeOf(data), Dims = data.shape, Source = data });
        return name;
    }

    /// <summary>An initializer under a torch-style anonymous name <c>onnx::{op}_{N}</c>; takes ownership of <paramref name="data"/>.</summary>
    public string AnonymousInitializer(string op, Tensor data)
    {
        string name;
        do name = $"onnx::{op}_{++_anonymous}"; while (_values.Contains(name));
        return Initializer(name, data);
    }

    static OnnxDataType TypeOf(Tensor t) => t.dtype switch
    {
        ScalarType.Float32 => OnnxDataType.Float,
        ScalarType.Int64 => OnnxDataType.Int64,
        ScalarType.Int32 => OnnxDataType.Int32,
        ScalarType.Int8 => OnnxDataType.Int8,
        ScalarType.Byte => OnnxDataType.UInt8,
        _ => throw new InvalidOperationException($"internal: initializer dtype {t.dtype}"),
    };

    // GraphProto: node 1, name 2, initializer 5, input 11, output 12.
    // NodeProto: input 1, output 2, name 3, op_type 4, attribute 5, domain 7 (written only when not the default).
    public ProtoMessage ToProto(string graphName)
    {
        var g = new ProtoMessage();
        foreach (var (op, name, inputs, outputs, attrs, domain) in _nodes)
        {
            var n = new ProtoMessage();
            foreach (var i in inputs) n.String(1, i);
            foreach (var o in outputs) n.String(2, o);
            n.String(3, name).String(4, op);
            foreach (var a in attrs) n.Message(5, a.ToProto());
            if (domain.Length > 0) n.String(7, domain);
            g.Message(1, n);
        }
        g.String(2, graphName);
        foreach (var t in _initializers) g.Message(5, t.ToProto());
        foreach (var i in Inputs) g.Message(11, i.ToProto());
        foreach (var o in Outputs) g.Message(12, o.ToProto());
        return g;
    }

    public void Dispose()
    {
        foreach (var t in _initializers) t.Source?.Dispose();
        _initializers.Clear();
    }
}
