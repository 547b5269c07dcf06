using BertSharp.Checkpoints;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using G = BertSharp.Tests.Checkpoints.OnnxGraph;

namespace BertSharp.Tests.Checkpoints;

/// <summary>
/// Name recovery and config inference on small hand-built graphs. Where a weight is recovered, ONNX Runtime runs the
/// same file and the recovered <c>X.weight</c>/<c>X.bias</c> used as an HF Linear (x·Wᵀ + b) must reproduce its output —
/// so the transposition direction is checked against an independent implementation, not against this code.
/// </summary>
public class OnnxNameRecoveryTests
{
    static float[] Run(string path, string input, float[] x, long[] shape, string output)
    {
        using var session = new InferenceSession(path);
        using var xv = OrtValue.CreateTensorValueFromMemory(x, shape);
        using var ro = new RunOptions();
        using var outs = session.Run(ro, [input], [xv], [output]);
        return outs[0].GetTensorDataAsSpan<float>().ToArray();
    }

    static float[] Linear(float[] x, long[] shape, Tensor w, Tensor b)
    {
        using var scope = torch.NewDisposeScope();
        return nn.functional.linear(torch.tensor(x, shape), w, b).contiguous().data<float>().ToArray();
    }

    static void AssertClose(float[] expected, float[] actual)
    {
        Assert.Equal(expected.Length, actual.Length);
        for (var i = 0; i < expected.Length; i++) Assert.True(Math.Abs(expected[i] - actual[i]) < 1e-5, $"[{i}] {expected[i]} vs {actual[i]}");
    }

    [Fact]
    public void MatMulThenAdd_EitherInputOrder_NamesAndTransposes()
    {
        using var dir = new TempDir();
        var w1 = G.Values(3 * 4, 1); // [in=3, out=4]
        var w2 = G.Values(4 * 2, 2); // [in=4, out=2]
        var path = new G()
            .Input("x", [2, 3])
            .Init("onnx::MatMul_17", [3, 4], w1).Init("a.dense.bias", [4], G.Values(4, 3))
            .Init("42", [4, 2], w2).Init("b.out.bias", [2], G.Values(2, 4))
            .Node("MatMul", ["x", "onnx::MatMul_17"], ["m1"]).Node("Add", ["a.dense.bias", "m1"], ["h"])
            .Node("MatMul", ["h", "42"], ["m2"]).Node("Add", ["m2", "b.out.bias"], ["y"])
            .Output("h", [2, 4]).Output("y", [2, 2])
            .Save(dir.File("m.onnx"));

        var w = OnnxWeights.Analyze(path);
        Assert.Empty(w.Unnamed);
        Assert.Contains("MatMul", w.Rules["a.dense.weight"]);
        Assert.Contains("Add(a.dense.bias)", w.Rules["a.dense.weight"]);
        Assert.Contains("Add(b.out.bias)", w.Rules["b.out.weight"]);
        Assert.Equal("named initializer", w.Rules["a.dense.bias"]);
        var r = w.Names.Single(n => n.HfName == "b.out.weight");
        Assert.Equal("42", r.OnnxName);
        Assert.True(r.Transposed);

        var t = CheckpointFiles.LoadWeights(path);
        try
        {
            Assert.Equal(CheckpointFormat.Onnx, CheckpointFiles.DetectFormat(path));
            Assert.Equal([4L, 3L], t["a.dense.weight"].shape);
            Assert.Equal([2L, 4L], t["b.out.weight"].shape);
            var x = G.Values(6, 5);
            var h = Linear(x, [2, 3], t["a.dense.weight"], t["a.dense.bias"]);
            AssertClose(Run(path, "x", x, [2, 3], "h"), h);
            AssertClose(Run(path, "x", x, [2, 3], "y"), Linear(h, [2, 4], t["b.out.weight"], t["b.out.bias"]));
        }
        finally { foreach (var v in t.Values) v.Dispose(); }
    }

