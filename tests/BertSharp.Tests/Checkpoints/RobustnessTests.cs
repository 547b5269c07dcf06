using System.Buffers.Binary;
using System.Text;
using BertSharp.Checkpoints;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Checkpoints;

/// <summary>
/// Seeded random corruption of every format: the readers must either succeed or throw one of their documented
/// exception types with a message — never IndexOutOfRange, InvalidCast, Overflow, OutOfMemory or a native crash.
/// </summary>
public class RobustnessTests
{
    static bool Documented(Exception e) => e is InvalidDataException or FileNotFoundException or NotSupportedException;

    static void Expect(Action load, string what)
    {
        try { load(); }
        catch (Exception e) when (Documented(e)) { Assert.False(string.IsNullOrWhiteSpace(e.Message)); }
        catch (Exception e) { Assert.Fail($"{what}: undocumented {e.GetType().Name}: {e.Message}\n{e.StackTrace}"); }
    }

    static byte[] Mutate(byte[] src, Random rng, int start, int end)
    {
        var b = (byte[])src.Clone();
        var n = rng.Next(1, 4);
        for (var i = 0; i < n; i++)
        {
            var at = rng.Next(start, end);
            b[at] = rng.Next(3) switch { 0 => (byte)rng.Next(256), 1 => (byte)(b[at] ^ (1 << rng.Next(8))), _ => 0xff };
        }
        return b;
    }

    [Fact]
    public void CorruptPickles_FailCleanly()
    {
        using var dir = new TempDir();
        var p = new PickleWriter().Proto().Global("collections", "OrderedDict").Op((byte)')').Reduce().Mark();
        p.Str("a").Tensor("FloatStorage", "0", 6, 0, [2, 3], [3, 1]);
        p.Str("aT").Tensor("FloatStorage", "0", 6, 0, [3, 2], [1, 3]);
        p.Str("step").Tensor("LongStorage", "1", 1, 0, [], []);
        var pickle = p.SetItems().Stop().ToArray();
        var storages = new Dictionary<string, byte[]> { ["0"] = TorchZip.Floats(0, 1, 2, 3, 4, 5), ["1"] = TorchZip.Longs(3) };
        var rng = new Random(1234);
        var path = dir.File("fuzz.bin");
        for (var i = 0; i < 400; i++)
        {
            var bad = i % 5 == 0 ? pickle[..rng.Next(pickle.Length)] : Mutate(pickle, rng, 0, pickle.Length);
            TorchZip.Write(path, bad, storages);
            Expect(() =>
            {
                foreach (var t in TorchPickle.Load(path).Values) t.Dispose();
            }, $"pickle mutation {i}");
        }
    }

    [Fact]
    public void CorruptSafetensorsHeaders_FailCleanly()
    {
        using var dir = new TempDir();
        var good = dir.File("good.safetensors");
        using (var a = torch.ones(3, 5))
        using (var b = torch.zeros(new long[] { 2 }, ScalarType.Int64))
            SafeTensors.Save(good, new Dictionary<string, Tensor> { ["a"] = a, ["b"] = b }, new Dictionary<string, string> { ["k"] = "v" });
        var bytes = File.ReadAllBytes(good);
        var headerEnd = 8 + (int)BitConverter.ToUInt64(bytes);
        var rng = new Random(99);
        var path = dir.File("fuzz.safetensors");
        for (var i = 0; i < 400; i++)
        {
            var bad = i % 7 == 0 ? bytes[..rng.Next(bytes.Length)] : Mutate(bytes, rng, 0, headerEnd);
            File.WriteAllBytes(path, bad);
            Expect(() =>
            {
                foreach (var t in SafeTensors.Load(path).Values) t.Dispose();
            }, $"safetensors mutation {i}");
        }
    }

    [AssetFact("golden/tf/keras-bert-tiny/bert_model.ckpt.index", "golden/tf/rust-keras-adam/variables.index")]
    public void CorruptTfIndexBlocks_WithValidCrc_FailCleanly()
    {
        // Mutate the data block and recompute its crc, so the table/protobuf parsers (not the crc) see the damage.
        foreach (var (fixture, prefixName) in new[] { ("keras-bert-tiny", "bert_model.ckpt"), ("rust-keras-adam", "variables") })
        {
            using var dir = new TempDir();
            var src = Path.Combine(TestAssets.Path("golden/tf/" + fixture), prefixName);
            var prefix = dir.File(prefixName);
            foreach (var f in Directory.GetFiles(Path.GetDirectoryName(src)!, prefixName + ".*"))
                File.Copy(f, dir.File(Path.GetFileName(f)));
            var index = File.ReadAllBytes(prefix + ".index");
            var pos = index.Length - 48;
            var metaOffset = (int)ReadVarint(index, ref pos);
            var dataSize = metaOffset - 5; // the single data block starts at 0 and ends 5 bytes before the metaindex block
            var rng = new Random(7);
            for (var i = 0; i < 300; i++)
            {
                var bad = Mutate(index, rng, 0, dataSize);
                var crc = Crc32C.Mask(Crc32C.Compute(bad.AsSpan(0, dataSize + 1)));
                BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(dataSize + 1), crc);
                File.WriteAllBytes(prefix + ".index", bad);
                Expect(() =>
                {
                    using var r = TfBundleReader.Open(prefix);
                    foreach (var t in r.Tensors)
                    {
                        if (t.IsSliced || (TfBundleReader.ToScalarType(t.DType) is null && t.DType != TfDataType.String)) continue;
                        if (t.DType == TfDataType.String) r.ReadStrings(t.Name);
                        else r.ReadTensor(t.Name).Dispose();
                    }
                }, $"{fixture} index mutation {i}");
            }
        }
    }

    static ulong ReadVarint(byte[] b, ref int pos)
    {
        ulong v = 0;
        for (var shift = 0; ; shift += 7)
        {
            var x = b[pos++];
            v |= (ulong)(x & 0x7f) << shift;
            if ((x & 0x80) == 0) return v;
        }
    }

    [Fact]
    public void CorruptSnappy_FailsCleanly()
    {
        byte[] good = [13, 2 << 2, (byte)'a', (byte)'b', (byte)'c', 0b000_101_01, 3, 0, (byte)'X'];
        var rng = new Random(5);
        for (var i = 0; i < 2000; i++)
        {
            var bad = i % 4 == 0 ? good[..rng.Next(good.Length)] : Mutate(good, rng, 0, good.Length);
            Expect(() => Snappy.Decompress(bad), $"snappy mutation {i}");
        }
    }
}
