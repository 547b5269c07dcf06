using BertSharp.Checkpoints;
using BertSharp.Export;
using BertSharp.Modeling;
using BertSharp.Tests.Golden;
using TorchSharp;
using Xunit;
using static BertSharp.Tests.Export.OnnxTestUtil;
using static TorchSharp.torch;

namespace BertSharp.Tests.Export;

/// <summary>
/// The exported file looks like torch.onnx.export's (read back with an independent protobuf reader): HF input/output
/// names with symbolic dims, MatMul weights anonymous and transposed, everything else under its state-dict name.
/// </summary>
[Collection(OnnxExportCollection.Name)]
public class OnnxExportStructureTests
{
    static readonly HashSet<string> StandardOps =
    [
        "Add", "Cast", "Constant", "Div", "Erf", "Gather", "Gemm", "LayerNormalization", "MatMul", "Mul", "Pow", "ReduceMean",
        "Reshape", "Shape", "Slice", "Softmax", "Split", "Sqrt", "Squeeze", "Sub", "Tanh", "Transpose", "Unsqueeze",
    ];

    static float[] Floats(Tensor t) => t.detach().to(ScalarType.Float32).contiguous().data<float>().ToArray();

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData(13)]
    [InlineData(17)]
    public void PretrainingGraphHasTorchLayoutAndNames(int opset)
    {
        var path = TinyRandom(OnnxExportTask.Pretraining, opset);
        var f = OnnxFile.Read(path);
        using var scope = NewDisposeScope();
        var sd = TinyWeights();
        var c = TinyConfig;
        var dir = Path.GetDirectoryName(path)!;

        Assert.Equal(opset >= 17 ? 8 : 7, f.IrVersion);
        Assert.Equal("BertSharp", f.ProducerName);
        Assert.Equal([("", (long)opset)], f.Opsets);
        Assert.Equal("pretraining", f.Metadata["bertsharp.task"]);

        Assert.Equal(["input_ids", "attention_mask", "token_type_ids"], f.Inputs.Select(i => i.Name));
        Assert.All(f.Inputs, i => { Assert.Equal(7, i.ElemType); Assert.Equal(["batch_size", "sequence_length"], i.Dims); });
        Assert.Equal(["prediction_logits", "seq_relationship_logits"], f.Outputs.Select(o => o.Name));
        Assert.Equal(["batch_size", "sequence_length", 30522L], f.Outputs[0].Dims);
        Assert.Equal(["batch_size", 2L], f.Outputs[1].Dims);
        Assert.All(f.Nodes, n => Assert.Contains(n.Op, StandardOps));
        Assert.Equal(f.Nodes.Count, f.Nodes.Select(n => n.Name).Distinct().Count());

        var inits = f.Initializers.ToDictionary(i => i.Name);
        var consumers = f.Nodes.SelectMany(n => n.Inputs.Select(i => (Input: i, Node: n))).ToLookup(x => x.Input, x => x.Node);

        // Linear on 3-D activations: MatMul(x, onnx::MatMul_N [in, out] = W.T), then Add(<module>.bias, ·).
        var matmuls = f.Nodes.Where(n => n.Op == "MatMul" && inits.ContainsKey(n.Inputs[1])).ToList();
        Assert.Equal(6 * c.NumHiddenLayers + 2, matmuls.Count);
        foreach (var mm in matmuls)
        {
            var w = inits[mm.Inputs[1]];
            Assert.StartsWith("onnx::MatMul_", w.Name);
            var add = Assert.Single(consumers[mm.Outputs[0]]);
            Assert.Equal("Add", add.Op);
            var bias = add.Inputs.Single(i => i != mm.Outputs[0]);
            Assert.True(sd.ContainsKey(bias), $"bias '{bias}' is not a state-dict key");
            Assert.EndsWith("bias", bias);
            var weightKey = bias == "cls.predictions.bias" ? "bert.embeddings.word_embeddings.weight" : bias[..^"bias".Length] + "weight";
            var hf = sd[weightKey];                                   // [out, in]
            Assert.Equal([hf.shape[1], hf.shape[0]], w.Dims);          // transposed
            Assert.Equal(Floats(hf.t()), w.Floats(dir));
            Assert.Equal(Floats(sd[bias]), inits[bias].Floats(dir));
        }
        Assert.Contains(matmuls, m => consumers[m.Outputs[0]].Single().Inputs.Contains("bert.encoder.layer.0.attention.self.query.bias"));

        // Linear on 2-D activations: Gemm with named weight [out, in] and bias, transB = 1.
        var gemms = f.Nodes.Where(n => n.Op == "Gemm").ToList();
        Assert.Equal(["bert.pooler.dense.weight", "cls.seq_relationship.weight"], gemms.Select(g => g.Inputs[1]).Order());
        foreach (var g in gemms)
        {
            Assert.Equal(1L, g.Attributes["transB"]);
            Assert.Equal(sd[g.Inputs[1]].shape, inits[g.Inputs[1]].Dims);
            Assert.Equal(Floats(sd[g.Inputs[1]]), inits[g.Inputs[1]].Floats(dir));
            Assert.Equal(Floats(sd[g.Inputs[2]]), inits[g.Inputs[2]].Floats(dir));
        }

        // Every other initializer is a state-dict key holding that tensor (position_ids: HF's buffer, arange).
        foreach (var init in f.Initializers.Where(i => !i.Name.StartsWith("onnx::", StringComparison.Ordinal)))
        {
            if (init.Name == "bert.embeddings.position_ids")
            {
                Assert.Equal([1L, c.MaxPositionEmbeddings], init.Dims);
                continue;
            }
            Assert.True(sd.ContainsKey(init.Name), $"initializer '{init.Name}' is neither anonymous nor a state-dict key");
            Assert.Equal(sd[init.Name].shape, init.Dims);
            Assert.Equal(Floats(sd[init.Name]), init.Floats(dir));
        }
        foreach (var table in new[] { "word_embeddings", "position_embeddings", "token_type_embeddings" })
            Assert.Contains(f.Nodes, n => n.Op == "Gather" && n.Inputs[0] == $"bert.embeddings.{table}.weight");

        // LayerNorm: one op at opset 17, decomposed below (embeddings, 2 per layer, MLM transform).
        var layerNorms = 2 + 2 * c.NumHiddenLayers;
        var ops = f.Nodes.GroupBy(n => n.Op).ToDictionary(g => g.Key, g => g.Count());
        if (opset >= 17)
        {
            Assert.Equal(layerNorms, ops["LayerNormalization"]);
            Assert.False(ops.ContainsKey("ReduceMean"));
        }
        else
        {
            Assert.False(ops.ContainsKey("LayerNormalization"));
            Assert.Equal(2 * layerNorms, ops["ReduceMean"]);
            Assert.Equal(layerNorms, ops["Sqrt"]);
        }
        Assert.Equal(c.NumHiddenLayers + 1, ops["Erf"]);          // exact GELU in every layer and the MLM transform
        Assert.Equal(c.NumHiddenLayers, ops["Softmax"]);
        Assert.All(f.Nodes.Where(n => n.Op == "Softmax"), n => Assert.Equal(-1L, n.Attributes["axis"]));
    }

    [AssetFact(TestAssets.TinyRandom + "/heads")]
    public void HeadGraphsKeepHeadNames()
    {
        foreach (var (folder, op, weight) in new[]
        {
            ("seq-classification-3", "Gemm", "classifier.weight"), ("token-classification-9", "MatMul", "classifier.bias"),
            ("question-answering", "MatMul", "qa_outputs.bias"),
        })
        {
            using var scope = NewDisposeScope();
            var (config, weights) = Head(folder);
            var path = Path.Combine(TempDir, $"names-{folder}.onnx");
            OnnxExporter.Export(config, weights, path);
            var f = OnnxFile.Read(path);
            Assert.Contains(f.Initializers, i => i.Name == weight);
            Assert.Contains(f.Nodes, n => n.Op == op);
            var hasPooler = f.Initializers.Any(i => i.Name == "bert.pooler.dense.weight");
            Assert.Equal(folder == "seq-classification-3", hasPooler);
            Assert.DoesNotContain(f.Initializers, i => i.Name.StartsWith("cls.", StringComparison.Ordinal));
        }
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void BaseGraphUsesBertModelNames()
    {
        var f = OnnxFile.Read(TinyRandom(OnnxExportTask.Base, 14));
        Assert.Equal(["last_hidden_state", "pooler_output"], f.Outputs.Select(o => o.Name));
        Assert.Contains(f.Initializers, i => i.Name == "encoder.layer.1.output.LayerNorm.weight");
        Assert.Contains(f.Initializers, i => i.Name == "pooler.dense.weight");
        Assert.DoesNotContain(f.Initializers, i => i.Name.StartsWith("bert.", StringComparison.Ordinal) || i.Name.StartsWith("cls.", StringComparison.Ordinal));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void ExternalDataWhenOverThreshold()
    {
        using var scope = NewDisposeScope();
        var dir = Directory.CreateDirectory(Path.Combine(TempDir, "external")).FullName;
        var path = Path.Combine(dir, "model.onnx");
        var r = OnnxExporter.Export(TinyConfig, TinyWeights(), path,
            new OnnxExportOptions { Task = OnnxExportTask.Pretraining, Opset = 14, ExternalDataThreshold = 1 << 20 });
        var data = Path.Combine(dir, "model.onnx_data");
        Assert.Equal(data, r.ExternalDataPath);
        Assert.True(new FileInfo(path).Length < 200_000, $"model.onnx is {new FileInfo(path).Length} bytes with external data");
        Assert.Equal(["model.onnx", "model.onnx_data"], Directory.GetFiles(dir).Select(Path.GetFileName).Order());

        var f = OnnxFile.Read(path);
        foreach (var init in f.Initializers)
        {
            var bytes = init.Dims.Aggregate(1L, (a, b) => a * b) * (init.DataType == 7 ? 8 : 4);
            if (bytes >= 1024)
            {
                Assert.Null(init.Raw);
                Assert.Equal("model.onnx_data", init.External["location"]);
                Assert.Equal(0, long.Parse(init.External["offset"]) % 64);
                Assert.Equal(bytes, long.Parse(init.External["length"]));
            }
            else Assert.NotNull(init.Raw);
        }
        var external = f.Initializers.Where(i => i.Raw is null).ToList();
        var externalBytes = external.Sum(i => long.Parse(i.External["length"]));
        Assert.InRange(new FileInfo(data).Length, externalBytes, externalBytes + 64 * external.Count);
        Assert.True(externalBytes > 0.99 * r.InitializerBytes);
        var sd = TinyWeights();
        var word = f.Initializers.Single(i => i.Name == "bert.embeddings.word_embeddings.weight");
        Assert.Equal(Floats(sd[word.Name]), word.Floats(dir));

        var g = GoldenCase.Get("batch2_pairs_padded");
        var o = RunOrt(path, g.Load("input_ids"), g.Load("attention_mask"), g.Load("token_type_ids"));
        Assert.True(MaxAbsDiff(o["seq_relationship_logits"], g.Load("nsp_logits")) <= 1e-4);
        var inline = RunOrt(TinyRandom(OnnxExportTask.Pretraining, 14), g.Load("input_ids"), g.Load("attention_mask"), g.Load("token_type_ids"));
        Assert.Equal(0.0, MaxAbsDiff(o["prediction_logits"], inline["prediction_logits"]));
    }

    static (BertConfig, Dictionary<string, Tensor>) SmallModel()
    {
        var config = new BertConfig { VocabSize = 50, HiddenSize = 8, NumHiddenLayers = 1, NumAttentionHeads = 2, IntermediateSize = 16, MaxPositionEmbeddings = 16 };
        // Copies: the module may be finalized (and its parameters freed) once it is unreachable.
        using var model = new BertForPreTraining(config);
        return (config, model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach().clone()));
    }

    [Fact]
    public void DetectsTaskFromKeys()
    {
        var (config, sd) = SmallModel();
        var enc = sd.Keys.Where(k => k.StartsWith("bert.", StringComparison.Ordinal)).ToList();
        var noPooler = enc.Where(k => !k.Contains("pooler")).ToList();
        Assert.Equal(OnnxExportTask.Pretraining, OnnxExporter.DetectTask(config, sd.Keys));
        Assert.Equal(OnnxExportTask.MaskedLM, OnnxExporter.DetectTask(config, noPooler.Append("cls.predictions.bias").Append("cls.predictions.transform.dense.weight")));
        Assert.Equal(OnnxExportTask.Base, OnnxExporter.DetectTask(config, enc));
        Assert.Equal(OnnxExportTask.Base, OnnxExporter.DetectTask(config, enc.Select(k => k["bert.".Length..])));
        Assert.Equal(OnnxExportTask.SequenceClassification, OnnxExporter.DetectTask(config, enc.Append("classifier.weight")));
        Assert.Equal(OnnxExportTask.TokenClassification, OnnxExporter.DetectTask(config, noPooler.Append("classifier.weight")));
        var tokenConfig = config with { Extra = new() { ["architectures"] = System.Text.Json.JsonDocument.Parse("[\"BertForTokenClassification\"]").RootElement } };
        Assert.Equal(OnnxExportTask.TokenClassification, OnnxExporter.DetectTask(tokenConfig, enc.Append("classifier.weight")));
        Assert.Equal(OnnxExportTask.QuestionAnswering, OnnxExporter.DetectTask(config, noPooler.Append("qa_outputs.weight")));
    }

    [Fact]
    public void BadWeightsAreClearErrorsAndWriteNothing()
    {
        using var scope = NewDisposeScope();
        var (config, sd) = SmallModel();
        var dir = Directory.CreateDirectory(Path.Combine(TempDir, "errors")).FullName;
        var path = Path.Combine(dir, "bad.onnx");

        var missing = new Dictionary<string, Tensor>(sd);
        missing.Remove("bert.encoder.layer.0.intermediate.dense.weight");
        var e = Assert.Throws<InvalidDataException>(() => OnnxExporter.Export(config, missing, path, source: "w.safetensors"));
        Assert.Contains("'bert.encoder.layer.0.intermediate.dense.weight' is missing", e.Message);
        Assert.StartsWith("w.safetensors: ", e.Message);

        var wrong = new Dictionary<string, Tensor>(sd) { ["bert.pooler.dense.bias"] = zeros(7) };
        e = Assert.Throws<InvalidDataException>(() => OnnxExporter.Export(config, wrong, path));
        Assert.Contains("'bert.pooler.dense.bias' has shape [7], the config expects [8]", e.Message);

        e = Assert.Throws<InvalidDataException>(() => OnnxExporter.Export(config, sd, path, new OnnxExportOptions { Task = OnnxExportTask.QuestionAnswering }));
        Assert.Contains("qa_outputs.weight", e.Message);

        var a = Assert.Throws<ArgumentException>(() => OnnxExporter.Export(config, sd, path, new OnnxExportOptions { Opset = 12 }));
        Assert.Contains("13, 14, 17", a.Message);
        Assert.Throws<ArgumentException>(() => OnnxExporter.ParseTask("summarization"));
        Assert.Empty(Directory.GetFiles(dir));
    }

    [Fact]
    public void OverwritesAtomicallyAndLeavesNoTempFiles()
    {
        using var scope = NewDisposeScope();
        var (config, sd) = SmallModel();
        var dir = Directory.CreateDirectory(Path.Combine(TempDir, "atomic")).FullName;
        var path = Path.Combine(dir, "m.onnx");
        File.WriteAllText(path, "old");
        var reports = new List<OnnxExportProgress>();
        var r = OnnxExporter.Export(config, sd, path, new OnnxExportOptions { Task = OnnxExportTask.Base, Progress = new Sink(reports.Add) });
        Assert.Equal(["m.onnx"], Directory.GetFiles(dir).Select(Path.GetFileName));
        var last = reports[^1];
        Assert.Equal(new FileInfo(path).Length, last.BytesWritten);
        Assert.Equal(last.BytesWritten, last.TotalBytes);
        Assert.Equal(["last_hidden_state", "pooler_output"], OnnxFile.Read(path).Outputs.Select(o => o.Name));
        Assert.Equal(r.Initializers, OnnxFile.Read(path).Initializers.Count);
    }

    sealed class Sink(Action<OnnxExportProgress> report) : IProgress<OnnxExportProgress>
    {
        public void Report(OnnxExportProgress value) => report(value);
    }
}