    [Theory]
    [InlineData(1)]
    [InlineData(0)]
    public void Gemm_TransB_NamesFromTheBias(int transB)
    {
        using var dir = new TempDir();
        var b = G.Values(3 * 5, 7); // transB=1: [out=5, in=3]; transB=0: [in=3, out=5]
        long[] dims = transB == 1 ? [5, 3] : [3, 5];
        var path = new G()
            .Input("x", [2, 3])
            .Init("onnx::Gemm_5", dims, b).Init("classifier.bias", [5], G.Values(5, 8))
            .Node("Gemm", ["x", "onnx::Gemm_5", "classifier.bias"], ["y"], G.IntAttr("transB", transB))
            .Output("y", [2, 5])
            .Save(dir.File("g.onnx"));
        var w = OnnxWeights.Analyze(path);
        Assert.Contains($"Gemm(transB={transB})", w.Rules["classifier.weight"]);
        Assert.Equal(transB == 0, w.Names.Single(n => n.HfName == "classifier.weight").Transposed);
        var t = w.LoadTensors();
        try
        {
            Assert.Equal([5L, 3L], t["classifier.weight"].shape);
            var x = G.Values(6, 9);
            AssertClose(Run(path, "x", x, [2, 3], "y"), Linear(x, [2, 3], t["classifier.weight"], t["classifier.bias"]));
        }
        finally { foreach (var v in t.Values) v.Dispose(); }
    }

    static G TiedDecoderGraph(float[] emb, float[] decoderHv, int v = 6, int h = 4) => new G()
        .Input("input_ids", [1, 2], elemType: 7)
        .Init("bert.embeddings.word_embeddings.weight", [v, h], emb)
        .Init("onnx::MatMul_99", [h, v], decoderHv)
        .Init("cls.predictions.bias", [v], G.Values(v, 11))
        .Node("Gather", ["bert.embeddings.word_embeddings.weight", "input_ids"], ["e"])
        .Node("MatMul", ["e", "onnx::MatMul_99"], ["m"]).Node("Add", ["m", "cls.predictions.bias"], ["logits"])
        .Output("logits", [1, 2, v]);

    static float[] Transpose(float[] a, int rows, int cols)
    {
        var r = new float[a.Length];
        for (var i = 0; i < rows; i++) for (var j = 0; j < cols; j++) r[j * rows + i] = a[i * cols + j];
        return r;
    }

    [Fact]
    public void TiedDecoder_FoldedIntoItsOwnInitializer_IsNamedAndMustEqualTheEmbeddings()
    {
        using var dir = new TempDir();
        var emb = G.Values(6 * 4, 10);
        var path = TiedDecoderGraph(emb, Transpose(emb, 6, 4)).Save(dir.File("mlm.onnx"));
        var w = OnnxWeights.Analyze(path);
        Assert.StartsWith("tied MLM decoder", w.Rules["cls.predictions.decoder.weight"]);
        Assert.Empty(w.Unnamed);
        var t = w.LoadTensors();
        try
        {
            Assert.True(t["cls.predictions.decoder.weight"].allclose(t["bert.embeddings.word_embeddings.weight"], 0, 0));
            // The loaded model computes what ORT computes.
            using var model = new BertSharp.Modeling.BertForMaskedLM(new BertSharp.Modeling.BertConfig { VocabSize = 6, HiddenSize = 4, NumAttentionHeads = 1, NumHiddenLayers = 1, IntermediateSize = 8 });
            var report = StateDictLoader.Load(model, t, path);
            Assert.Empty(report.Unexpected);
            using var scope = torch.NewDisposeScope();
            var e = model.bert.embeddings.word_embeddings.forward(torch.tensor(new long[] { 2, 5 }));
            var ours = model.cls.predictions.decoder.forward(e).data<float>().ToArray();
            using var session = new InferenceSession(path);
            using var ids = OrtValue.CreateTensorValueFromMemory(new long[] { 2, 5 }, [1, 2]);
            using var ro = new RunOptions();
            using var outs = session.Run(ro, ["input_ids"], [ids], ["logits"]);
            AssertClose(outs[0].GetTensorDataAsSpan<float>().ToArray(), ours);
        }
        finally { foreach (var v in t.Values) v.Dispose(); }

        var untied = TiedDecoderGraph(emb, G.Values(4 * 6, 12)).Save(dir.File("untied.onnx"));
        var ex = Assert.Throws<InvalidDataException>(() => CheckpointFiles.LoadWeights(untied));
        Assert.Contains("untied", ex.Message);
    }

