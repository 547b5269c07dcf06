using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tests.Cli;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Inference;

public class ModelConverterTests : IDisposable
{
    const string TfDir = "golden/tf/keras-bert-tiny";
    const string SeqCls = "golden/models/tiny-random/heads/seq-classification-3";
    readonly string _out = Directory.CreateTempSubdirectory("bertsharp-convert-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_out, recursive: true); } catch (IOException) { }
    }

    /// <summary>Same dtype, shape and bytes.</summary>
    static bool SameBits(Tensor a, Tensor b)
    {
        if (a.dtype != b.dtype || !a.shape.SequenceEqual(b.shape)) return false;
        using var ca = a.detach().contiguous();
        using var cb = b.detach().contiguous();
        return ca.bytes.SequenceEqual(cb.bytes);
    }

    static void AssertBitIdentical(string originalWeights, string convertedDir, int expectedDropped)
    {
        var original = CheckpointFiles.LoadWeights(originalWeights);
        var converted = CheckpointFiles.LoadWeights(convertedDir);
        try
        {
            Assert.Equal(CheckpointFiles.FindWeights(convertedDir), Path.Combine(convertedDir, "model.safetensors"));
            var kept = original.Keys.Where(k => !ModelUtils.IsTiedAlias(k)).Order(StringComparer.Ordinal).ToList();
            Assert.Equal(expectedDropped, original.Count - kept.Count);
            Assert.Equal(kept, converted.Keys.Order(StringComparer.Ordinal));
            foreach (var k in kept)
            {
                Assert.Equal(original[k].dtype, converted[k].dtype);
                Assert.Equal(original[k].shape, converted[k].shape);
                Assert.True(SameBits(original[k], converted[k]), $"{k} differs");
            }
        }
        finally
        {
            foreach (var t in original.Values.Concat(converted.Values)) t.Dispose();
        }
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void PytorchBinConvertsBitIdenticallyAndLoads()
    {
        using var src = TempModelDir.TinyRandom("pytorch_model.bin");
        var output = Path.Combine(_out, "hf");
        var r = ModelConverter.Convert(src.Path, output);
        Assert.Equal("pytorch zip", r.SourceFormat);
        // pytorch_model.bin stores the tied decoder (weight and bias) explicitly; safetensors stores it once, like HF.
        Assert.Equal(["cls.predictions.decoder.bias", "cls.predictions.decoder.weight"], r.Dropped);
        AssertBitIdentical(Path.Combine(src.Path, "pytorch_model.bin"), output, expectedDropped: 2);
        foreach (var f in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json" })
            Assert.True(File.Exists(Path.Combine(output, f)), f);
        Assert.Equal(File.ReadAllLines(Path.Combine(src.Path, "vocab.txt")), File.ReadAllLines(Path.Combine(output, "vocab.txt")));

        // Loads as a complete BertForPreTraining whose parameters equal the original's.
        var (a, ra) = ModelDirectory.Open(src.Path).LoadModel(c => new BertForPreTraining(c));
        var (b, rb) = ModelDirectory.Open(output).LoadModel(c => new BertForPreTraining(c));
        using (a)
        using (b)
        {
            Assert.Empty(rb.Missing);
            Assert.Empty(rb.Unexpected);
            var pa = a.state_dict();
            foreach (var (k, v) in b.state_dict()) Assert.True(SameBits(v, pa[k]), k);
        }
        Assert.Empty(Directory.GetDirectories(_out, ".*"));
    }

    [AssetFact(TfDir)]
    public void GoogleTfDirectoryConvertsToTheSameOutputs()
    {
        var tf = TestAssets.Path(TfDir);
        var output = Path.Combine(_out, "from-tf");
        var r = ModelConverter.Convert(tf, output);
        Assert.Equal("TF bundle", r.SourceFormat);
        AssertBitIdentical(tf, output, expectedDropped: 0);
        Assert.Equal(4, BertConfig.Load(Path.Combine(output, "config.json")).HiddenSize);

        var (orig, _) = ModelDirectory.Open(tf).LoadModel(c => new BertForPreTraining(c));
        var (conv, report) = ModelDirectory.Open(output).LoadModel(c => new BertForPreTraining(c));
        Assert.Empty(report.Missing);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(tf, "hf_outputs.json")));
        int cases = 0;
        using (orig)
        using (conv)
            foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
            {
                using var scope = NewDisposeScope();
                using var _ = inference_mode();
                long[] Ints(string name) => c.GetProperty(name).EnumerateArray().Select(e => e.GetInt64()).ToArray();
                var ids = tensor(Ints("input_ids")).unsqueeze(0);
                var types = tensor(Ints("token_type_ids")).unsqueeze(0);
                var x = orig.forward(ids, types);
                var y = conv.forward(ids, types);
                Assert.True(SameBits(x.Encoder.LastHiddenState, y.Encoder.LastHiddenState));
                Assert.True(SameBits(x.PredictionLogits, y.PredictionLogits));
                Assert.True(SameBits(x.SeqRelationshipLogits, y.SeqRelationshipLogits));
                // And both are Hugging Face's numbers.
                var hf = c.GetProperty("last_hidden_state").EnumerateArray().SelectMany(row => row.EnumerateArray().Select(v => v.GetSingle())).ToArray();
                var mine = y.Encoder.LastHiddenState.reshape(-1).data<float>().ToArray();
                Assert.True(hf.Zip(mine, (p, q) => Math.Abs(p - q)).Max() <= 1e-5);
                cases++;
            }
        Assert.True(cases > 0);
    }

