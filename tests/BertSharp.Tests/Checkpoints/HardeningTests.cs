using System.Buffers.Binary;
using System.Text;
using BertSharp.Checkpoints;
using BertSharp.Data;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tests.Fuzz;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Checkpoints;

/// <summary>Altered files that used to load silently (issue 15 §1, §2): each is refused with a message naming what was expected.</summary>
public class HardeningTests
{
    // ---- safetensors ------------------------------------------------------------------------------------------------

    static string Raw(TempDir dir, string header, int dataBytes, long lengthDelta = 0, string name = "t.safetensors")
    {
        var h = Encoding.UTF8.GetBytes(header);
        var path = dir.File(name);
        using var fs = File.Create(path);
        fs.Write(BitConverter.GetBytes((ulong)(h.Length + lengthDelta)));
        fs.Write(h);
        fs.Write(Enumerable.Range(0, dataBytes).Select(i => (byte)(i + 1)).ToArray());
        return path;
    }

    const string TwoTensors = """{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[3],"data_offsets":[8,20]}}""";

    [Fact]
    public void SafeTensors_ValidRawFileLoads()
    {
        using var dir = new TempDir();
        var loaded = SafeTensors.Load(Raw(dir, TwoTensors, 20));
        Assert.Equal(new[] { "a", "b" }, loaded.Keys.Order(StringComparer.Ordinal));
        foreach (var t in loaded.Values) t.Dispose();
    }

    [Theory]
    [InlineData(-1)]
    [InlineData(1)]
    [InlineData(-8)]
    public void SafeTensors_HeaderLengthOffByAnyAmount_IsRefused(long delta)
    {
        using var dir = new TempDir();
        // Padded like SafeTensors.Save pads: with trailing spaces one short still parses as JSON, so the tiling check must catch it.
        var path = Raw(dir, TwoTensors + "    ", 20, delta);
        var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.Contains(path, ex.Message);
        Assert.DoesNotContain('\n', ex.Message);
    }