    [Fact]
    public void UnnamedLeftover_IsReportedNotGuessed()
    {
        using var dir = new TempDir();
        var path = new G()
            .Input("x", [2, 3])
            .Init("onnx::MatMul_3", [3, 4], G.Values(12, 1)) // no bias after it: nothing says what it is
            .Init("1234", [2], [0.5f, 0.25f])
            .InitInt64("onnx::Reshape_8", [0, 0, 2, 2]) // integer shape constants are not parameters
            .Node("MatMul", ["x", "onnx::MatMul_3"], ["y"])
            .Output("y", [2, 4])
            .Save(dir.File("u.onnx"));
        var w = OnnxWeights.Analyze(path);
        Assert.Empty(w.Names);
        Assert.Equal(["onnx::MatMul_3", "1234"], w.Unnamed);
        var t = CheckpointFiles.LoadWeights(path);
        try
        {
            Assert.Equal(["1234", "onnx::MatMul_3"], t.Keys.Order(StringComparer.Ordinal));
            using var model = new BertSharp.Modeling.BertModel(new BertSharp.Modeling.BertConfig { VocabSize = 6, HiddenSize = 4, NumAttentionHeads = 1, NumHiddenLayers = 1, IntermediateSize = 8 });
            var report = StateDictLoader.Load(model, t, path);
            Assert.Equal(["1234", "onnx::MatMul_3"], report.Unexpected);
            Assert.Equal(0, report.Loaded);
        }
        finally { foreach (var v in t.Values) v.Dispose(); }
    }

    [Fact]
    public void AnonymousEmbeddingTables_AreNamedByWhatIndexesThem()
    {
        using var dir = new TempDir();
        var path = new G()
            .Input("input_ids", [1, 2], 7).Input("token_type_ids", [1, 2], 7)
            .Init("embeddings.LayerNorm.weight", [4], G.Values(4, 1))
            .Init("t_word", [6, 4], G.Values(24, 2)).Init("t_type", [2, 4], G.Values(8, 3)).Init("t_pos", [8, 4], G.Values(32, 4))
            .InitInt64("embeddings.position_ids", [0, 1, 2, 3, 4, 5, 6, 7])
            .InitInt64("s0", [0]).InitInt64("s1", [2])
            .Node("Gather", ["t_word", "input_ids"], ["a"])
            .Node("Gather", ["t_type", "token_type_ids"], ["b"])
            .Node("Slice", ["embeddings.position_ids", "s0", "s1"], ["pid"])
            .Node("Gather", ["t_pos", "pid"], ["c"])
            .Node("Add", ["a", "b"], ["ab"]).Node("Add", ["ab", "c"], ["y"])
            .Output("y", [1, 2, 4])
            .Save(dir.File("e.onnx"));
        var w = OnnxWeights.Analyze(path);
        Assert.Equal("t_word", w.Names.Single(n => n.HfName == "embeddings.word_embeddings.weight").OnnxName);
        Assert.Equal("t_type", w.Names.Single(n => n.HfName == "embeddings.token_type_embeddings.weight").OnnxName);
        Assert.Equal("t_pos", w.Names.Single(n => n.HfName == "embeddings.position_embeddings.weight").OnnxName);
        Assert.Contains("Gather on input_ids", w.Rules["embeddings.word_embeddings.weight"]);
        Assert.Empty(w.Unnamed);
    }

