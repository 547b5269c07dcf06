using System.Buffers.Binary;
using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tests.Checkpoints;
using BertSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Fuzz;

/// <summary>Small, valid inputs for the loaders, built in code (no assets needed).</summary>
public static class FuzzFixtures
{
    public static readonly string[] VocabTokens =
        ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", ".", "##s"];

    /// <summary>A BERT small enough that a load takes milliseconds (hidden 8, one layer).</summary>
    public static BertConfig MicroConfig => BertConfig.Preset("tiny") with
    {
        VocabSize = VocabTokens.Length, HiddenSize = 8, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 16,
        MaxPositionEmbeddings = 16,
    };

    /// <summary>Saves a seeded micro BertForPreTraining in HF layout (config.json, model.safetensors, vocab.txt, …) under <paramref name="dir"/>.</summary>
    public static string SaveMicroModel(string dir, long seed = 3)
    {
        var config = MicroConfig;
        using var model = new BertForPreTraining(config);
        ModelUtils.InitWeights(model, config, seed);
        // Non-trivial LayerNorm/bias values, so that swapped or shifted tensors never look alike by accident.
        using (no_grad())
        {
            var g = new Random((int)seed);
            foreach (var (_, p) in model.named_parameters())
                using (var gen = new torch.Generator((ulong)g.Next()))
                using (var noise = torch.rand(p.shape, generator: gen))
                    p.add_(noise);
        }
        ModelDirectory.Save(model, config, new BertTokenizer(new Vocabulary(VocabTokens)), dir);
        return dir;
    }

    /// <summary>The tensors of a state dict written as a torch.save zip (one storage per tensor, contiguous).</summary>
    public static void WriteTorchZip(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var p = new PickleWriter().Proto().Global("collections", "OrderedDict").Op((byte)')').Reduce().Mark();
        var storages = new Dictionary<string, byte[]>();
        var i = 0;
        foreach (var (name, t) in tensors)
        {
            using var c = t.contiguous();
            var key = (i++).ToString(System.Globalization.CultureInfo.InvariantCulture);
            var storageType = c.dtype switch
            {
                ScalarType.Float32 => "FloatStorage",
                ScalarType.Int64 => "LongStorage",
                ScalarType.Int32 => "IntStorage",
                ScalarType.Float16 => "HalfStorage",
                ScalarType.BFloat16 => "BFloat16Storage",
                _ => throw new NotSupportedException(c.dtype.ToString()),
            };
            var shape = c.shape;
            var stride = new long[shape.Length];
            long s = 1;
            for (var d = shape.Length - 1; d >= 0; d--) { stride[d] = s; s *= shape[d]; }
            p.Str(name).Tensor(storageType, key, c.numel(), 0, shape, stride);
            storages[key] = c.numel() == 0 ? [] : c.bytes.ToArray();
        }
        TorchZip.Write(path, p.SetItems().Stop().ToArray(), storages);
    }

    /// <summary>Replaces the micro model's model.safetensors with an equivalent pytorch_model.bin.</summary>
    public static void ConvertToBin(string modelDir)
    {
        var st = Path.Combine(modelDir, "model.safetensors");
        var weights = SafeTensors.Load(st);
        try { WriteTorchZip(Path.Combine(modelDir, "pytorch_model.bin"), weights); }
        finally { foreach (var t in weights.Values) t.Dispose(); }
        File.Delete(st);
    }
}

/// <summary>
/// Writes a minimal TensorFlow tensor bundle (one uncompressed LevelDB data block, crc32c everywhere) so that tests
/// can build bundles the readers must refuse (duplicate keys, integer weights) without a TF install.
/// </summary>
public static class TfBundleWriter
{
    public sealed record Item(string Name, TfDataType DType, long[] Shape, byte[] Data);

    public static void Write(string prefix, IReadOnlyList<Item> items, bool sortKeys = true)
    {
        var data = new MemoryStream();
        var entries = new List<(byte[] Key, byte[] Value)>();
        var header = new List<byte> { 0x08, 1, 0x1a, 2, 0x08, 1 }; // num_shards 1, version { producer 1 }
        entries.Add(([], header.ToArray()));
        var ordered = sortKeys ? items.OrderBy(i => i.Name, StringComparer.Ordinal).ToList() : items.ToList();
        foreach (var it in ordered)
        {
            var offset = data.Position;
            data.Write(it.Data);
            var v = new List<byte> { 0x08 };
            Varint(v, (ulong)it.DType);
            var shape = new List<byte>();
            foreach (var d in it.Shape)
            {
                var dim = new List<byte> { 0x08 };
                Varint(dim, (ulong)d);
                shape.Add(0x12);
                Varint(shape, (ulong)dim.Count);
                shape.AddRange(dim);
            }
            v.Add(0x12);
            Varint(v, (ulong)shape.Count);
            v.AddRange(shape);
            v.Add(0x20);
            Varint(v, (ulong)offset);
            v.Add(0x28);
            Varint(v, (ulong)it.Data.Length);
            v.Add(0x35);
            var crc = new byte[4];
            BinaryPrimitives.WriteUInt32LittleEndian(crc, Crc32C.Mask(Crc32C.Compute(it.Data)));
            v.AddRange(crc);
            entries.Add((System.Text.Encoding.UTF8.GetBytes(it.Name), v.ToArray()));
        }
        var file = new MemoryStream();
        var (dataOff, dataSize) = WriteBlock(file, entries);
        var (metaOff, metaSize) = WriteBlock(file, []);
        var lastKey = entries[^1].Key.Concat(new byte[] { 0xff }).ToArray();
        var handle = new List<byte>();
        Varint(handle, dataOff);
        Varint(handle, dataSize);
        var (indexOff, indexSize) = WriteBlock(file, [(lastKey, handle.ToArray())]);
        var footer = new List<byte>();
        Varint(footer, metaOff);
        Varint(footer, metaSize);
        Varint(footer, indexOff);
        Varint(footer, indexSize);
        while (footer.Count < 40) footer.Add(0);
        var magic = new byte[8];
        BinaryPrimitives.WriteUInt64LittleEndian(magic, 0xdb4775248b80fb57UL);
        footer.AddRange(magic);
        file.Write(footer.ToArray());
        File.WriteAllBytes(prefix + ".index", file.ToArray());
        File.WriteAllBytes(prefix + ".data-00000-of-00001", data.ToArray());
    }

    static (ulong Offset, ulong Size) WriteBlock(MemoryStream file, List<(byte[] Key, byte[] Value)> entries)
    {
        var b = new List<byte>();
        foreach (var (k, v) in entries)
        {
            Varint(b, 0);
            Varint(b, (ulong)k.Length);
            Varint(b, (ulong)v.Length);
            b.AddRange(k);
            b.AddRange(v);
        }
        b.AddRange(new byte[4]);          // one restart point at 0
        b.AddRange(new byte[] { 1, 0, 0, 0 }); // restart count 1
        var offset = (ulong)file.Position;
        var block = b.ToArray();
        file.Write(block);
        file.WriteByte(0); // no compression
        var crc = Crc32C.Mask(Crc32C.Extend(Crc32C.Compute(block), [0]));
        var c = new byte[4];
        BinaryPrimitives.WriteUInt32LittleEndian(c, crc);
        file.Write(c);
        return (offset, (ulong)block.Length);
    }

    static void Varint(List<byte> b, ulong v)
    {
        while (v >= 0x80) { b.Add((byte)(v | 0x80)); v >>= 7; }
        b.Add((byte)v);
    }
}
