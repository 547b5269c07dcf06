using BertSharp.Checkpoints;
using BertSharp.Export;
using BertSharp.Modeling;
using BertSharp.Tests.Golden;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static BertSharp.Tests.Export.OnnxTestUtil;
using static TorchSharp.torch;

namespace BertSharp.Tests.Export;

/// <summary>
/// Exported graphs run in ONNX Runtime (an independent ONNX implementation) and reproduce what Hugging Face computed
/// (golden .npy files) within 1e-4, at opset 13 (decomposed LayerNorm) and 17 (LayerNormalization).
/// </summary>
[Collection(OnnxExportCollection.Name)]
public class OnnxExportParityTests(ITestOutputHelper output)
{
    const double Tolerance = 1e-4;

    public static IEnumerable<object[]> CasesAndOpsets() =>
        GoldenCase.Names().SelectMany(c => new[] { 13, 17 }.Select(o => new object[] { c[0], o }));

    void Check(string what, double diff)
    {
        output.WriteLine($"{what}: max|Δ| = {diff:E2}");
        Assert.True(diff <= Tolerance, $"{what}: max|Δ| = {diff:E3} > {Tolerance}");
    }

    /// <summary>[M, V] rows of [B, L, V] logits at the (batch, position) pairs of masked_positions.</summary>
    static Tensor AtMasked(Tensor logits, Tensor positions) =>
        logits[positions[.., 0], positions[.., 1]];

    [AssetTheory(TestAssets.TinyRandom)]
    [MemberData(nameof(CasesAndOpsets))]
    public void PretrainingGraphMatchesHuggingFace(string caseName, int opset)
    {
        var path = TinyRandom(OnnxExportTask.Pretraining, opset);
        var g = GoldenCase.Get(caseName);
        using var scope = NewDisposeScope();
        var o = RunOrt(path, g.Load("input_ids"), g.Load("attention_mask"), g.Load("token_type_ids"));
        Assert.Equal(["prediction_logits", "seq_relationship_logits"], o.Keys.Order());
        Check($"{caseName}/opset{opset} nsp_logits", MaxAbsDiff(o["seq_relationship_logits"], g.Load("nsp_logits")));
        var positions = g.Load("masked_positions");
        if (positions.shape[0] > 0)
            Check($"{caseName}/opset{opset} mlm_logits_at_masked", MaxAbsDiff(AtMasked(o["prediction_logits"], positions), g.Load("mlm_logits_at_masked")));
        if (g.Has("prediction_logits"))
            Check($"{caseName}/opset{opset} prediction_logits", MaxAbsDiff(o["prediction_logits"], g.Load("prediction_logits"), g.Load("attention_mask")));
    }

