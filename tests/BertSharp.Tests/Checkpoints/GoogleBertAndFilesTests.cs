using System.Text.Json;
using BertSharp.Checkpoints;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Checkpoints;

public class GoogleBertAndFilesTests
{
    const string KerasBert = "golden/tf/keras-bert-tiny";
    const string KerasPrefix = KerasBert + "/bert_model.ckpt";
    const string TinySt = TestAssets.TinyRandom + "/model.safetensors";
    const string GoldenManifest = TestAssets.TinyRandom + "/golden/manifest.json";

    static void DisposeAll(Dictionary<string, Tensor> d)
    {
        foreach (var t in d.Values) t.Dispose();
    }

    static string KerasPrefixPath => Path.Combine(TestAssets.Path(KerasBert), "bert_model.ckpt");

    static bool Same(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape)) return false;
        using var ca = a.contiguous();
        using var cb = b.contiguous();
        return ca.bytes.SequenceEqual(cb.bytes);
    }

    [Theory]
    [InlineData("bert/embeddings/word_embeddings", "bert.embeddings.word_embeddings.weight", false)]
    [InlineData("bert/embeddings/LayerNorm/gamma", "bert.embeddings.LayerNorm.weight", false)]
    [InlineData("bert/embeddings/LayerNorm/beta", "bert.embeddings.LayerNorm.bias", false)]
    [InlineData("bert/encoder/layer_11/attention/self/query/kernel", "bert.encoder.layer.11.attention.self.query.weight", true)]
    [InlineData("bert/encoder/layer_0/output/dense/bias", "bert.encoder.layer.0.output.dense.bias", false)]
    [InlineData("bert/pooler/dense/kernel", "bert.pooler.dense.weight", true)]
    [InlineData("cls/predictions/output_bias", "cls.predictions.bias", false)]
    [InlineData("cls/predictions/transform/dense/kernel", "cls.predictions.transform.dense.weight", true)]
    [InlineData("cls/predictions/transform/LayerNorm/gamma", "cls.predictions.transform.LayerNorm.weight", false)]
    [InlineData("cls/seq_relationship/output_weights", "cls.seq_relationship.weight", false)]
    [InlineData("cls/seq_relationship/output_bias", "cls.seq_relationship.bias", false)]
    [InlineData("bert/encoder/layer_0/output/dense/kernel/adam_m", null, false)]
    [InlineData("bert/pooler/dense/bias/adam_v", null, false)]
    [InlineData("global_step", null, false)]
    [InlineData("bert/embeddings/word_embeddings/AdamWeightDecayOptimizer", null, false)]
    [InlineData("_CHECKPOINTABLE_OBJECT_GRAPH", null, false)]
    [InlineData("bert/encoder/layer_0/attention/self/query/kernel/ExponentialMovingAverage", null, false)]
    public void NameMapping(string tf, string? hf, bool transpose)
    {
        Assert.Equal(hf, GoogleBertNames.ToHuggingFace(tf, out var tr));
        Assert.Equal(transpose, tr);
    }

    [AssetFact(KerasPrefix + ".index", TinySt, KerasBert + "/hf_outputs.json", KerasBert + "/bert_config.json")]
    public void KerasBertTiny_MapsToEveryBertForPreTrainingParameter()
    {
        using var hf = JsonDocument.Parse(File.ReadAllText(TestAssets.Path(KerasBert + "/hf_outputs.json")));
        Assert.Equal(0, hf.RootElement.GetProperty("untouched_parameters").GetArrayLength()); // HF: every parameter set
        using var cfg = JsonDocument.Parse(File.ReadAllText(TestAssets.Path(KerasBert + "/bert_config.json")));
        long C(string k) => cfg.RootElement.GetProperty(k).GetInt64();
        long h = C("hidden_size"), inter = C("intermediate_size"), vocab = C("vocab_size");

        // tiny-random is also a 2-layer BertForPreTraining: its parameter names are exactly what HF's loader fills.
        var expectedNames = SafeTensors.ReadEntries(TestAssets.Path(TinySt)).Select(e => e.Name).Order(StringComparer.Ordinal).ToList();
        Assert.Equal(2, C("num_hidden_layers"));

        var skipped = new List<string>();
        var w = GoogleBertNames.Load(KerasPrefixPath, skipped);
        try
        {
            Assert.Equal(expectedNames, w.Keys.Order(StringComparer.Ordinal));
            Assert.Equal(139 - 46, skipped.Count);
            Assert.All(skipped, s => Assert.True(s == "global_step" || s.EndsWith("/adam_m", StringComparison.Ordinal) || s.EndsWith("/adam_v", StringComparison.Ordinal), s));
            Assert.All(w.Values, t => Assert.Equal(ScalarType.Float32, t.dtype));

            Assert.Equal(new[] { vocab, h }, w["bert.embeddings.word_embeddings.weight"].shape);
            Assert.Equal(new[] { inter, h }, w["bert.encoder.layer.0.intermediate.dense.weight"].shape); // TF [4,16] transposed
            Assert.Equal(new[] { h, inter }, w["bert.encoder.layer.1.output.dense.weight"].shape);      // TF [16,4] transposed
            Assert.Equal(new[] { 2L, h }, w["cls.seq_relationship.weight"].shape);                      // not transposed
            Assert.Equal(new[] { vocab }, w["cls.predictions.bias"].shape);

            // Values from the README check list: query kernel first5 = TF[0,0..3], TF[1,0]; HF weight = TF^T.
            var q = w["bert.encoder.layer.0.attention.self.query.weight"];
            Assert.Equal(-0.004521411377936602, q[0, 0].item<float>(), 12);
            Assert.Equal(0.01976238563656807, q[1, 0].item<float>(), 12);  // TF[0,1]
            Assert.Equal(0.029605310410261154, q[2, 0].item<float>(), 12); // TF[0,2]
            Assert.Equal(0.02139350399374962, q[0, 1].item<float>(), 12);  // TF[1,0]
            using (var reader = TfBundleReader.Open(KerasPrefixPath))
            {
                using var k = reader.ReadTensor("bert/encoder/layer_0/intermediate/dense/kernel");
                using var kt = k.t();
                Assert.True(Same(kt, w["bert.encoder.layer.0.intermediate.dense.weight"]));
                using var ow = reader.ReadTensor("cls/seq_relationship/output_weights");
                Assert.True(Same(ow, w["cls.seq_relationship.weight"]));
            }
            var emb = w["bert.embeddings.word_embeddings.weight"].flatten().data<float>().ToArray();
            Assert.Equal(-0.006259807385504246, emb[0], 12);
            Assert.Equal(0.02077261172235012, emb[1], 12);
            Assert.Equal(0.10567467822693288, emb.Sum(x => (double)x), 6);
        }
        finally { DisposeAll(w); }
    }

    [AssetFact(KerasPrefix + ".index")]
    public void CheckpointFiles_LoadsGoogleReleaseDirectory()
    {
        var dir = TestAssets.Path(KerasBert);
        Assert.Equal(Path.Combine(dir, "bert_model.ckpt.index"), CheckpointFiles.FindWeights(dir));
        var byDir = CheckpointFiles.LoadWeights(dir);
        var byPrefix = CheckpointFiles.LoadWeights(KerasPrefixPath);
        try
        {
            Assert.Equal(46, byDir.Count);
            Assert.Equal(byDir.Keys.Order(), byPrefix.Keys.Order());
            Assert.Contains("cls.seq_relationship.weight", byDir.Keys);
        }
        finally
        {
            DisposeAll(byDir);
            DisposeAll(byPrefix);
        }
    }

    [AssetFact("golden/tf/tf2onnx-regression-ckpt/model.index")]
    public void CheckpointFiles_NonBertTfBundle_KeepsTfNames()
    {
        var d = CheckpointFiles.LoadWeights(Path.Combine(TestAssets.Path("golden/tf/tf2onnx-regression-ckpt"), "model"));
        try
        {
            Assert.Equal(["W", "b"], d.Keys.Order());
            Assert.Equal(0.21396178007125854, d["W"].item<float>(), 12);
        }
        finally { DisposeAll(d); }
        Assert.Equal(Path.Combine(TestAssets.Path("golden/tf/tf2onnx-regression-ckpt"), "model.index"),
            CheckpointFiles.FindWeights(TestAssets.Path("golden/tf/tf2onnx-regression-ckpt")));
    }

    [AssetFact(TinySt)]
    public void CheckpointFiles_PrefersSafetensors_AndDetectsFormats()
    {
        var dir = TestAssets.Path(TestAssets.TinyRandom);
        Assert.Equal(Path.Combine(dir, "model.safetensors"), CheckpointFiles.FindWeights(dir));
        Assert.Equal(CheckpointFormat.SafeTensors, CheckpointFiles.DetectFormat(Path.Combine(dir, "model.safetensors")));
        Assert.Equal(CheckpointFormat.TorchZip, CheckpointFiles.DetectFormat(Path.Combine(dir, "pytorch_model.bin")));
        Assert.Null(CheckpointFiles.FindWeights(TestAssets.Path("golden/tokenizer")));
    }

    [Fact]
    public void CheckpointFiles_ShardedSafetensorsAndTorch()
    {
        using var dir = new TempDir();
        using var a = torch.arange(6, dtype: ScalarType.Float32).reshape(2, 3);
        using var b = torch.ones(4, dtype: ScalarType.Float32);
        SafeTensors.Save(dir.File("model-00001-of-00002.safetensors"), new Dictionary<string, Tensor> { ["a"] = a });
        SafeTensors.Save(dir.File("model-00002-of-00002.safetensors"), new Dictionary<string, Tensor> { ["b"] = b });
        File.WriteAllText(dir.File("model.safetensors.index.json"),
            """{"metadata":{"total_size":40},"weight_map":{"a":"model-00001-of-00002.safetensors","b":"model-00002-of-00002.safetensors"}}""");
        Assert.Equal(dir.File("model.safetensors.index.json"), CheckpointFiles.FindWeights(dir.Path));
        var d = CheckpointFiles.LoadWeights(dir.Path);
        try
        {
            Assert.Equal(["a", "b"], d.Keys.Order());
            Assert.True(Same(d["a"], a));
        }
        finally { DisposeAll(d); }

        // A torch-zip shard next to it, via pytorch_model.bin.index.json.
        var p = new PickleWriter().Proto().EmptyDict().Mark().Str("c").Tensor("FloatStorage", "0", 2, 0, [2], [1]).SetItems().Stop();
        TorchZip.Write(dir.File("pytorch_model-00001-of-00001.bin"), p.ToArray(), new Dictionary<string, byte[]> { ["0"] = TorchZip.Floats(5, 6) });
        File.WriteAllText(dir.File("pytorch_model.bin.index.json"), """{"weight_map":{"c":"pytorch_model-00001-of-00001.bin"}}""");
        var e = CheckpointFiles.LoadWeights(dir.File("pytorch_model.bin.index.json"));
        try { Assert.Equal(new float[] { 5, 6 }, e["c"].data<float>().ToArray()); }
        finally { DisposeAll(e); }

        // weight_map naming a tensor its shard lacks.
        File.WriteAllText(dir.File("bad.index.json"), """{"weight_map":{"zzz":"model-00002-of-00002.safetensors"}}""");
        var ex = Assert.Throws<InvalidDataException>(() => CheckpointFiles.LoadWeights(dir.File("bad.index.json")));
        Assert.Contains("'zzz'", ex.Message);
    }

    [Fact]
    public void CheckpointFiles_UnknownFormat_IsRefused()
    {
        using var dir = new TempDir();
        var path = dir.File("weights.h5");
        File.WriteAllBytes(path, [0x89, (byte)'H', (byte)'D', (byte)'F', 0x0d, 0x0a, 0x1a, 0x0a, 0, 0]);
        var ex = Assert.Throws<InvalidDataException>(() => CheckpointFiles.LoadWeights(path));
        Assert.Contains("not a recognised checkpoint format", ex.Message);
        Assert.Contains("894844460D0A1A0A", ex.Message);
        var nf = Assert.Throws<FileNotFoundException>(() => CheckpointFiles.LoadWeights(dir.File("nothing.bin")));
        Assert.Contains("nothing.bin", nf.Message);
        var empty = Assert.Throws<FileNotFoundException>(() => CheckpointFiles.LoadWeights(dir.Path));
        Assert.Contains("no weights found in directory", empty.Message);
    }

    [AssetFact(GoldenManifest)]
    public void Npy_ReadsGoldenOutputs_WithManifestShapes()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(TestAssets.Path(GoldenManifest)));
        var cases = doc.RootElement.GetProperty("cases").EnumerateArray().ToList();
        Assert.Equal(10, cases.Count);
        foreach (var c in cases)
        {
            var dir = TestAssets.Path($"{TestAssets.TinyRandom}/golden/{c.GetProperty("dir").GetString()}");
            var shape = c.GetProperty("shape");
            long B = shape.GetProperty("B").GetInt64(), L = shape.GetProperty("L").GetInt64(), H = shape.GetProperty("H").GetInt64();
            var ids = Npy.Read(Path.Combine(dir, "input_ids.npy"));
            Assert.Equal("<i8", ids.Descr);
            Assert.Equal(new[] { B, L }, ids.Shape);
            var expectedIds = c.GetProperty("input_ids").EnumerateArray()
                .SelectMany(row => row.EnumerateArray().Select(x => x.GetInt64())).ToArray();
            Assert.Equal(expectedIds, ids.ToInt64());
            var hidden = Npy.Read(Path.Combine(dir, "last_hidden_state.npy"));
            Assert.Equal("<f4", hidden.Descr);
            Assert.Equal(new[] { B, L, H }, hidden.Shape);
            var nsp = Npy.Read(Path.Combine(dir, "nsp_logits.npy"));
            var expectedNsp = c.GetProperty("nsp_logits").EnumerateArray().SelectMany(r => r.EnumerateArray().Select(x => x.GetSingle())).ToArray();
            Assert.Equal(expectedNsp, nsp.ToFloat());
            using var t = hidden.ToTensor();
            Assert.Equal(hidden.Shape, t.shape);
            Assert.Equal(ScalarType.Float32, t.dtype);
            Assert.Equal(hidden.ToFloat()[^1], t.flatten()[-1].item<float>());
        }
    }

    [Fact]
    public void Npy_BadFiles_AreRefused()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("x.npy"), [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]);
        var ex = Assert.Throws<InvalidDataException>(() => Npy.Read(dir.File("x.npy")));
        Assert.Contains("missing the \\x93NUMPY magic", ex.Message);
        var header = "{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }".PadRight(117) + "\n";
        var bytes = new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0, 118, 0 }
            .Concat(System.Text.Encoding.ASCII.GetBytes(header)).Concat(new byte[20]).ToArray();
        File.WriteAllBytes(dir.File("short.npy"), bytes);
        ex = Assert.Throws<InvalidDataException>(() => Npy.Read(dir.File("short.npy")));
        Assert.Contains("needs 24 data bytes, found 20", ex.Message);
    }
}
