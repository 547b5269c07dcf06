using System.Buffers.Binary;
using System.Text;
using BertSharp.Checkpoints;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Checkpoints;

/// <summary>
/// Seeded random corruption of every format: the readers must either refuse with one of their documented exception
/// types and a message — never IndexOutOfRange, InvalidCast, Overflow, OutOfMemory or a native crash — or succeed
/// with the original output, or (where the format has nothing to check a change against) with output that still
/// obeys the invariant each test states. A reader that ignores the corruption fails these.
/// </summary>
public class RobustnessTests
{
    static bool Documented(Exception e) => e is InvalidDataException or FileNotFoundException or NotSupportedException;

    /// <summary>Runs <paramref name="load"/>; returns its result, or null when it refused cleanly.</summary>
    static T? Expect<T>(Func<T> load, string what) where T : class
    {
        try { return load(); }
        catch (Exception e) when (Documented(e)) { Assert.False(string.IsNullOrWhiteSpace(e.Message)); return null; }
        catch (Exception e) { Assert.Fail($"{what}: undocumented {e.GetType().Name}: {e.Message}\n{e.StackTrace}"); return null; }
    }

    /// <summary>name → dtype, shape and bytes of each tensor (disposes them).</summary>
    static SortedDictionary<string, string> Describe(Dictionary<string, Tensor> tensors)
    {
        var d = new SortedDictionary<string, string>(StringComparer.Ordinal);
        foreach (var (k, t) in tensors)
        {
            using var c = t.contiguous();
            d[k] = $"{t.dtype}[{string.Join(",", t.shape)}]:{Convert.ToHexString(c.numel() == 0 ? [] : c.bytes.ToArray())}";
            t.Dispose();
        }
        return d;
    }

    static string Bytes(string described) => described[(described.IndexOf(':') + 1)..];

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
        TorchZip.Write(path, pickle, storages);
        var original = Describe(TorchPickle.Load(path));
        var zipBytes = File.ReadAllBytes(path);
        int refused = 0, identical = 0;
        for (var i = 0; i < 400; i++)
        {
            // (1) A pickle that is itself valid zip content (new CRC): nothing can tell a renamed key, but whatever loads
            // must be views of the real storages — every value one the storages hold, never bytes from elsewhere.
            var bad = i % 5 == 0 ? pickle[..rng.Next(pickle.Length)] : Mutate(pickle, rng, 0, pickle.Length);
            TorchZip.Write(path, bad, storages);
            var got = Expect(() => Describe(TorchPickle.Load(path)), $"pickle mutation {i}");
            if (got is not null)
                foreach (var (name, desc) in got)
                {
                    var hex = Bytes(desc);
                    Assert.True(hex.Length % 8 == 0 && (desc.StartsWith("Float32", StringComparison.Ordinal)
                        ? Enumerable.Range(0, hex.Length / 8).All(k => TorchZip.Floats(0, 1, 2, 3, 4, 5).AsSpan().IndexOf(Convert.FromHexString(hex.Substring(8 * k, 8))) % 4 == 0)
                        : desc.StartsWith("Int64", StringComparison.Ordinal) && hex.Length % 16 == 0 && Enumerable.Range(0, hex.Length / 16).All(k => hex.Substring(16 * k, 16) == "0300000000000000")),
                        $"pickle mutation {i}: tensor '{name}' holds values that are not in its storage: {desc}");
                }
            // (2) The same damage to the file on disk: the zip CRC-32 makes it refused, or harmless.
            var disk = Mutate(zipBytes, rng, 0, zipBytes.Length);
            File.WriteAllBytes(path, disk);
            var fromDisk = Expect(() => Describe(TorchPickle.Load(path)), $"zip mutation {i}");
            if (fromDisk is null) { refused++; continue; }
            Assert.True(original.SequenceEqual(fromDisk), $"zip mutation {i}: loaded without error but differs from the original");
            identical++;
        }
        Assert.True(refused > 100, $"only {refused} of 400 damaged files refused ({identical} harmless)");
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
        var original = Describe(SafeTensors.Load(good));
        var rng = new Random(99);
        var path = dir.File("fuzz.safetensors");
        int refused = 0;
        for (var i = 0; i < 400; i++)
        {
            var bad = i % 7 == 0 ? bytes[..rng.Next(bytes.Length)] : Mutate(bytes, rng, 0, headerEnd);
            File.WriteAllBytes(path, bad);
            var got = Expect(() => Describe(SafeTensors.Load(path)), $"safetensors mutation {i}");
            if (got is null) { refused++; continue; }
            // safetensors has no checksum, so a changed tensor name or a dtype of the same width (F32 → I32) cannot be
            // seen here (the model loader refuses the latter); the shapes and bytes of the tensors must be the original's.
            Assert.Equal(original.Values.Select(v => v[v.IndexOf('[')..]).Order(StringComparer.Ordinal), got.Values.Select(v => v[v.IndexOf('[')..]).Order(StringComparer.Ordinal));
        }
        Assert.True(refused > 200, $"only {refused} of 400 damaged headers refused");
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
            var originalBytes = new HashSet<string>(StringComparer.Ordinal);
            using (var r0 = TfBundleReader.Open(prefix))
                foreach (var t in r0.Tensors)
                    if (!t.IsSliced && TfBundleReader.ToScalarType(t.DType) is not null)
                        originalBytes.Add(Bytes(Describe(new() { [t.Name] = r0.ReadTensor(t.Name) }).Values.Single()));
            for (var i = 0; i < 300; i++)
            {
                var bad = Mutate(index, rng, 0, dataSize);
                var crc = Crc32C.Mask(Crc32C.Compute(bad.AsSpan(0, dataSize + 1)));
                BinaryPrimitives.WriteUInt32LittleEndian(bad.AsSpan(dataSize + 1), crc);
                File.WriteAllBytes(prefix + ".index", bad);
                var got = Expect(() =>
                {
                    using var r = TfBundleReader.Open(prefix);
                    var read = new List<string>();
                    foreach (var t in r.Tensors)
                    {
                        if (t.IsSliced || (TfBundleReader.ToScalarType(t.DType) is null && t.DType != TfDataType.String)) continue;
                        if (t.DType == TfDataType.String) r.ReadStrings(t.Name);
                        else read.Add(Bytes(Describe(new() { [t.Name] = r.ReadTensor(t.Name) }).Values.Single()));
                    }
                    return read;
                }, $"{fixture} index mutation {i}");
                // Every tensor that reads is covered by its crc32c: its bytes are some original tensor's bytes (a
                // renamed key or retyped entry is the index's business; the model loader checks names and dtypes).
                if (got is not null)
                    Assert.All(got, b => Assert.Contains(b, originalBytes));
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
            var got = Expect(() => Snappy.Decompress(bad), $"snappy mutation {i}");
            // Snappy has no checksum (TF's block crc32c covers it), but a decoder must produce exactly the length its
            // preamble declares: never a short or overlong buffer.
            if (got is not null)
            {
                var at = 0;
                ulong declared = 0;
                for (var shift = 0; at < bad.Length; shift += 7)
                {
                    declared |= (ulong)(bad[at] & 0x7f) << shift;
                    if ((bad[at++] & 0x80) == 0) break;
                }
                Assert.Equal(declared, (ulong)got.Length);
            }
        }
    }
}