    [Fact]
    public void OrtOptimizedGraph_IsRefusedWithAHint()
    {
        using var dir = new TempDir();
        var path = new G()
            .Input("x", [1, 2, 4])
            .Init("qkv", [4, 12], G.Values(48, 1))
            .Node("Attention", ["x", "qkv"], ["y"], G.IntAttr("num_heads", 2), domain: "com.microsoft")
            .Output("y", [1, 2, 4])
            .Save(dir.File("opt.onnx"));
        var e = Assert.Throws<InvalidDataException>(() => CheckpointFiles.LoadWeights(path));
        Assert.Contains("com.microsoft.Attention", e.Message);
        Assert.Contains("unoptimized export", e.Message);
        Assert.Contains(path, e.Message);
    }

    [Theory]
    [InlineData(TensorEncoding.Raw)]
    [InlineData(TensorEncoding.FloatDataPacked)]
    [InlineData(TensorEncoding.FloatDataUnpacked)]
    [InlineData(TensorEncoding.Float16Raw)]
    [InlineData(TensorEncoding.BFloat16Raw)]
    [InlineData(TensorEncoding.Float16Int32Data)]
    [InlineData(TensorEncoding.External)]
    public void InitializerEncodings_ReadTheSameValues(TensorEncoding enc)
    {
        using var dir = new TempDir();
        // Values exact in float16 and bfloat16 (multiples of 1/8 in [-2, 2]).
        var vals = Enumerable.Range(0, 12).Select(i => (i - 6) / 4f).ToArray();
        if (enc == TensorEncoding.External)
        {
            var pad = new byte[16];
            File.WriteAllBytes(dir.File("weights.bin"), pad.Concat(vals.SelectMany(BitConverter.GetBytes)).ToArray());
        }
        var path = new G()
            .Input("x", [1, 3])
            .Init("w.bias", [3, 4], vals, enc, "weights.bin", 16)
            .Node("Add", ["x", "w.bias"], ["y"])
            .Output("y", [3, 4])
            .Save(dir.File("enc.onnx"));
        var t = CheckpointFiles.LoadWeights(path);
        try
        {
            Assert.Equal(ScalarType.Float32, t["w.bias"].dtype);
            Assert.Equal([3L, 4L], t["w.bias"].shape);
            Assert.Equal(vals, t["w.bias"].data<float>().ToArray());
        }
        finally { foreach (var v in t.Values) v.Dispose(); }
    }

    [Theory]
    [InlineData("../outside.bin", "outside the model's directory")]
    [InlineData("/etc/hostname", "outside the model's directory")]
    [InlineData("missing.bin", "does not exist")]
    public void ExternalData_OutsideOrMissing_IsAClearError(string location, string expected)
    {
        using var dir = new TempDir();
        var sub = Directory.CreateDirectory(dir.File("model")).FullName;
        File.WriteAllBytes(dir.File("outside.bin"), new byte[64]);
        var path = new G().Input("x", [2]).Init("a.bias", [2], [1f, 2f], TensorEncoding.External, location)
            .Node("Add", ["x", "a.bias"], ["y"]).Output("y", [2]).Save(Path.Combine(sub, "model.onnx"));
        var e = Assert.Throws<InvalidDataException>(() => CheckpointFiles.LoadWeights(path));
        Assert.Contains(expected, e.Message);
        Assert.Contains("a.bias", e.Message);
    }

    [Fact]
    public void ExternalData_PastTheEndOfItsFile_IsAClearError()
    {
        using var dir = new TempDir();
        File.WriteAllBytes(dir.File("w.bin"), new byte[8]);
        var path = new G().Input("x", [4]).Init("a.bias", [4], [1f, 2f, 3f, 4f], TensorEncoding.External, "w.bin", 4)
            .Node("Add", ["x", "a.bias"], ["y"]).Output("y", [4]).Save(dir.File("m.onnx"));
        var e = Assert.Throws<InvalidDataException>(() => CheckpointFiles.LoadWeights(path));
        Assert.Contains("runs past the end", e.Message);
    }