    [AssetTheory(TestAssets.TinyRandom)]
    [MemberData(nameof(CasesAndOpsets))]
    public void BaseGraphMatchesHuggingFace(string caseName, int opset)
    {
        var path = TinyRandom(OnnxExportTask.Base, opset);
        var g = GoldenCase.Get(caseName);
        using var scope = NewDisposeScope();
        var mask = g.Load("attention_mask");
        var o = RunOrt(path, g.Load("input_ids"), mask, g.Load("token_type_ids"));
        Check($"{caseName}/opset{opset} last_hidden_state", MaxAbsDiff(o["last_hidden_state"], g.Load("last_hidden_state"), mask));
        Check($"{caseName}/opset{opset} pooler_output", MaxAbsDiff(o["pooler_output"], g.Load("pooler_output")));
    }

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData(13)]
    [InlineData(14)]
    [InlineData(17)]
    public void MaskedLmGraphMatchesHuggingFace(int opset)
    {
        var path = TinyRandom(OnnxExportTask.MaskedLM, opset);
        foreach (var g in GoldenCase.All())
        {
            using var scope = NewDisposeScope();
            var o = RunOrt(path, g.Load("input_ids"), g.Load("attention_mask"), g.Load("token_type_ids"));
            Assert.Equal(["logits"], o.Keys);
            var positions = g.Load("masked_positions");
            if (positions.shape[0] > 0)
                Check($"{g.Name}/opset{opset} masked-lm logits at masked", MaxAbsDiff(AtMasked(o["logits"], positions), g.Load("mlm_logits_at_masked")));
            if (g.Has("prediction_logits"))
                Check($"{g.Name}/opset{opset} masked-lm logits", MaxAbsDiff(o["logits"], g.Load("prediction_logits"), g.Load("attention_mask")));
        }
    }

    public static IEnumerable<object[]> HeadCases()
    {
        if (TestAssets.MissingReason(TestAssets.TinyRandom + "/heads") is not null) return [["(assets missing)", "", 13]];
        var cases = new List<object[]>();
        foreach (var folder in new[] { "seq-classification-3", "seq-regression-1", "token-classification-9", "question-answering" })
            foreach (var c in Directory.GetDirectories(Path.Combine(TestAssets.Path(TestAssets.TinyRandom), "heads", folder, "golden")).Order())
                foreach (var opset in new[] { 13, 17 })
                    cases.Add([folder, Path.GetFileName(c), opset]);
        return cases;
    }

    [AssetTheory(TestAssets.TinyRandom + "/heads")]
    [MemberData(nameof(HeadCases))]
    public void HeadGraphMatchesHuggingFace(string folder, string caseName, int opset)
    {
        var expectedTask = folder switch
        {
            "seq-classification-3" or "seq-regression-1" => OnnxExportTask.SequenceClassification,
            "token-classification-9" => OnnxExportTask.TokenClassification,
            _ => OnnxExportTask.QuestionAnswering,
        };
        var path = Cached($"head-{folder}-{opset}", p =>
        {
            using var scope = NewDisposeScope();
            var (config, weights) = Head(folder);
            Assert.Equal(expectedTask, OnnxExporter.DetectTask(config, weights.Keys));
            var r = OnnxExporter.Export(config, weights, p, new OnnxExportOptions { Opset = opset });   // task auto
            Assert.Equal(expectedTask, r.Task);
        });
        var dir = Path.Combine(HeadsRoot, folder, "golden", caseName);
        Tensor Load(string f) => Npy.Read(Path.Combine(dir, f + ".npy")).ToTensor();
        using var _ = NewDisposeScope();
        var mask = Load("attention_mask");
        var o = RunOrt(path, Load("input_ids"), mask, Load("token_type_ids"));
        var what = $"{folder}/{caseName}/opset{opset}";
        switch (expectedTask)
        {
            case OnnxExportTask.SequenceClassification:
                Assert.Equal(["logits"], o.Keys);
                Check($"{what} logits", MaxAbsDiff(o["logits"], Load("logits")));
                break;
            case OnnxExportTask.TokenClassification:
                Assert.Equal(["logits"], o.Keys);
                Check($"{what} logits", MaxAbsDiff(o["logits"], Load("logits"), mask));
                break;
            default:
                Assert.Equal(["end_logits", "start_logits"], o.Keys.Order());
                Check($"{what} start_logits", MaxAbsDiff(o["start_logits"], Load("start_logits"), mask));
                Check($"{what} end_logits", MaxAbsDiff(o["end_logits"], Load("end_logits"), mask));
                break;
        }
    }

    /// <summary>A Google TF release directory (read through the tensor-bundle reader, HF names) exported and run in ORT.</summary>
    [AssetFact("golden/tf/keras-bert-tiny")]
    public void GoogleTfCheckpointExportMatchesHuggingFace()
    {
        var dir = TestAssets.Path("golden/tf/keras-bert-tiny");
        var path = Path.Combine(TempDir, "keras-bert-tiny.onnx");
        var r = OnnxExporter.ExportDirectory(dir, path, new OnnxExportOptions { Opset = 13 });
        Assert.Equal(OnnxExportTask.Pretraining, r.Task);
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "hf_outputs.json")));
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            using var scope = NewDisposeScope();
            Tensor Json(string name, ScalarType type) =>
                tensor(System.Text.Json.JsonSerializer.Deserialize<double[][]>(c.GetProperty(name).GetRawText()) is { } rows
                    ? rows.SelectMany(x => x).ToArray() : [], type);
            var ids = tensor(c.GetProperty("input_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray()).unsqueeze(0);
            var types = tensor(c.GetProperty("token_type_ids").EnumerateArray().Select(e => e.GetInt64()).ToArray()).unsqueeze(0);
            var o = RunOrt(path, ids, ones_like(ids), types);
            var logits = o["prediction_logits"][0];
            Check("keras-bert-tiny prediction_logits", MaxAbsDiff(logits.reshape(-1), Json("prediction_logits", ScalarType.Float32)));
            var nsp = c.GetProperty("nsp_logits").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            Check("keras-bert-tiny nsp_logits", MaxAbsDiff(o["seq_relationship_logits"][0], tensor(nsp)));
        }
    }

    /// <summary>The exported graph against BertSharp's own TorchSharp model on inputs the goldens do not have.</summary>
    [AssetFact(TestAssets.TinyRandom)]
    public void PretrainingGraphMatchesTorchSharpModel()
    {
        var path = TinyRandom(OnnxExportTask.Pretraining, 14);
        using var scope = NewDisposeScope();
        var model = new BertForPreTraining(TinyConfig);
        var report = StateDictLoader.Load(model, TinyWeights());
        Assert.Empty(report.Missing);
        model.eval();
        var gen = new Generator(7);
        var ids = randint(1000, 30000, [3, 37], generator: gen, dtype: ScalarType.Int64);
        var mask = ones([3, 37], dtype: ScalarType.Int64);
        mask[1, 20..] = 0;
        mask[2, 5..] = 0;
        var types = zeros([3, 37], dtype: ScalarType.Int64);
        types[.., 15..] = 1;
        using (inference_mode())
        {
            var expected = model.forward(ids, types, mask);
            foreach (var level in new[] { GraphOptimizationLevel.ORT_DISABLE_ALL, GraphOptimizationLevel.ORT_ENABLE_ALL })
            {
                var o = RunOrt(path, ids, mask, types, level);
                Check($"{level} prediction_logits vs TorchSharp", MaxAbsDiff(o["prediction_logits"], expected.PredictionLogits, mask));
                Check($"{level} seq_relationship_logits vs TorchSharp", MaxAbsDiff(o["seq_relationship_logits"], expected.SeqRelationshipLogits));
            }
        }
    }

    /// <summary>Every activation and head layout, on small random models (no assets needed): ORT vs TorchSharp.</summary>
    [Theory]
    [InlineData("gelu", 13)]
    [InlineData("gelu_new", 13)]
    [InlineData("gelu_new", 17)]
    [InlineData("gelu_fast", 14)]
    [InlineData("relu", 17)]
    public void ActivationsMatchTorchSharp(string act, int opset)
    {
        using var scope = NewDisposeScope();
        manual_seed(11);   // the inputs below are random: fix them so the check is repeatable
        var config = new BertConfig
        {
            VocabSize = 97, HiddenSize = 24, NumHiddenLayers = 2, NumAttentionHeads = 3, IntermediateSize = 40,
            MaxPositionEmbeddings = 32, TypeVocabSize = 3, HiddenAct = act, LayerNormEps = 1e-5,
        };
        var model = new BertForMaskedLM(config);
        ModelUtils.InitWeights(model, config, seed: 3);
        using (no_grad())
            foreach (var (_, p) in model.named_parameters())
                p.add_(randn_like(p) * 0.5);   // LayerNorm affines and biases away from 1/0 too
        model.eval();
        var path = Path.Combine(TempDir, $"act-{act}-{opset}.onnx");
        var r = OnnxExporter.Export(config, model.state_dict(), path, new OnnxExportOptions { Opset = opset });
        Assert.Equal(OnnxExportTask.MaskedLM, r.Task);
        var ids = randint(0, 97, [2, 11], dtype: ScalarType.Int64);
        var mask = ones([2, 11], dtype: ScalarType.Int64);
        mask[0, 7..] = 0;
        var types = randint(0, 3, [2, 11], dtype: ScalarType.Int64);
        using (inference_mode())
        {
            var expected = model.forward(ids, types, mask);
            var o = RunOrt(path, ids, mask, types);
            // The perturbed weights give logits in the tens: compare relative to their scale (float32 rounding scales too).
            double scale = Math.Max(1.0, expected.abs().max().item<float>());
            Check($"{act}/opset{opset} logits vs TorchSharp (relative to max |logit| {scale:F1})", MaxAbsDiff(o["logits"], expected, mask) / scale);
        }
    }
}
