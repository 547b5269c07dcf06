using System.Text;
using System.Text.Json;
using BertSharp.Checkpoints;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Checkpoints;

public class SafeTensorsAndTorchTests
{
    const string TinySt = TestAssets.TinyRandom + "/model.safetensors";
    const string TinyBin = TestAssets.TinyRandom + "/pytorch_model.bin";
    const string TinyConfig = TestAssets.TinyRandom + "/config.json";

    static void DisposeAll(Dictionary<string, Tensor> d)
    {
        foreach (var t in d.Values) t.Dispose();
    }

    [AssetFact(TinySt, TinyBin, TinyConfig)]
    public void TinyRandom_SafetensorsAndTorchZip_SameNamesAndBitIdenticalValues()
    {
        var st = SafeTensors.Load(TestAssets.Path(TinySt));
        var bin = TorchPickle.Load(TestAssets.Path(TinyBin));
        try
        {
            // The .bin additionally holds the position_ids buffer and the tied decoder entries (golden/README.md).
            var extra = new[] { "bert.embeddings.position_ids", "cls.predictions.decoder.weight", "cls.predictions.decoder.bias" };
            Assert.Equal(46, st.Count);
            Assert.Equal(st.Keys.Concat(extra).Order(StringComparer.Ordinal), bin.Keys.Order(StringComparer.Ordinal));
            foreach (var (name, a) in st)
            {
                var b = bin[name];
                Assert.Equal(ScalarType.Float32, a.dtype);
                Assert.Equal(a.dtype, b.dtype);
                Assert.Equal(a.shape, b.shape);
                Assert.True(a.bytes.SequenceEqual(b.bytes), $"{name}: values differ between safetensors and pytorch_model.bin");
            }
            Assert.True(bin["cls.predictions.decoder.weight"].bytes.SequenceEqual(st["bert.embeddings.word_embeddings.weight"].bytes));
            Assert.True(bin["cls.predictions.decoder.bias"].bytes.SequenceEqual(st["cls.predictions.bias"].bytes));
            var pos = bin["bert.embeddings.position_ids"];
            Assert.Equal(ScalarType.Int64, pos.dtype);
            Assert.Equal(new long[] { 1, 512 }, pos.shape);
            Assert.Equal(Enumerable.Range(0, 512).Select(i => (long)i), pos.data<long>().ToArray());

            using var cfg = JsonDocument.Parse(File.ReadAllText(TestAssets.Path(TinyConfig)));
            long C(string k) => cfg.RootElement.GetProperty(k).GetInt64();
            long h = C("hidden_size"), v = C("vocab_size"), inter = C("intermediate_size");
            Assert.Equal(new[] { v, h }, st["bert.embeddings.word_embeddings.weight"].shape);
            Assert.Equal(new[] { C("max_position_embeddings"), h }, st["bert.embeddings.position_embeddings.weight"].shape);
            Assert.Equal(new[] { C("type_vocab_size"), h }, st["bert.embeddings.token_type_embeddings.weight"].shape);
            Assert.Equal(new[] { v }, st["cls.predictions.bias"].shape);
            Assert.Equal(new[] { 2L, h }, st["cls.seq_relationship.weight"].shape);
            for (var l = 0; l < C("num_hidden_layers"); l++)
            {
                var p = $"bert.encoder.layer.{l}.";
                Assert.Equal(new[] { h, h }, st[p + "attention.self.query.weight"].shape);
                Assert.Equal(new[] { inter, h }, st[p + "intermediate.dense.weight"].shape);
                Assert.Equal(new[] { h, inter }, st[p + "output.dense.weight"].shape);
                Assert.Equal(new[] { inter }, st[p + "intermediate.dense.bias"].shape);
            }
            Assert.False(st.ContainsKey($"bert.encoder.layer.{C("num_hidden_layers")}.output.dense.bias"));
        }
        finally
        {
            DisposeAll(st);
            DisposeAll(bin);
        }
    }

    [AssetFact(TinySt)]
    public void TinyRandom_Metadata()
    {
        var meta = SafeTensors.ReadMetadata(TestAssets.Path(TinySt));
        Assert.Equal("pt", meta["format"]);
        Assert.Contains("cls.predictions.decoder.weight=bert.embeddings.word_embeddings.weight", meta["tied"]);
    }