    /// <summary>One BERT-like layer with a given activation block, for config inference.</summary>
    static string LayerGraph(string dir, string act, bool fusedLayerNorm, float eps = 1e-6f)
    {
        const int H = 4, I = 8;
        var g = new G()
            .Input("input_ids", [1, 2], 7)
            .Init("embeddings.word_embeddings.weight", [10, H], G.Values(10 * H, 1))
            .Init("embeddings.position_embeddings.weight", [16, H], G.Values(16 * H, 2))
            .Init("embeddings.token_type_embeddings.weight", [3, H], G.Values(3 * H, 3))
            .Init("embeddings.LayerNorm.weight", [H], G.Values(H, 4)).Init("embeddings.LayerNorm.bias", [H], G.Values(H, 5))
            .Init("q", [H, H], G.Values(H * H, 6)).Init("encoder.layer.0.attention.self.query.bias", [H], G.Values(H, 7))
            .Init("wi", [H, I], G.Values(H * I, 8)).Init("encoder.layer.0.intermediate.dense.bias", [I], G.Values(I, 9))
            .Init("wo", [I, H], G.Values(I * H, 10)).Init("encoder.layer.0.output.dense.bias", [H], G.Values(H, 11))
            .InitInt64("heads", [2]).InitInt64("hd", [2])
            .Node("Gather", ["embeddings.word_embeddings.weight", "input_ids"], ["e"]);
        if (fusedLayerNorm)
            g.Node("LayerNormalization", ["e", "embeddings.LayerNorm.weight", "embeddings.LayerNorm.bias"], ["ln"], G.FloatAttr("epsilon", 1e-7f));
        else
            g.Node("ReduceMean", ["e"], ["mu"], G.IntsAttr("axes", -1)).Node("Sub", ["e", "mu"], ["d"])
             .Node("Constant", [], ["two"], G.TensorAttr("value", G.Tensor("", [], [2f])))
             .Node("Pow", ["d", "two"], ["d2"]).Node("ReduceMean", ["d2"], ["var"], G.IntsAttr("axes", -1))
             .Node("Constant", [], ["eps"], G.TensorAttr("value", G.Tensor("", [], [eps])))
             .Node("Add", ["var", "eps"], ["ve"]).Node("Sqrt", ["ve"], ["sd"]).Node("Div", ["d", "sd"], ["n"])
             .Node("Mul", ["n", "embeddings.LayerNorm.weight"], ["nw"]).Node("Add", ["nw", "embeddings.LayerNorm.bias"], ["ln"]);
        g.Node("MatMul", ["ln", "q"], ["qm"]).Node("Add", ["encoder.layer.0.attention.self.query.bias", "qm"], ["qb"])
         .Node("Shape", ["qb"], ["shp"])
         .Node("Constant", [], ["i0"], G.TensorAttr("value", G.Int64Tensor("", [], [0])))
         .Node("Gather", ["shp", "i0"], ["bsz"], G.IntAttr("axis", 0))
         .Node("Constant", [], ["ax0"], G.TensorAttr("value", G.Int64Tensor("", [1], [0])))
         .Node("Unsqueeze", ["bsz", "ax0"], ["bsz1"])
         .Node("Constant", [], ["m1"], G.TensorAttr("value", G.Int64Tensor("", [1], [-1])))
         .Node("Concat", ["bsz1", "m1", "heads", "hd"], ["newshape"], G.IntAttr("axis", 0))
         .Node("Reshape", ["qb", "newshape"], ["qr"])
         .Node("MatMul", ["ln", "wi"], ["im"]).Node("Add", ["im", "encoder.layer.0.intermediate.dense.bias"], ["ib"]);
        switch (act)
        {
            case "gelu":
                g.Node("Constant", [], ["sq2"], G.TensorAttr("value", G.Tensor("", [], [1.4142135f])))
                 .Node("Div", ["ib", "sq2"], ["u"]).Node("Erf", ["u"], ["erf"]).Node("Mul", ["ib", "erf"], ["a"]);
                break;
            case "gelu_new":
                g.Node("Constant", [], ["three"], G.TensorAttr("value", G.Tensor("", [], [3f])))
                 .Node("Pow", ["ib", "three"], ["c"]).Node("Add", ["ib", "c"], ["s"]).Node("Tanh", ["s"], ["th"]).Node("Mul", ["ib", "th"], ["a"]);
                break;
            case "relu":
                g.Node("Relu", ["ib"], ["a"]);
                break;
            case "gelu_op_tanh":
                g.Node("Gelu", ["ib"], ["a"], G.StrAttr("approximate", "tanh"));
                break;
        }
        g.Node("MatMul", ["a", "wo"], ["om"]).Node("Add", ["encoder.layer.0.output.dense.bias", "om"], ["out"])
         // A pooler-like Tanh after the layer must not count as the activation.
         .Node("Tanh", ["out"], ["pooled"])
         .Output("pooled", [1, 2, H]).Output("qr", [1, 2, 2, 2]);
        return g.Save(Path.Combine(dir, $"{act}-{fusedLayerNorm}-{eps}.onnx"));
    }