    [AssetFact(SeqCls)]
    public void TaskHeadsAreKept()
    {
        using var src = new TempModelDir().Link(TestAssets.Path(SeqCls), "config.json", "pytorch_model.bin", "tokenizer_config.json")
            .Link(TestAssets.Path(TestAssets.TinyRandom), "vocab.txt");
        var output = Path.Combine(_out, "cls");
        ModelConverter.Convert(src.Path, output);
        AssertBitIdentical(Path.Combine(src.Path, "pytorch_model.bin"), output, expectedDropped: 0);
        using var cfg = JsonDocument.Parse(File.ReadAllText(Path.Combine(output, "config.json")));
        Assert.Equal("BertForSequenceClassification", cfg.RootElement.GetProperty("architectures")[0].GetString());
        Assert.Equal(3, cfg.RootElement.GetProperty("id2label").EnumerateObject().Count());
        var info = ModelInfo.Read(output);
        Assert.True(info.Heads["classifier"]);
        Assert.False(info.Heads["mlm"]);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void SentenceTransformersFilesAreCopiedAndReplaceAnExistingOutput()
    {
        using var src = TempModelDir.TinyRandom()
            .Write("modules.json", """[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},{"idx":2,"name":"2","path":"2_Normalize","type":"sentence_transformers.models.Normalize"}]""")
            .Write("1_Pooling/config.json", """{"pooling_mode_cls_token": true}""")
            .Write("sentence_bert_config.json", """{"max_seq_length": 64}""");
        var output = Path.Combine(_out, "st");
        Directory.CreateDirectory(output);
        File.WriteAllText(Path.Combine(output, "stale.txt"), "old");
        var r = ModelConverter.Convert(src.Path, output);
        Assert.Equal(new[] { Path.Combine("1_Pooling", "config.json"), "modules.json", "sentence_bert_config.json" }.Order(StringComparer.Ordinal),
            r.CopiedFiles.Order(StringComparer.Ordinal));
        Assert.False(File.Exists(Path.Combine(output, "stale.txt")));
        using var e = Embedder.Load(output);
        Assert.Equal((EmbeddingPooling.Cls, true, 64), (e.Pooling, e.Normalize, e.MaxLength));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void ConvertCliRefusesToOverwriteItsSource()
    {
        var model = TestAssets.Path(TestAssets.TinyRandom);
        var (exit, _, stderr) = CliHarness.Run("convert", "--model", model, "--output", model);
        Assert.Equal(2, exit);
        Assert.Contains("is the model directory itself", stderr);
        var (exit2, stdout2, stderr2) = CliHarness.Run("convert", "--model", model, "--output", Path.Combine(_out, "cli"), "--json");
        Assert.True(exit2 == 0, stderr2);
        using var doc = JsonDocument.Parse(stdout2);
        Assert.Equal(46, doc.RootElement.GetProperty("tensors").GetInt32());
        Assert.Equal("safetensors", doc.RootElement.GetProperty("source_format").GetString());
    }
}

public class ModelInfoTests
{
    [AssetFact(TestAssets.TinyRandom)]
    public void InfoJsonDescribesTheCheckpoint()
    {
        var (exit, stdout, stderr) = CliHarness.Run("info", "--model", TestAssets.Path(TestAssets.TinyRandom), "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        var root = doc.RootElement;
        Assert.Equal("safetensors", root.GetProperty("format").GetString());
        Assert.EndsWith("config.json", root.GetProperty("config_source").GetString());
        Assert.Equal(TestAssets.Path(TestAssets.TinyRandom), root.GetProperty("source").GetProperty("path").GetString());
        var ckpt = root.GetProperty("checkpoint");
        Assert.Equal(46, ckpt.GetProperty("tensors").GetInt32());
        // The checkpoint holds exactly a BertForPreTraining's parameters (HF's count for L2/H128).
        Assert.Equal(root.GetProperty("parameters").GetProperty("BertForPreTraining").GetInt64(), ckpt.GetProperty("parameters").GetInt64());
        Assert.Equal(4_433_468, ckpt.GetProperty("parameters").GetInt64());
        Assert.Equal(46, ckpt.GetProperty("dtypes").GetProperty("F32").GetInt32());
        var heads = root.GetProperty("heads");
        Assert.True(heads.GetProperty("mlm").GetBoolean());
        Assert.True(heads.GetProperty("nsp").GetBoolean());
        Assert.True(heads.GetProperty("pooler").GetBoolean());
        Assert.False(heads.GetProperty("classifier").GetBoolean());
        Assert.False(heads.GetProperty("qa_outputs").GetBoolean());
        Assert.Equal(JsonValueKind.Array, root.GetProperty("notes").ValueKind);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void PytorchBinInfoCountsItsBufferAndTiedDecoder()
    {
        using var dir = TempModelDir.TinyRandom("pytorch_model.bin");
        var info = ModelInfo.Read(dir.Path);
        Assert.Equal("pytorch zip", info.Format);
        Assert.Equal(49, info.CheckpointTensors);               // 46 + tied decoder weight/bias + position_ids
        Assert.Equal(1, info.DTypes["I64"]);                     // the position_ids buffer
        Assert.Equal(4_433_468, info.CheckpointParameters);
        Assert.Contains(info.Notes, n => n.Contains("tied MLM decoder"));
        var (exit, stdout, stderr) = CliHarness.Run("info", "--model", dir.Path);
        Assert.True(exit == 0, stderr);
        Assert.Contains("pytorch zip", stdout);
        Assert.Contains("mlm, nsp, pooler", stdout);
    }

    [AssetFact("golden/tf/keras-bert-tiny")]
    public void TfBundleInfo()
    {
        var info = ModelInfo.Read(TestAssets.Path("golden/tf/keras-bert-tiny"));
        Assert.Equal("TF bundle", info.Format);
        Assert.EndsWith("bert_config.json", info.ConfigSource);
        Assert.Equal(info.ParameterCounts["BertForPreTraining"], info.CheckpointParameters);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void LoadersCanAddNotes()
    {
        Func<ModelDirectory, IEnumerable<string>> provider = d => [$"test note for {Path.GetFileName(d.Path)}"];
        ModelInfo.NoteProviders.Add(provider);
        try
        {
            var info = ModelInfo.Read(TestAssets.Path(TestAssets.TinyRandom));
            Assert.Contains("test note for tiny-random", info.Notes);
        }
        finally
        {
            ModelInfo.NoteProviders.Remove(provider);
        }
    }
}