    [Fact]
    public void SafeTensors_SaveLoad_RoundTrip_AllDtypes_AndMetadata()
    {
        using var dir = new TempDir();
        var path = dir.File("rt.safetensors");
        using var f32 = torch.arange(0, 12, dtype: ScalarType.Float32).reshape(3, 4) / 7;
        using var bf16 = torch.tensor(new float[] { 1.5f, -2.25f, 3e-3f, 65504f }).to_type(ScalarType.BFloat16);
        using var f16 = torch.tensor(new float[] { 0.1f, -0.5f, 1000f }).to_type(ScalarType.Float16);
        using var i64 = torch.tensor(new long[] { long.MinValue, -1, 0, 1, long.MaxValue }).reshape(5, 1);
        using var big = torch.randn(64, 33);
        using var strided = big.t(); // non-contiguous: must be written in logical order
        using var scalar = torch.tensor(42.0);
        var meta = new Dictionary<string, string> { ["format"] = "pt", ["note"] = "héllo \"quoted\"" };
        var tensors = new Dictionary<string, Tensor>
        {
            ["z.f32"] = f32, ["a.bf16"] = bf16, ["m.f16"] = f16, ["b.i64"] = i64, ["t.strided"] = strided, ["s.f64"] = scalar,
        };
        SafeTensors.Save(path, tensors, meta);

        Assert.False(File.Exists(path + ".tmp"));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
        var bytes = File.ReadAllBytes(path);
        var headerLen = BitConverter.ToUInt64(bytes);
        Assert.Equal(0UL, headerLen % 8);
        var header = Encoding.UTF8.GetString(bytes, 8, (int)headerLen);
        Assert.True(header.EndsWith('}') || header.EndsWith(' '));
        // Sorted names: data offsets increase in name order.
        var entries = SafeTensors.ReadEntries(path);
        Assert.Equal(tensors.Keys.Order(StringComparer.Ordinal), entries.Select(e => e.Name));
        Assert.Equal(["BF16", "I64", "F16", "F64", "F32", "F32"], entries.Select(e => e.DType));

        var loaded = SafeTensors.Load(path);
        try
        {
            Assert.Equal(tensors.Count, loaded.Count);
            foreach (var (name, t) in tensors)
            {
                var l = loaded[name];
                Assert.Equal(t.dtype, l.dtype);
                Assert.Equal(t.shape, l.shape);
                using var c = t.contiguous();
                Assert.True(c.bytes.SequenceEqual(l.bytes), name);
            }
            Assert.Equal(-2.25f, loaded["a.bf16"].to_type(ScalarType.Float32)[1].item<float>());
            Assert.Equal(long.MinValue, loaded["b.i64"][0, 0].item<long>());
        }
        finally { DisposeAll(loaded); }
        Assert.Equal(meta, SafeTensors.ReadMetadata(path));

        // Overwrite in place (atomic replace) with no metadata.
        SafeTensors.Save(path, new Dictionary<string, Tensor> { ["only"] = i64 });
        Assert.Empty(SafeTensors.ReadMetadata(path));
        Assert.Equal(["only"], SafeTensors.ReadEntries(path).Select(e => e.Name));
        Assert.False(File.Exists(path + ".tmp"));
    }

    [Fact]
    public void SafeTensors_ChunkedCopyPath_GivesSameBytes()
    {
        using var dir = new TempDir();
        var path = dir.File("chunk.safetensors");
        using var t = torch.randn(37, 11);
        var old = TensorMemory.ChunkBytes;
        TensorMemory.ChunkBytes = 40; // 10 floats per chunk: forces the narrow()-based path for reading and writing
        try
        {
            SafeTensors.Save(path, new Dictionary<string, Tensor> { ["x"] = t });
            var loaded = SafeTensors.Load(path);
            TensorMemory.ChunkBytes = old;
            using var x = loaded["x"];
            Assert.True(t.bytes.SequenceEqual(x.bytes));
        }
        finally { TensorMemory.ChunkBytes = old; }
    }