    [Theory]
    [InlineData("gelu", false, "gelu")]
    [InlineData("gelu_new", false, "gelu_new")]
    [InlineData("relu", true, "relu")]
    [InlineData("gelu_op_tanh", true, "gelu_new")]
    public void ConfigInference_FromTheGraph(string act, bool fusedLayerNorm, string expectedAct)
    {
        using var dir = new TempDir();
        var w = OnnxWeights.Analyze(LayerGraph(dir.Path, act, fusedLayerNorm));
        var e = OnnxConfig.Inspect(w);
        Assert.Equal(expectedAct, e.HiddenAct);
        Assert.Equal(fusedLayerNorm ? 1e-7 : 1e-6, e.LayerNormEps);
        Assert.Equal(2, e.Heads);
        Assert.Equal(4, e.Hidden);
        Assert.Equal(8, e.Intermediate);
        Assert.Equal(1, e.Layers);
        Assert.Equal(10, e.Vocab);
        Assert.Equal(16, e.Positions);
        Assert.Equal(3, e.Types);
        var c = OnnxConfig.Infer(w);
        Assert.Equal((10, 4, 1, 2, 8, 16, 3), (c.VocabSize, c.HiddenSize, c.NumHiddenLayers, c.NumAttentionHeads, c.IntermediateSize, c.MaxPositionEmbeddings, c.TypeVocabSize));
    }

    [Fact]
    public void ConfigInference_ZeroEpsilon_IsTheUnderflowedHfDefault()
    {
        using var dir = new TempDir();
        Assert.Equal(1e-12, OnnxConfig.Inspect(OnnxWeights.Analyze(LayerGraph(dir.Path, "gelu", false, eps: 0f))).LayerNormEps);
        Assert.Equal(1e-5, OnnxConfig.Inspect(OnnxWeights.Analyze(LayerGraph(dir.Path, "gelu", false, eps: 1e-5f))).LayerNormEps);
    }

    [Fact]
    public void ConfigInference_WithoutEvidence_SaysWhatIsMissing()
    {
        using var dir = new TempDir();
        var path = new G().Input("x", [2]).Init("a.bias", [2], [1f, 2f]).Node("Add", ["x", "a.bias"], ["y"]).Output("y", [2]).Save(dir.File("m.onnx"));
        var e = Assert.Throws<InvalidDataException>(() => OnnxConfig.Infer(OnnxWeights.Analyze(path)));
        Assert.Contains("cannot infer the config", e.Message);
        Assert.Contains("num_hidden_layers", e.Message);
        Assert.Contains("config.json", e.Message);
    }
}
