using System.Text.Json;
using BertSharp.Checkpoints;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Checkpoints;

public class TfBundleTests
{
    const string Manifest = "golden/tf/manifest.json";

    public static IEnumerable<object[]> Fixtures() =>
    [
        ["keras-bert-tiny"], ["overtopping-2shards"], ["cppflow-mnist-double"], ["tfnet-keras-mlp-npy"], ["tfnet-keras-lstm"],
        ["rust-keras-adam"], ["serving-half-plus-two-tf2-snappy"], ["serving-half-plus-two-tf1-snappy"],
        ["serving-half-plus-two-mkl-rank4"], ["tf2onnx-regression-ckpt"],
    ];

    static JsonElement Fixture(string name)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestAssets.Path(Manifest)));
        return doc.RootElement.GetProperty(name).Clone();
    }

    static string Prefix(string fixture) =>
        Path.Combine(TestAssets.Path($"golden/tf/{fixture}"), Fixture(fixture).GetProperty("prefix").GetString()!);

    [AssetFact(Manifest)]
    public void Manifest_ListsEveryFixtureDirectory()
    {
        var dirs = Directory.GetDirectories(TestAssets.Path("golden/tf")).Select(Path.GetFileName).Order(StringComparer.Ordinal);
        Assert.Equal(dirs, Fixtures().Select(f => (string)f[0]).Order(StringComparer.Ordinal));
    }

    [AssetTheory(Manifest)]
    [MemberData(nameof(Fixtures))]
    public void Fixture_IndexMatchesManifest_AndEveryTensorReadsWithValidCrc(string fixture)
    {
        var fx = Fixture(fixture);
        using var reader = TfBundleReader.Open(Prefix(fixture));
        Assert.Equal(fx.GetProperty("header").GetProperty("num_shards").GetInt32(), reader.NumShards);
        var expected = fx.GetProperty("tensors").EnumerateArray().ToList();
        Assert.Equal(expected.Count, reader.Tensors.Count);
        for (var i = 0; i < expected.Count; i++)
        {
            var e = expected[i];
            var t = reader.Tensors[i];
            Assert.Equal(e.GetProperty("name").GetString(), t.Name);
            Assert.Equal(e.GetProperty("dtype").GetInt32(), (int)t.DType);
            Assert.Equal(e.GetProperty("dtype_name").GetString(), t.DTypeName);
            Assert.Equal(e.GetProperty("shape").EnumerateArray().Select(x => x.GetInt64()), t.Shape);
            Assert.Equal(e.GetProperty("shard").GetInt32(), t.ShardId);
            Assert.Equal(e.GetProperty("offset").GetInt64(), t.Offset);
            Assert.Equal(e.GetProperty("size").GetInt64(), t.Size);
            Assert.Equal(e.GetProperty("crc32c_masked").GetUInt32(), t.MaskedCrc32C);
            Assert.False(t.IsSliced);
        }
        // Every tensor is read and checked against its entry crc32c (strings with TF's string-tensor rule).
        foreach (var t in reader.Tensors)
        {
            if (t.DType == TfDataType.String)
            {
                var s = reader.ReadStrings(t.Name);
                Assert.Equal(t.ElementCount, s.Length);
                continue;
            }
            using var x = reader.ReadTensor(t.Name);
            Assert.Equal(t.Shape, x.shape);
            Assert.Equal(TfBundleReader.ToScalarType(t.DType), x.dtype);
        }
        // Check values: first values and exact sums.
        foreach (var c in fx.GetProperty("checks").EnumerateArray())
        {
            var name = c.GetProperty("name").GetString()!;
            using var x = reader.ReadTensor(name);
            using var d = x.to_type(ScalarType.Float64).flatten();
            var values = d.data<double>().ToArray();
            Assert.Equal(c.GetProperty("count").GetInt64(), values.Length);
            var first = c.GetProperty("first5").EnumerateArray().Select(v => v.GetDouble()).ToArray();
            for (var i = 0; i < first.Length; i++) Assert.Equal(first[i], values[i]); // exact: same float32/float64 values
            var sum = c.GetProperty("sum").GetDouble();
            var mine = values.Sum();
            Assert.True(Math.Abs(mine - sum) <= 1e-6 * Math.Max(1, Math.Abs(sum)), $"{fixture}/{name}: sum {mine} vs {sum}");
            // Order matters too: Σ (i+1)·v_i of the reader's tensor against the same sum over the raw little-endian
            // values at the manifest's shard/offset/size (read here without the reader), itself checked against the
            // manifest's sum. A reader that permutes, transposes or reverses values passes the plain sum, not this.
            var entry = fx.GetProperty("tensors").EnumerateArray().Single(e => e.GetProperty("name").GetString() == name);
            var raw = RawValues(fixture, fx, entry);
            Assert.True(Math.Abs(raw.Sum() - sum) <= 1e-6 * Math.Max(1, Math.Abs(sum)), $"{fixture}/{name}: raw sum {raw.Sum()} vs manifest {sum}");
            Assert.Equal(raw.Length, values.Length);
            double Weighted(double[] v) => v.Select((x, i) => (i + 1) * x).Sum();
            var expectedWeighted = Weighted(raw);
            Assert.True(Math.Abs(Weighted(values) - expectedWeighted) <= 1e-9 * Math.Max(1, Math.Abs(expectedWeighted)),
                $"{fixture}/{name}: position-weighted sum {Weighted(values)} vs raw {expectedWeighted}");
        }
    }

    /// <summary>The values of a float/double tensor straight from its data shard, by the manifest's offset and size.</summary>
    static double[] RawValues(string fixture, JsonElement fx, JsonElement entry)
    {
        var shards = fx.GetProperty("header").GetProperty("num_shards").GetInt32();
        var shard = entry.GetProperty("shard").GetInt32();
        var bytes = File.ReadAllBytes($"{Prefix(fixture)}.data-{shard:D5}-of-{shards:D5}")
            .AsMemory((int)entry.GetProperty("offset").GetInt64(), (int)entry.GetProperty("size").GetInt64());
        return entry.GetProperty("dtype_name").GetString() switch
        {
            "DT_FLOAT" => Enumerable.Range(0, bytes.Length / 4).Select(i => (double)System.Buffers.Binary.BinaryPrimitives.ReadSingleLittleEndian(bytes.Span.Slice(4 * i))).ToArray(),
            "DT_DOUBLE" => Enumerable.Range(0, bytes.Length / 8).Select(i => System.Buffers.Binary.BinaryPrimitives.ReadDoubleLittleEndian(bytes.Span.Slice(8 * i))).ToArray(),
            var other => throw new InvalidOperationException($"check tensor of dtype {other}"),
        };
    }

    [AssetTheory(Manifest)]
    [InlineData("keras-bert-tiny", "global_step", 20L)]
    [InlineData("tfnet-keras-lstm", "optimizer/_iterations/.ATTRIBUTES/VARIABLE_VALUE", 10L)]
    [InlineData("rust-keras-adam", "optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE", 1L)]
    public void Int64Scalars(string fixture, string name, long value)
    {
        using var reader = TfBundleReader.Open(Prefix(fixture));
        using var t = reader.ReadTensor(name);
        Assert.Equal(ScalarType.Int64, t.dtype);
        Assert.Empty(t.shape);
        Assert.Equal(value, t.item<long>());
    }

    [AssetTheory(Manifest)]
    [InlineData("serving-half-plus-two-tf2-snappy", 613, "0a98010a05120161")]
    [InlineData("tfnet-keras-mlp-npy", 3968, "0ab2020a0b080112")]
    [InlineData("tfnet-keras-lstm", 5312, "0a9a020a18080112")]
    [InlineData("rust-keras-adam", 4647, "0ae6010a18080112")]
    public void StringTensor_ObjectGraph(string fixture, int length, string firstBytesHex)
    {
        using var reader = TfBundleReader.Open(Prefix(fixture));
        var s = reader.ReadStrings("_CHECKPOINTABLE_OBJECT_GRAPH");
        Assert.Single(s);
        Assert.Equal(length, s[0].Length);
        Assert.Equal(firstBytesHex, Convert.ToHexStringLower(s[0].AsSpan(0, 8)));
        Assert.Throws<InvalidOperationException>(() => reader.ReadTensor("_CHECKPOINTABLE_OBJECT_GRAPH"));
    }

    [AssetTheory(Manifest)]
    [InlineData("serving-half-plus-two-tf1-snappy", "a", "b", "c2")]
    [InlineData("serving-half-plus-two-tf2-snappy", "a/.ATTRIBUTES/VARIABLE_VALUE", "b/.ATTRIBUTES/VARIABLE_VALUE", "c/.ATTRIBUTES/VARIABLE_VALUE")]
    public void SnappyFixtures_HalfPlusTwo(string fixture, string a, string b, string c)
    {
        var index = File.ReadAllBytes(Prefix(fixture) + ".index");
        var fx = Fixture(fixture);
        Assert.Equal(1, index[TfSnappyDataBlockTypeOffset(index)]); // the data block really is Snappy-compressed
        using var reader = TfBundleReader.Open(Prefix(fixture) + ".index"); // prefix given with .index
        using var ta = reader.ReadTensor(a);
        using var tb = reader.ReadTensor(b);
        using var tc = reader.ReadTensor(c);
        Assert.Equal(0.5f, ta.item<float>());
        Assert.Equal(2.0f, tb.item<float>());
        Assert.Equal(3.0f, tc.item<float>());
        Assert.Equal(fx.GetProperty("tensors").GetArrayLength(), reader.Tensors.Count);
    }

    /// <summary>Position of the compression-type byte of the (single) data block: just before the metaindex block's bytes.</summary>
    static int TfSnappyDataBlockTypeOffset(byte[] index)
    {
        // Footer starts with the metaindex handle; the data block is the first block, ending 5 bytes before the
        // metaindex block starts (its trailer = type byte + crc).
        var pos = index.Length - 48;
        var metaOffset = 0;
        for (var shift = 0; ; shift += 7)
        {
            var b = index[pos++];
            metaOffset |= (b & 0x7f) << shift;
            if ((b & 0x80) == 0) break;
        }
        return metaOffset - 5;
    }

    [AssetFact(Manifest)]
    public void TwoShards_ReadsFromBothShards()
    {
        using var reader = TfBundleReader.Open(Prefix("overtopping-2shards"));
        Assert.Equal(2, reader.NumShards);
        Assert.Contains(reader.Tensors, t => t.ShardId == 0);
        Assert.Contains(reader.Tensors, t => t.ShardId == 1);
        Assert.Equal(0, reader.Find("global_step")!.ShardId);
        using var step = reader.ReadTensor("global_step");
        Assert.Equal(58554.0f, step.item<float>());
        using var k = reader.ReadTensor("dense/kernel");
        Assert.Equal(1, reader.Find("dense/kernel")!.ShardId);
        Assert.Equal(8192, k.numel());
    }

    [AssetFact(Manifest, "golden/tf/tfnet-keras-mlp-npy/bias0.npy", "golden/tf/tfnet-keras-mlp-npy/kernel1.npy")]
    public void Npy_MatchesBundleTensorsBitForBit()
    {
        using var reader = TfBundleReader.Open(Prefix("tfnet-keras-mlp-npy"));
        foreach (var (npy, name) in new[] { ("bias0.npy", "layer_with_weights-0/bias/.ATTRIBUTES/VARIABLE_VALUE"), ("kernel1.npy", "layer_with_weights-1/kernel/.ATTRIBUTES/VARIABLE_VALUE") })
        {
            var arr = Npy.Read(TestAssets.Path("golden/tf/tfnet-keras-mlp-npy/" + npy));
            using var t = reader.ReadTensor(name);
            Assert.Equal("<f4", arr.Descr);
            Assert.Equal(t.shape, arr.Shape);
            Assert.True(t.bytes.SequenceEqual(arr.Data), name);
            Assert.Equal(t.data<float>().ToArray(), arr.ToFloat());
        }
    }

    [AssetFact(Manifest)]
    public void UnknownTensorName_IsClear()
    {
        using var reader = TfBundleReader.Open(Prefix("tf2onnx-regression-ckpt"));
        var ex = Assert.Throws<KeyNotFoundException>(() => reader.ReadTensor("nope"));
        Assert.Contains("no tensor named 'nope'", ex.Message);
    }

    // ---- corruption ------------------------------------------------------------------------------------------------

    /// <summary>Copies a fixture's bundle files into a temp dir; returns the new prefix.</summary>
    static string CopyFixture(string fixture, TempDir dir, bool withData = true)
    {
        var prefix = Prefix(fixture);
        var src = Path.GetDirectoryName(prefix)!;
        var baseName = Path.GetFileName(prefix);
        foreach (var f in Directory.GetFiles(src, baseName + ".*"))
        {
            if (!withData && f.Contains(".data-", StringComparison.Ordinal)) continue;
            File.Copy(f, dir.File(Path.GetFileName(f)));
        }
        return dir.File(baseName);
    }

    [AssetFact(Manifest)]
    public void WrongMagic_IsRefused()
    {
        using var dir = new TempDir();
        var prefix = CopyFixture("tf2onnx-regression-ckpt", dir);
        var index = File.ReadAllBytes(prefix + ".index");
        index[^1] ^= 0xff;
        File.WriteAllBytes(prefix + ".index", index);
        var ex = Assert.Throws<InvalidDataException>(() => TfBundleReader.Open(prefix));
        Assert.Contains("bad table magic", ex.Message);
        Assert.Contains("model.index", ex.Message);
    }

    [AssetFact(Manifest)]
    public void BlockCrcCorruption_IsDetected()
    {
        using var dir = new TempDir();
        var prefix = CopyFixture("keras-bert-tiny", dir);
        var index = File.ReadAllBytes(prefix + ".index");
        index[100] ^= 0x01; // inside the data block (key bytes of some entry)
        File.WriteAllBytes(prefix + ".index", index);
        var ex = Assert.Throws<InvalidDataException>(() => TfBundleReader.Open(prefix));
        Assert.Contains("data block at offset 0", ex.Message);
        Assert.Contains("fails its crc32c check", ex.Message);
    }

    [AssetFact(Manifest)]
    public void SnappyBlockCorruption_IsDetected()
    {
        using var dir = new TempDir();
        var prefix = CopyFixture("serving-half-plus-two-tf1-snappy", dir);
        var index = File.ReadAllBytes(prefix + ".index");
        index[10] ^= 0x40;
        File.WriteAllBytes(prefix + ".index", index);
        var ex = Assert.Throws<InvalidDataException>(() => TfBundleReader.Open(prefix));
        Assert.Contains("fails its crc32c check", ex.Message);
    }

    [AssetFact(Manifest)]
    public void DataShardCrcMismatch_IsDetected()
    {
        using var dir = new TempDir();
        var prefix = CopyFixture("keras-bert-tiny", dir);
        var shard = prefix + ".data-00000-of-00001";
        var data = File.ReadAllBytes(shard);
        data[960 + 5] ^= 0x10; // inside bert/embeddings/word_embeddings (offset 960, 240 bytes)
        File.WriteAllBytes(shard, data);
        using var reader = TfBundleReader.Open(prefix);
        using (var ok = reader.ReadTensor("bert/embeddings/LayerNorm/beta")) Assert.Equal(4, ok.numel());
        var ex = Assert.Throws<InvalidDataException>(() => reader.ReadTensor("bert/embeddings/word_embeddings"));
        Assert.Contains("tensor 'bert/embeddings/word_embeddings'", ex.Message);
        Assert.Contains("fails its crc32c check (index says 6cd188be", ex.Message);
    }

    [AssetFact(Manifest)]
    public void StringTensorCorruption_IsDetected()
    {
        using var dir = new TempDir();
        var prefix = CopyFixture("serving-half-plus-two-tf2-snappy", dir);
        using (var r0 = TfBundleReader.Open(prefix))
        {
            var info = r0.Find("_CHECKPOINTABLE_OBJECT_GRAPH")!;
            var shard = prefix + ".data-00000-of-00001";
            var data = File.ReadAllBytes(shard);
            data[info.Offset + info.Size - 3] ^= 0x01; // inside the string bytes
            File.WriteAllBytes(shard, data);
        }
        using var reader = TfBundleReader.Open(prefix);
        var ex = Assert.Throws<InvalidDataException>(() => reader.ReadStrings("_CHECKPOINTABLE_OBJECT_GRAPH"));
        Assert.Contains("fails its crc32c check", ex.Message);
    }

    [AssetFact(Manifest)]
    public void MissingDataShard_IsReported()
    {
        using var dir = new TempDir();
        var prefix = CopyFixture("overtopping-2shards", dir, withData: false);
        File.Copy(Prefix("overtopping-2shards") + ".data-00000-of-00002", prefix + ".data-00000-of-00002");
        var ex = Assert.Throws<FileNotFoundException>(() => TfBundleReader.Open(prefix));
        Assert.Contains("variables.data-00001-of-00002", ex.Message);
        Assert.Contains("shard 1 of 2", ex.Message);
    }

    [AssetFact(Manifest)]
    public void TruncatedDataShard_IsReported()
    {
        using var dir = new TempDir();
        var prefix = CopyFixture("keras-bert-tiny", dir);
        var shard = prefix + ".data-00000-of-00001";
        File.WriteAllBytes(shard, File.ReadAllBytes(shard)[..8000]);
        using var reader = TfBundleReader.Open(prefix);
        var ex = Assert.Throws<InvalidDataException>(() => reader.ReadTensor("global_step"));
        Assert.Contains("only 8000 bytes", ex.Message);
    }

    [Fact]
    public void MissingIndex_IsReported()
    {
        var ex = Assert.Throws<FileNotFoundException>(() => TfBundleReader.Open("/nonexistent/dir/model.ckpt"));
        Assert.Contains("/nonexistent/dir/model.ckpt.index", ex.Message);
    }

    // ---- primitives ------------------------------------------------------------------------------------------------

    [Fact]
    public void Crc32C_KnownVectors()
    {
        Assert.Equal(0xE3069283u, Crc32C.Compute("123456789"u8));
        Assert.Equal(0u, Crc32C.Compute([]));
        Assert.Equal(0x8A9136AAu, Crc32C.Compute(new byte[32]));
        var data = Enumerable.Range(0, 1000).Select(i => (byte)(i * 7)).ToArray();
        Assert.Equal(Crc32C.Compute(data), Crc32C.Extend(Crc32C.Compute(data.AsSpan(0, 333)), data.AsSpan(333)));
        Assert.Equal(0x12345678u, Crc32C.Unmask(Crc32C.Mask(0x12345678u)));
    }

    /// <summary>The same engine with zip's polynomial: the standard check value, and agreement with the zip writer's CRCs.</summary>
    [Fact]
    public void ZipCrc32_KnownVectors()
    {
        Assert.Equal(0xCBF43926u, Crc32.Zip.Compute("123456789"u8));
        Assert.Equal(0u, Crc32.Zip.Compute([]));
        var data = Enumerable.Range(0, 1000).Select(i => (byte)(i * 13)).ToArray();
        Assert.Equal(Crc32.Zip.Compute(data), Crc32.Zip.Extend(Crc32.Zip.Compute(data.AsSpan(0, 517)), data.AsSpan(517)));
        using var ms = new MemoryStream();
        using (var zip = new System.IO.Compression.ZipArchive(ms, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
        using (var e = zip.CreateEntry("x", System.IO.Compression.CompressionLevel.NoCompression).Open()) e.Write(data);
        ms.Position = 0;
        using var read = new System.IO.Compression.ZipArchive(ms);
        Assert.Equal(read.GetEntry("x")!.Crc32, Crc32.Zip.Compute(data));
    }

    [Fact]
    public void Snappy_LiteralsAndOverlappingCopies()
    {
        // "abcabcabcabcX": literal "abc", copy-1 (len 9, offset 3, overlapping), literal "X".
        byte[] block = [13, 2 << 2, (byte)'a', (byte)'b', (byte)'c', 0b000_101_01, 3, 0, (byte)'X'];
        Assert.Equal("abcabcabcabcX"u8.ToArray(), Snappy.Decompress(block));
        // copy-2: length 4 at offset 4 after "wxyz".
        byte[] block2 = [8, 3 << 2, (byte)'w', (byte)'x', (byte)'y', (byte)'z', (3 << 2) | 2, 4, 0];
        Assert.Equal("wxyzwxyz"u8.ToArray(), Snappy.Decompress(block2));
        var ex = Assert.Throws<InvalidDataException>(() => Snappy.Decompress([5, 0b000_000_01, 9]));
        Assert.Contains("offset 9 is outside", ex.Message);
        ex = Assert.Throws<InvalidDataException>(() => Snappy.Decompress([9, 2 << 2, (byte)'a', (byte)'b', (byte)'c']));
        Assert.Contains("produced 3 bytes, the header declared 9", ex.Message);
    }
}
