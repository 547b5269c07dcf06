using BertSharp.Inference;
using BertSharp.Modeling;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;
using G = BertSharp.Tests.Checkpoints.OnnxGraph;

namespace BertSharp.Tests.Checkpoints;

/// <summary>
/// A tiny BertForPreTraining written as an ONNX graph shaped like <c>torch.onnx.export</c>'s opset-13 output
/// (anonymous transposed MatMul weights, decomposed LayerNorm, Erf GELU, dynamic Reshape shapes, a tied decoder
/// folded into its own initializer, a Gemm pooler and an anonymous transB=0 Gemm for NSP). ONNX Runtime runs the file;
/// BertSharp loads it with no config.json and must compute the same MLM and NSP logits.
/// </summary>
public class OnnxTinyExportTests
{
    static readonly BertConfig Cfg = new()
    {
        VocabSize = 50, HiddenSize = 8, NumAttentionHeads = 2, NumHiddenLayers = 2, IntermediateSize = 16,
        MaxPositionEmbeddings = 16, TypeVocabSize = 2,
    };

    sealed class Writer(G g, Dictionary<string, Tensor> sd)
    {
        int _n;
        public string Tmp() => $"{++_n}";
        float[] Data(string key, bool transpose = false)
        {
            using var t = transpose ? sd[key].t().contiguous() : sd[key].contiguous();
            return t.data<float>().ToArray();
        }
        long[] Dims(string key, bool transpose = false) => transpose ? [sd[key].shape[1], sd[key].shape[0]] : sd[key].shape;
        public string Named(string key)
        {
            g.Init("bert." + key, Dims("bert." + key), Data("bert." + key));
            return "bert." + key;
        }
        public string Const(float v)
        {
            var o = Tmp();
            g.Node("Constant", [], [o], G.TensorAttr("value", G.Tensor("", [], [v])));
            return o;
        }
        public string ConstI(params long[] v)
        {
            var o = Tmp();
            g.Node("Constant", [], [o], G.TensorAttr("value", G.Int64Tensor("", v.Length == 1 ? [1] : [v.Length], v)));
            return o;
        }
        public string Op(string op, string[] inputs, Action<Pb>? attr = null)
        {
            var o = Tmp();
            g.Node(op, inputs, [o], attr);
            return o;
        }
        /// <summary>x·W + b with W an anonymous [in, out] initializer and Add(bias, ·) as torch writes it.</summary>
        public string Linear(string x, string prefix, string sdPrefix)
        {
            var w = "onnx::MatMul_" + Tmp();
            g.Init(w, Dims(sdPrefix + ".weight", true), Data(sdPrefix + ".weight", true));
            g.Init(prefix + ".bias", Dims(sdPrefix + ".bias"), Data(sdPrefix + ".bias"));
            var m = Op("MatMul", [x, w]);
            return Op("Add", [prefix + ".bias", m]);
        }
        public string LayerNorm(string x, string prefix, string sdPrefix)
        {
            g.Init(prefix + ".weight", Dims(sdPrefix + ".weight"), Data(sdPrefix + ".weight"));
            g.Init(prefix + ".bias", Dims(sdPrefix + ".bias"), Data(sdPrefix + ".bias"));
            var mu = Op("ReduceMean", [x], G.IntsAttr("axes", -1));
            var d = Op("Sub", [x, mu]);
            var v = Op("ReduceMean", [Op("Pow", [d, Const(2f)])], G.IntsAttr("axes", -1));
            var n = Op("Div", [d, Op("Sqrt", [Op("Add", [v, Const(1e-12f)])])]);
            return Op("Add", [Op("Mul", [n, prefix + ".weight"]), prefix + ".bias"]);
        }
        public string Gelu(string x) =>
            Op("Mul", [Op("Mul", [x, Op("Add", [Op("Erf", [Op("Div", [x, Const(1.4142135f)])]), Const(1f)])]), Const(0.5f)]);
        public string Dim(string x, long i) => Op("Unsqueeze", [Op("Gather", [Op("Shape", [x]), Scalar(i)], G.IntAttr("axis", 0)), ConstI(0)]);
        string Scalar(long v)
        {
            var o = Tmp();
            g.Node("Constant", [], [o], G.TensorAttr("value", G.Int64Tensor("", [], [v])));
            return o;
        }
        public string ShapeInit(params long[] v)
        {
            var name = Tmp();
            g.InitInt64(name, v);
            return name;
        }
    }

