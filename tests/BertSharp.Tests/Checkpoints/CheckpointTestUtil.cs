using System.IO.Compression;
using System.Text;

namespace BertSharp.Tests.Checkpoints;

/// <summary>A temporary directory deleted on dispose.</summary>
public sealed class TempDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("bertsharp-ckpt-").FullName;
    public string File(string name) => System.IO.Path.Combine(Path, name);
    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>Hand-assembles pickle protocol-2 byte streams for tests.</summary>
public sealed class PickleWriter
{
    readonly MemoryStream _s = new();
    public PickleWriter Op(byte op) { _s.WriteByte(op); return this; }
    public PickleWriter Proto() => Op(0x80).Op(2);
    public PickleWriter Global(string module, string name)
    {
        Op((byte)'c');
        var b = Encoding.UTF8.GetBytes(module + "\n" + name + "\n");
        _s.Write(b);
        return this;
    }
    public PickleWriter Str(string s)
    {
        var b = Encoding.UTF8.GetBytes(s);
        Op((byte)'X');
        _s.Write(BitConverter.GetBytes((uint)b.Length));
        _s.Write(b);
        return this;
    }
    public PickleWriter Int(long v)
    {
        if (v is >= 0 and < 256) return Op((byte)'K').Op((byte)v);
        if (v is >= int.MinValue and <= int.MaxValue) { Op((byte)'J'); _s.Write(BitConverter.GetBytes((int)v)); return this; }
        Op(0x8a).Op(8);
        _s.Write(BitConverter.GetBytes(v));
        return this;
    }
    public PickleWriter IntTuple(params long[] v)
    {
        Mark();
        foreach (var x in v) Int(x);
        return Op((byte)'t');
    }
    public PickleWriter Mark() => Op((byte)'(');
    public PickleWriter Tuple() => Op((byte)'t');
    public PickleWriter Reduce() => Op((byte)'R');
    public PickleWriter Stop() => Op((byte)'.');
    public PickleWriter EmptyDict() => Op((byte)'}');
    public PickleWriter SetItems() => Op((byte)'u');

    /// <summary>Pushes _rebuild_tensor_v2(storage(persistent id), offset, size, stride, False, OrderedDict()).</summary>
    public PickleWriter Tensor(string storageType, string key, long storageNumel, long offset, long[] size, long[] stride)
    {
        Global("torch._utils", "_rebuild_tensor_v2");
        Mark();
        Mark().Str("storage").Global("torch", storageType).Str(key).Str("cpu").Int(storageNumel).Tuple().Op((byte)'Q');
        Int(offset).IntTuple(size).IntTuple(stride).Op(0x89);
        Global("collections", "OrderedDict").Op((byte)')').Reduce();
        Tuple();
        return Reduce();
    }

    public byte[] ToArray() => _s.ToArray();
}

public static class TorchZip
{
    /// <summary>Writes a zip laid out like torch.save output: &lt;folder&gt;/data.pkl, &lt;folder&gt;/data/&lt;key&gt;, byteorder, version.</summary>
    public static void Write(string path, byte[] pickle, IReadOnlyDictionary<string, byte[]> storages, string folder = "archive")
    {
        using var fs = System.IO.File.Create(path);
        using var zip = new ZipArchive(fs, ZipArchiveMode.Create);
        void Add(string name, byte[] data)
        {
            var e = zip.CreateEntry(folder + "/" + name, CompressionLevel.NoCompression);
            using var s = e.Open();
            s.Write(data);
        }
        Add("data.pkl", pickle);
        Add("byteorder", Encoding.ASCII.GetBytes("little"));
        foreach (var (k, v) in storages) Add("data/" + k, v);
        Add("version", Encoding.ASCII.GetBytes("3\n"));
    }

    public static byte[] Floats(params float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();
    public static byte[] Longs(params long[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();
}