    [Fact]
    public void SafeTensors_SavedFileWithHeaderOneByteShort_IsRefused()
    {
        using var dir = new TempDir();
        var good = dir.File("good.safetensors");
        using (var a = torch.arange(6, ScalarType.Float32))
            SafeTensors.Save(good, new Dictionary<string, Tensor> { ["a"] = a });
        var bytes = File.ReadAllBytes(good);
        var len = BinaryPrimitives.ReadUInt64LittleEndian(bytes);
        BinaryPrimitives.WriteUInt64LittleEndian(bytes, len - 1);
        File.WriteAllBytes(good, bytes);
        var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(good));
        Assert.True(ex.Message.Contains("tile it exactly") || ex.Message.Contains("not valid JSON"), ex.Message);
    }

    [Theory]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[12,20]}}""", 20, "a gap of 4 bytes between tensors 'a' (ends at 8) and 'b' (begins at 12)")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}""", 12, "leave bytes [0, 4) of the data region unused")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""", 9, "the tensors cover 8 bytes but the data region (file size - 8 - header length) is 9 bytes")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":["0","8"]}}""", 8, "data_offsets [\"0\", \"8\"] are not non-negative integers")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"a":{"dtype":"F32","shape":[2],"data_offsets":[8,16]}}""", 16, "names 'a' twice")]
    [InlineData("""{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}""" + "\n", 8, "byte 0x0a after its JSON object; expected only space (0x20) padding")]
    public void SafeTensors_TilingAndHeaderRules(string header, int dataBytes, string expected)
    {
        using var dir = new TempDir();
        var path = Raw(dir, header, dataBytes);
        var ex = Assert.Throws<InvalidDataException>(() => SafeTensors.Load(path));
        Assert.Contains(expected, ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void DTypes_IntegerForFloatIsRefused_HalfAndBFloat16AreConverted()
    {
        var config = FuzzFixtures.MicroConfig;
        using var model = new BertModel(config);
        var dict = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.clone());
        // Same byte size, reinterpreted: the bug the issue found.
        var name = "encoder.layer.0.attention.self.query.weight";
        var asInt = TensorMemory.FromBytes(dict[name].bytes, dict[name].shape, ScalarType.Int32);
        var bad = new Dictionary<string, Tensor>(dict) { [name] = asInt };
        using var target = new BertModel(config);
        var ex = Assert.Throws<InvalidDataException>(() => StateDictLoader.Load(target, bad, "ckpt.safetensors"));
        Assert.Contains("ckpt.safetensors", ex.Message);
        Assert.Contains($"'{name}'", ex.Message);
        Assert.Contains("Int32", ex.Message);
        Assert.Contains("expected a floating-point dtype", ex.Message);

        foreach (var half in new[] { ScalarType.Float16, ScalarType.BFloat16 })
        {
            var converted = dict.ToDictionary(kv => kv.Key, kv => kv.Value.is_floating_point() ? kv.Value.to_type(half) : kv.Value);
            using var m = new BertModel(config);
            var report = StateDictLoader.Load(m, converted);
            Assert.Empty(report.Missing);
            using var expectedQ = dict[name].to_type(half).to_type(ScalarType.Float32);
            Assert.Equal(0f, (m.state_dict()[name] - expectedQ).abs().max().item<float>());
            Assert.Equal(ScalarType.Float32, m.state_dict()[name].dtype);
        }
    }

    // ---- pytorch_model.bin --------------------------------------------------------------------------------------------

    static string ValidBin(TempDir dir, string name = "ok.bin")
    {
        var p = new PickleWriter().Proto().EmptyDict().Mark()
            .Str("w").Tensor("FloatStorage", "0", 4, 0, [4], [1])
            .Str("v").Tensor("FloatStorage", "1", 2, 0, [2], [1]).SetItems().Stop();
        var path = dir.File(name);
        TorchZip.Write(path, p.ToArray(), new Dictionary<string, byte[]> { ["0"] = TorchZip.Floats(1, 2, 3, 4), ["1"] = TorchZip.Floats(5, 6) });
        return path;
    }

    [Fact]
    public void TorchZip_FlipInTensorData_FailsItsCrc()
    {
        using var dir = new TempDir();
        var path = ValidBin(dir);
        var bytes = File.ReadAllBytes(path);
        var at = bytes.AsSpan().IndexOf(TorchZip.Floats(1, 2, 3, 4));
        Assert.True(at > 0);
        bytes[at + 5] ^= 0x10;
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains("entry 'archive/data/0' fails its CRC-32 check", ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void TorchZip_FlipInPickle_FailsItsCrc()
    {
        using var dir = new TempDir();
        var path = ValidBin(dir);
        var bytes = File.ReadAllBytes(path);
        var at = bytes.AsSpan().IndexOf("FloatStorage"u8);
        bytes[at] = (byte)'G'; // still a valid-looking global name; only the CRC tells
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains("entry 'archive/data.pkl' fails its CRC-32 check", ex.Message);
    }

    static int CentralHeader(byte[] zip, string entryName)
    {
        var name = Encoding.ASCII.GetBytes(entryName);
        for (var i = 0; i + 46 < zip.Length; i++)
            if (BinaryPrimitives.ReadUInt32LittleEndian(zip.AsSpan(i)) == 0x02014b50 && zip.AsSpan(i + 46).StartsWith(name))
                return i;
        throw new InvalidOperationException("no central header for " + entryName);
    }

    [Fact]
    public void TorchZip_EntrySize0x7FFFFFFF_IsOurMessage()
    {
        using var dir = new TempDir();
        var path = ValidBin(dir);
        var bytes = File.ReadAllBytes(path);
        var cd = CentralHeader(bytes, "archive/data.pkl");
        BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(cd + 24), 0x7FFFFFFF);
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains("entry 'archive/data.pkl' declares 2147483647 bytes", ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Theory]
    [InlineData(8, 0xFFFF)]       // entries on this disk
    [InlineData(10, 0xFFFF)]      // total entries
    [InlineData(16, 0xFFFFFFFF)]  // central directory offset
    public void TorchZip_Zip64MarkersWithoutZip64Record_AreRefused(int field, uint marker)
    {
        using var dir = new TempDir();
        var path = ValidBin(dir);
        var bytes = File.ReadAllBytes(path);
        var eocd = bytes.AsSpan().LastIndexOf("PK\u0005\u0006"u8);
        if (marker == 0xFFFF) BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(eocd + field), 0xFFFF);
        else BinaryPrimitives.WriteUInt32LittleEndian(bytes.AsSpan(eocd + field), marker);
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains("zip64 markers", ex.Message);
        Assert.Contains(path, ex.Message);
    }

    [Fact]
    public void TorchZip_EndRecordEntryCountsDisagree_IsOurMessage()
    {
        using var dir = new TempDir();
        var path = ValidBin(dir);
        var bytes = File.ReadAllBytes(path);
        var eocd = bytes.AsSpan().LastIndexOf("PK\u0005\u0006"u8);
        var n = BinaryPrimitives.ReadUInt16LittleEndian(bytes.AsSpan(eocd + 10));
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(eocd + 8), (ushort)(n + 1));
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(eocd + 10), (ushort)(n + 1));
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains(path, ex.Message);
        Assert.Contains("central directory", ex.Message);
    }

    [AssetFact(TestAssets.TinyRandom + "/pytorch_model.bin")]
    public void TorchZip_RealZip64EndRecordIsRead_AndAMismatchIsRefused()
    {
        using var dir = new TempDir();
        var bytes = File.ReadAllBytes(Path.Combine(TestAssets.Path(TestAssets.TinyRandom), "pytorch_model.bin"));
        var z64 = bytes.AsSpan().LastIndexOf("PK\u0006\u0006"u8);
        Assert.True(z64 > 0, "torch.save writes a zip64 end record");
        var path = dir.File("z.bin");
        // The zip64 record's total-entries field disagrees with the classic record.
        BinaryPrimitives.WriteUInt64LittleEndian(bytes.AsSpan(z64 + 32), 7);
        File.WriteAllBytes(path, bytes);
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains("zip64 end record says 7", ex.Message);
    }

    static string BinWith(TempDir dir, long storageNumel, long offset, long[] size, long[] stride, int dataFloats)
    {
        var p = new PickleWriter().Proto().EmptyDict().Mark().Str("w").Tensor("FloatStorage", "0", storageNumel, offset, size, stride).SetItems().Stop();
        var path = dir.File("s.bin");
        TorchZip.Write(path, p.ToArray(), new Dictionary<string, byte[]> { ["0"] = TorchZip.Floats(Enumerable.Range(0, dataFloats).Select(i => (float)i).ToArray()) });
        return path;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(-1)]
    public void TorchZip_ZeroOrNegativeStride_IsRefused(long stride)
    {
        using var dir = new TempDir();
        var path = BinWith(dir, 4, stride < 0 ? 3 : 0, [4], [stride], 4);
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(path));
        Assert.Contains($"stride {stride} for dimension 0 of size 4", ex.Message);
        Assert.Contains("'w'", ex.Message);
    }

    [Fact]
    public void TorchZip_ZeroStrideOnSizeOneDimension_IsAccepted()
    {
        using var dir = new TempDir();
        var path = BinWith(dir, 3, 0, [1, 3], [0, 1], 3);
        using var t = TorchPickle.Load(path)["w"];
        Assert.Equal(new long[] { 1, 3 }, t.shape);
        Assert.Equal(new float[] { 0, 1, 2 }, t.data<float>().ToArray());
    }

    [Fact]
    public void TorchZip_SizesAndOffsetsAbove2To31AsLong1_AreIntegers()
    {
        using var dir = new TempDir();
        // Offset 2^31 (LONG1 in the pickle): parsed as an integer, then refused for the real reason (out of the storage).
        var ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(BinWith(dir, 4, 1L << 31, [2], [1], 4)));
        Assert.Contains("reaches element 2147483649 but storage '0' has 4 elements", ex.Message);
        Assert.DoesNotContain("not an integer", ex.Message);
        // A storage of 2^31 elements: parsed, then compared with the entry's real size.
        ex = Assert.Throws<InvalidDataException>(() => TorchPickle.Load(BinWith(dir, 1L << 31, 0, [4], [1], 4)));
        Assert.Contains("is 16 bytes, expected 8589934592", ex.Message);
        // And the unpickler hands LONG1 values back as long (the boxed type the callers test for).
        var pickle = new PickleWriter().Proto().Int(1L << 40).Stop().ToArray();
        var v = new Unpickler(pickle, "t") { ResolveGlobal = (_, _) => null, Reduce = (_, _) => null, PersistentLoad = _ => null }.Load();
        Assert.IsType<long>(v);
        Assert.Equal(1L << 40, (long)v!);
    }

    // ---- TF bundle ----------------------------------------------------------------------------------------------------

    static byte[] Floats(int n) => TorchZip.Floats(Enumerable.Range(0, n).Select(i => i * 0.5f).ToArray());

    [Fact]
    public void TfBundle_WriterRoundTrips()
    {
        using var dir = new TempDir();
        var prefix = dir.File("m.ckpt");
        TfBundleWriter.Write(prefix, [new("a", TfDataType.Float, [2, 2], Floats(4)), new("b", TfDataType.Float, [3], Floats(3))]);
        using var r = TfBundleReader.Open(prefix);
        using var a = r.ReadTensor("a");
        Assert.Equal(new float[] { 0, 0.5f, 1, 1.5f }, a.data<float>().ToArray());
    }

    [Fact]
    public void TfBundle_DuplicateKey_IsOurMessage()
    {
        using var dir = new TempDir();
        var prefix = dir.File("m.ckpt");
        TfBundleWriter.Write(prefix, [new("a", TfDataType.Float, [2], Floats(2)), new("a", TfDataType.Float, [2], Floats(2))]);
        var ex = Assert.Throws<InvalidDataException>(() => TfBundleReader.Open(prefix));
        Assert.Contains("tensor 'a' has two entries", ex.Message);
        Assert.Contains(prefix + ".index", ex.Message);
    }

    [Fact]
    public void TfBundle_Int32WhereAFloatIsExpected_IsRefused()
    {
        using var dir = new TempDir();
        var prefix = dir.File("bert_model.ckpt");
        TfBundleWriter.Write(prefix,
        [
            new("bert/embeddings/word_embeddings", TfDataType.Float, [2, 2], Floats(4)),
            new("bert/embeddings/LayerNorm/gamma", TfDataType.Int32, [2], TorchZip.Floats(1, 1)),
        ]);
        var ex = Assert.Throws<InvalidDataException>(() => CheckpointFiles.LoadWeights(prefix));
        Assert.Contains("tensor 'bert/embeddings/LayerNorm/gamma'", ex.Message);
        Assert.Contains("stored as DT_INT32, expected DT_FLOAT", ex.Message);
    }

    // ---- missing encoder weights --------------------------------------------------------------------------------------

    static string ModelWithout(TempDir dir, Func<string, bool> drop)
    {
        var md = FuzzFixtures.SaveMicroModel(dir.File("m"));
        var st = Path.Combine(md, "model.safetensors");
        var all = SafeTensors.Load(st);
        SafeTensors.Save(st, all.Where(kv => !drop(kv.Key)));
        foreach (var t in all.Values) t.Dispose();
        return md;
    }

    [Fact]
    public void MissingEncoderWeight_IsAnError_UnlessAllowed()
    {
        using var dir = new TempDir();
        var md = ModelWithout(dir, k => k == "bert.encoder.layer.0.output.dense.weight");
        var ex = Assert.Throws<InvalidDataException>(() => BertPipeline.Load(md));
        Assert.Contains("1 encoder weight is missing", ex.Message);
        Assert.Contains("bert.encoder.layer.0.output.dense.weight", ex.Message);
        Assert.Contains("--allow-missing", ex.Message);
        using var p = BertPipeline.Load(md, policy: LoadPolicy.AllowMissing);
        Assert.Equal(new[] { "bert.encoder.layer.0.output.dense.weight" }, p.Report.Missing);
        Assert.Equal(new[] { "bert.encoder.layer.0.output.dense.weight" }, p.Report.MissingEncoder);
    }

    [Fact]
    public void MissingHeads_AreInitialisedAndReported()
    {
        using var dir = new TempDir();
        // An encoder-only checkpoint (BertModel): every cls.* is a head; the pooler is present.
        var md = ModelWithout(dir, k => k.StartsWith("cls.", StringComparison.Ordinal));
        var (model, report) = ModelDirectory.Open(md).LoadModel(c => new BertForPreTraining(c));
        model.Dispose();
        Assert.NotEmpty(report.Missing);
        Assert.All(report.Missing, k => Assert.StartsWith("cls.", k));
        Assert.Empty(report.MissingEncoder);
        Assert.Equal(report.Missing.Order(StringComparer.Ordinal), report.MissingHeads.Order(StringComparer.Ordinal));
    }

    [Fact]
    public void Pooler_IsAHeadOnlyWhenTheCheckpointHasNoneOfIt()
    {
        using var dir = new TempDir();
        var none = ModelWithout(dir, k => k.Contains(".pooler.", StringComparison.Ordinal));
        var (m1, r1) = ModelDirectory.Open(none).LoadModel(c => new BertForPreTraining(c));
        m1.Dispose();
        Assert.Equal(new[] { "bert.pooler.dense.bias", "bert.pooler.dense.weight" }, r1.Missing.Order(StringComparer.Ordinal));
        Assert.Empty(r1.MissingEncoder);

        using var dir2 = new TempDir();
        var half = ModelWithout(dir2, k => k == "bert.pooler.dense.bias");
        var ex = Assert.Throws<InvalidDataException>(() => ModelDirectory.Open(half).LoadModel(c => new BertForPreTraining(c)));
        Assert.Contains("bert.pooler.dense.bias", ex.Message);
    }

    // ---- corpus path --------------------------------------------------------------------------------------------------

    [Fact]
    public void CorpusPathThatIsADirectory_SaysSoAndSuggestsDirFormat()
    {
        using var dir = new TempDir();
        var ex = Assert.Throws<FileNotFoundException>(() => CorpusSpec.GoogleText(dir.Path).ResolveFiles());
        Assert.Contains($"corpus path {dir.Path} is a directory", ex.Message);
        Assert.Contains("--corpus-format dir", ex.Message);
        ex = Assert.Throws<FileNotFoundException>(() => CorpusReader.ReadGoogleText(dir.Path).ToList());
        Assert.Contains("is a directory", ex.Message);
    }
}