    static string Export(string path, BertForPreTraining model)
    {
        var sd = model.state_dict().ToDictionary(kv => kv.Key, kv => kv.Value.detach(), StringComparer.Ordinal);
        var g = new G();
        var w = new Writer(g, sd);
        const int H = 8, Heads = 2, D = 4;
        g.Input("input_ids", [-1, -1], 7).Input("attention_mask", [-1, -1], 7).Input("token_type_ids", [-1, -1], 7);
        // Extended mask: (1 - mask[:, None, None, :]) * -10000
        var m = w.Op("Cast", [w.Op("Unsqueeze", [w.Op("Unsqueeze", ["attention_mask", w.ConstI(1)]), w.ConstI(2)])], G.IntAttr("to", 1));
        var addMask = w.Op("Mul", [w.Op("Sub", [w.Const(1f), m]), w.Const(-10000f)]);
        // Embeddings
        g.InitInt64("bert.embeddings.position_ids_flat", Enumerable.Range(0, 16).Select(i => (long)i).ToArray());
        var len = w.Dim("input_ids", 1);
        var pid = w.Op("Slice", ["bert.embeddings.position_ids_flat", w.ShapeInit(0), len, w.ShapeInit(0)]);
        var e = w.Op("Add", [w.Op("Add", [w.Op("Gather", [w.Named("embeddings.word_embeddings.weight"), "input_ids"]),
                                             w.Op("Gather", [w.Named("embeddings.token_type_embeddings.weight"), "token_type_ids"])]),
                             w.Op("Gather", [w.Named("embeddings.position_embeddings.weight"), pid])]);
        var h = w.LayerNorm(e, "bert.embeddings.LayerNorm", "bert.embeddings.LayerNorm");
        for (var l = 0; l < 2; l++)
        {
            var p = $"bert.encoder.layer.{l}";
            string Heads4(string x) => w.Op("Reshape", [x, w.Op("Concat", [w.Dim(x, 0), w.Dim(x, 1), w.ShapeInit(Heads), w.ShapeInit(D)], G.IntAttr("axis", 0))]);
            var q = w.Op("Transpose", [Heads4(w.Linear(h, p + ".attention.self.query", p + ".attention.self.query"))], G.IntsAttr("perm", 0, 2, 1, 3));
            var k = w.Op("Transpose", [Heads4(w.Linear(h, p + ".attention.self.key", p + ".attention.self.key"))], G.IntsAttr("perm", 0, 2, 3, 1));
            var v = w.Op("Transpose", [Heads4(w.Linear(h, p + ".attention.self.value", p + ".attention.self.value"))], G.IntsAttr("perm", 0, 2, 1, 3));
            var scores = w.Op("Add", [w.Op("Div", [w.Op("MatMul", [q, k]), w.Const(2f)]), addMask]);
            var ctx = w.Op("Transpose", [w.Op("MatMul", [w.Op("Softmax", [scores], G.IntAttr("axis", -1)), v])], G.IntsAttr("perm", 0, 2, 1, 3));
            var merged = w.Op("Reshape", [ctx, w.Op("Concat", [w.Dim(ctx, 0), w.Dim(ctx, 1), w.ShapeInit(H)], G.IntAttr("axis", 0))]);
            var a = w.LayerNorm(w.Op("Add", [w.Linear(merged, p + ".attention.output.dense", p + ".attention.output.dense"), h]), p + ".attention.output.LayerNorm", p + ".attention.output.LayerNorm");
            var inter = w.Gelu(w.Linear(a, p + ".intermediate.dense", p + ".intermediate.dense"));
            h = w.LayerNorm(w.Op("Add", [w.Linear(inter, p + ".output.dense", p + ".output.dense"), a]), p + ".output.LayerNorm", p + ".output.LayerNorm");
        }
        // Pooler: Gemm on the named weight (transB=1), then Tanh.
        var first = w.Op("Gather", [h, ScalarZero(g, w)], G.IntAttr("axis", 1));
        var pooled = w.Op("Tanh", [w.Op("Gemm", [first, w.Named("pooler.dense.weight"), w.Named("pooler.dense.bias")], G.IntAttr("transB", 1))]);
        // NSP: an anonymous [in, out] Gemm weight with transB=0.
        g.Init("onnx::Gemm_nsp", [H, 2], Transposed(sd["cls.seq_relationship.weight"]));
        g.Init("cls.seq_relationship.bias", [2], sd["cls.seq_relationship.bias"].data<float>().ToArray());
        g.Node("Gemm", [pooled, "onnx::Gemm_nsp", "cls.seq_relationship.bias"], ["seq_relationship_logits"], G.IntAttr("transB", 0));
        // MLM head; the decoder is the word embeddings transposed, folded into its own initializer.
        var t = w.LayerNorm(w.Gelu(w.Linear(h, "cls.predictions.transform.dense", "cls.predictions.transform.dense")), "cls.predictions.transform.LayerNorm", "cls.predictions.transform.LayerNorm");
        g.Init("onnx::MatMul_decoder", [H, 50], Transposed(sd["bert.embeddings.word_embeddings.weight"]));
        g.Init("cls.predictions.bias", [50], sd["cls.predictions.bias"].data<float>().ToArray());
        g.Node("MatMul", [t, "onnx::MatMul_decoder"], ["dec"]).Node("Add", ["dec", "cls.predictions.bias"], ["prediction_logits"]);
        g.Output("prediction_logits", [-1, -1, 50]).Output("seq_relationship_logits", [-1, 2]);
        return g.Save(path);
    }