    static string WriteRaw(TempDir dir, string name, string header, int dataBytes, ulong? declaredLength = null)
    {
        var h = Encoding.UTF8.GetBytes(header);
        var path = dir.File(name);
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes(declaredLength ?? (ulong)h.Length));
        fs.Write(h);
        fs.Write(new byte[dataBytes]);
        return path;
    }

    [Fact]
    public void SafeTensors_Truncated_IsRefused()
    {
        using var dir = new TempDir();
        var path = WriteRaw(dir, "trunc.safetensors", """{"w":{"dtype":"F32","shape":[4,4],"data_offsets":[0,64]}}""", 40);
        var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.Contains("'w'", ex.Message);
        Assert.Contains("run past the end of the data (40 bytes", ex.Message);
        File.WriteAllBytes(dir.File("tiny.safetensors"), [1, 2, 3]);
        ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(dir.File("tiny.safetensors")));
        Assert.Contains("truncated: 3 bytes", ex.Message);
    }

    [Fact]
    public void SafeTensors_HeaderLengthTooBig_IsRefused()
    {
        using var dir = new TempDir();
        var path = WriteRaw(dir, "big.safetensors", "{}", 0, declaredLength: 1UL << 40);
        var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.Contains("header length 1099511627776 exceeds", ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void SafeTensors_BadJsonHeader_IsRefused()
    {
        using var dir = new TempDir();
        var path = WriteRaw(dir, "json.safetensors", """{"w":{"dtype":"F32",""", 16);
        var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.Contains("header is not valid JSON", ex.Message);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", "overlap")]
    [InlineData("""{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}""", "needs 12 bytes but data_offsets [0, 8] span 8")]
    [InlineData("""{"a":{"dtype":"Q7","shape":[2],"data_offsets":[0,8]}}""", "unsupported dtype 'Q7'")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[8,0]}}""", "end before they begin")]
    [InlineData("""{"a":{"dtype":"F32","shape":[-2],"data_offsets":[0,8]}}""", "not a non-negative integer")]
    [InlineData("""[1,2]""", "expected the header to be a JSON object")]
    public void SafeTensors_InvalidHeaders_AreRefused(string header, string expected)
    {
        using var dir = new TempDir();
        var path = WriteRaw(dir, "bad.safetensors", header, 16);
        var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.Contains(expected, ex.Message);
    }

    // ---- PyTorch zip ------------------------------------------------------------------------------------------------

    [Fact]
    public void TorchZip_HandBuilt_OffsetsStridesAndSharedStorage()
    {
        using var dir = new TempDir();
        var p = new PickleWriter().Proto().Global("collections", "OrderedDict").Op((byte)')').Reduce().Mark();
        p.Str("a").Tensor("FloatStorage", "0", 6, 0, [2, 3], [3, 1]);
        p.Str("col").Tensor("FloatStorage", "0", 6, 1, [2], [3]);          // a[:, 1]: offset + stride
        p.Str("aT").Tensor("FloatStorage", "0", 6, 0, [3, 2], [1, 3]);     // a.T: non-contiguous
        p.Str("tail").Tensor("FloatStorage", "0", 6, 4, [2], [1]);         // contiguous slice at an offset
        p.Str("step").Tensor("LongStorage", "1", 2, 1, [], []);            // scalar
        p.SetItems();
        // _metadata as HF writes it: BUILD with a state dict, ignored.
        p.EmptyDict().Mark().Str("_metadata").EmptyDict().SetItems().Op((byte)'b').Stop();
        var path = dir.File("hand.pt");
        TorchZip.Write(path, p.ToArray(), new Dictionary<string, byte[]>
        {
            ["0"] = TorchZip.Floats(0, 1, 2, 3, 4, 5),
            ["1"] = TorchZip.Longs(7, 12345678901234),
        }, folder: "hand");

        var d = TorchPickle.Load(path);
        try
        {
            Assert.Equal(["a", "col", "aT", "tail", "step"], d.Keys);
            Assert.Equal(new float[] { 0, 1, 2, 3, 4, 5 }, d["a"].data<float>().ToArray());
            Assert.Equal(new long[] { 2 }, d["col"].shape);
            Assert.Equal(new float[] { 1, 4 }, d["col"].data<float>().ToArray());
            Assert.Equal(new long[] { 3, 2 }, d["aT"].shape);
            Assert.Equal(new float[] { 0, 3, 1, 4, 2, 5 }, d["aT"].data<float>().ToArray());
            Assert.Equal(new float[] { 4, 5 }, d["tail"].data<float>().ToArray());
            Assert.Empty(d["step"].shape);
            Assert.Equal(12345678901234L, d["step"].item<long>());
            // Contiguous views share the storage, as in PyTorch (tied weights stay tied).
            d["a"][1, 1] = torch.tensor(99f);
            Assert.Equal(99f, d["tail"][0].item<float>());
        }
        finally { DisposeAll(d); }
    }

    [Theory]
    [InlineData("os", "system")]
    [InlineData("builtins", "eval")]
    [InlineData("subprocess", "Popen")]
    [InlineData("torch._utils", "_rebuild_tensor")]
    [InlineData("torch", "load")]
    public void TorchZip_ForbiddenGlobal_IsRefusedAndNotExecuted(string module, string name)
    {
        using var dir = new TempDir();
        var marker = dir.File("pwned");
        var pickle = new PickleWriter().Proto().Global(module, name).Str($"touch {marker}").Op(0x85).Reduce().Stop().ToArray();
        var path = dir.File("evil.bin");
        TorchZip.Write(path, pickle, new Dictionary<string, byte[]>());
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains($"forbidden pickle global '{module}.{name}'", ex.Message);
        Assert.Contains("refusing to load (nothing was executed)", ex.Message);
        Assert.False(File.Exists(marker));
    }

    [Fact]
    public void TorchZip_UnknownOpcode_IsRefused()
    {
        using var dir = new TempDir();
        var path = dir.File("op.bin");
        TorchZip.Write(path, new PickleWriter().Proto().Op((byte)'i').Stop().ToArray(), new Dictionary<string, byte[]>());
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains("unsupported pickle opcode 0x69", ex.Message);
    }

    [Fact]
    public void TorchZip_ViewOutsideStorage_IsRefused()
    {
        using var dir = new TempDir();
        var p = new PickleWriter().Proto().EmptyDict().Mark().Str("w").Tensor("FloatStorage", "0", 4, 2, [3], [1]).SetItems().Stop();
        var path = dir.File("oob.bin");
        TorchZip.Write(path, p.ToArray(), new Dictionary<string, byte[]> { ["0"] = TorchZip.Floats(1, 2, 3, 4) });
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains("tensor 'w'", ex.Message);
        Assert.Contains("storage '0' has 4 elements", ex.Message);
    }

    [Fact]
    public void TorchZip_MissingStorage_IsRefused()
    {
        using var dir = new TempDir();
        var p = new PickleWriter().Proto().EmptyDict().Mark().Str("w").Tensor("FloatStorage", "7", 4, 0, [4], [1]).SetItems().Stop();
        var path = dir.File("missing.bin");
        TorchZip.Write(path, p.ToArray(), new Dictionary<string, byte[]>());
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains("storage 'archive/data/7' used by tensor 'w' is missing", ex.Message);
    }

    static string SmallValidZip(TempDir dir)
    {
        var p = new PickleWriter().Proto().EmptyDict().Mark().Str("w").Tensor("FloatStorage", "0", 4, 0, [4], [1]).SetItems().Stop();
        var path = dir.File("ok.bin");
        TorchZip.Write(path, p.ToArray(), new Dictionary<string, byte[]> { ["0"] = TorchZip.Floats(1, 2, 3, 4) });
        return path;
    }

    [Fact]
    public void TorchZip_Truncated_IsRefused()
    {
        using var dir = new TempDir();
        var ok = SmallValidZip(dir);
        using (var d = TorchPickle.Load(ok)["w"]) Assert.Equal(new float[] { 1, 2, 3, 4 }, d.data<float>().ToArray());
        var bytes = File.ReadAllBytes(ok);
        var path = dir.File("trunc.bin");
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains("is not a readable zip archive", ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void TorchZip_GarbledCentralDirectory_IsRefused()
    {
        using var dir = new TempDir();
        var bytes = File.ReadAllBytes(SmallValidZip(dir));
        var eocd = bytes.AsSpan().LastIndexOf("PK\u0005\u0006"u8);
        Assert.True(eocd > 0);
        for (var i = eocd; i < bytes.Length; i++) bytes[i] = 0x5a;
        var path = dir.File("garbled.bin");
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains("is not a readable zip archive", ex.Message);
    }

    [Fact]
    public void TorchZip_ZipWithoutDataPkl_IsRefused()
    {
        using var dir = new TempDir();
        var path = dir.File("other.zip");
        using (var fs = File.Create(path))
        using (var zip = new System.IO.Compression.ZipArchive(fs, System.IO.Compression.ZipArchiveMode.Create))
            using (var s = zip.CreateEntry("readme.txt").Open()) s.Write("hi"u8);
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains("no '<folder>/data.pkl' entry", ex.Message);
    }

    [Fact]
    public void TorchLegacyFormat_IsRefusedWithAdvice()
    {
        using var dir = new TempDir();
        var path = dir.File("legacy.bin");
        // torch.save(..., _use_new_zipfile_serialization=False) starts with the pickled magic number 0x1950a86a20f9469cfc6c.
        File.WriteAllBytes(path, [0x80, 0x02, 0x8a, 0x0a, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e]);
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains("legacy (non-zip) PyTorch format is unsupported", ex.Message);
        Assert.Contains("_use_new_zipfile_serialization=True", ex.Message);
        ex = Assert.Throws<InvalidDataException>(() => CheckpointFiles.LoadWeights(path));
        Assert.Contains("legacy (non-zip)", ex.Message);
    }
}