    static string ScalarZero(G g, Writer w)
    {
        var o = w.Tmp();
        g.Node("Constant", [], [o], G.TensorAttr("value", G.Int64Tensor("", [], [0])));
        return o;
    }

    static float[] Transposed(Tensor t)
    {
        using var x = t.t().contiguous();
        return x.data<float>().ToArray();
    }

    [Fact]
    public void TinyPreTrainingExport_LoadsWithoutConfig_AndMatchesOnnxRuntime()
    {
        using var dir = new TempDir();
        using var source = new BertForPreTraining(Cfg);
        ModelUtils.InitWeights(source, Cfg, seed: 3);
        using (no_grad())
            foreach (var (name, p) in source.named_parameters())
                if (name.EndsWith("bias", StringComparison.Ordinal) || name.Contains("LayerNorm")) p.add_(torch.randn_like(p) * 0.1);
        var path = Export(dir.File("model.onnx"), source);
        File.WriteAllLines(dir.File("vocab.txt"), ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", .. Enumerable.Range(0, 45).Select(i => $"w{i}")]);

        var md = ModelDirectory.Open(dir.Path);
        Assert.True(md.ConfigInferred);
        Assert.Equal((50, 8, 2, 2, 16, 16, 2, "gelu", 1e-12), (md.Config.VocabSize, md.Config.HiddenSize, md.Config.NumHiddenLayers,
            md.Config.NumAttentionHeads, md.Config.IntermediateSize, md.Config.MaxPositionEmbeddings, md.Config.TypeVocabSize, md.Config.HiddenAct, md.Config.LayerNormEps));
        Assert.StartsWith("tied MLM decoder", md.NameRules!["cls.predictions.decoder.weight"]);
        Assert.Contains("Gemm(transB=0)", md.NameRules["cls.seq_relationship.weight"]);
        var (model, report) = md.LoadModel(c => new BertForPreTraining(c));
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);

        long[] ids = [2, 7, 9, 4, 11, 3, 0, 0, 2, 15, 3, 20, 21, 3, 0, 0, 2, 30, 31, 32, 33, 34, 35, 3];
        long[] types = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        long[] mask = ids.Select((x, i) => i % 8 >= 6 && x == 0 ? 0L : 1L).ToArray();
        long[] shape = [3, 8];
        using var session = new InferenceSession(path);
        using var a = OrtValue.CreateTensorValueFromMemory(ids, shape);
        using var b = OrtValue.CreateTensorValueFromMemory(mask, shape);
        using var c = OrtValue.CreateTensorValueFromMemory(types, shape);
        using var ro = new RunOptions();
        using var outs = session.Run(ro, ["input_ids", "attention_mask", "token_type_ids"], [a, b, c], ["prediction_logits", "seq_relationship_logits"]);
        var ortMlm = outs[0].GetTensorDataAsSpan<float>().ToArray();
        var ortNsp = outs[1].GetTensorDataAsSpan<float>().ToArray();

        using var _ = torch.inference_mode();
        using var scope = torch.NewDisposeScope();
        var o = model.forward(torch.tensor(ids, shape), torch.tensor(types, shape), torch.tensor(mask, shape));
        var mlm = o.PredictionLogits.contiguous().data<float>().ToArray();
        var nsp = o.SeqRelationshipLogits.contiguous().data<float>().ToArray();
        Assert.Equal(ortNsp.Length, nsp.Length);
        for (var i = 0; i < nsp.Length; i++) Assert.True(Math.Abs(ortNsp[i] - nsp[i]) < 1e-4, $"nsp[{i}] {nsp[i]} vs ORT {ortNsp[i]}");
        Assert.Equal(ortMlm.Length, mlm.Length);
        double max = 0;
        for (var t = 0; t < mask.Length; t++)
            if (mask[t] == 1)
                for (var v = 0; v < 50; v++) max = Math.Max(max, Math.Abs(ortMlm[t * 50 + v] - mlm[t * 50 + v]));
        Assert.True(max < 1e-4, $"MLM logits max |Δ| {max}");
    }
}
