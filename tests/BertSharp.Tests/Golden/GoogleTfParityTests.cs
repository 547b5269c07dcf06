using System.Text.Json;
using BertSharp.Inference;
using BertSharp.Modeling;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Golden;

/// <summary>A real Google-style TF checkpoint loaded through the tensor-bundle reader reproduces HF's outputs (≤ 1e-5).</summary>
public class GoogleTfParityTests
{
    const string Dir = "golden/tf/keras-bert-tiny";

    [AssetFact(Dir)]
    public void GoogleReleaseDirectoryMatchesHuggingFace()
    {
        var dir = TestAssets.Path(Dir);
        var md = ModelDirectory.Open(dir);
        Assert.EndsWith("bert_config.json", md.ConfigPath);
        var (model, report) = md.LoadModel(c => new BertForPreTraining(c));
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "hf_outputs.json")));
        var cases = doc.RootElement.GetProperty("cases").EnumerateArray().ToList();
        Assert.NotEmpty(cases);
        foreach (var c in cases)
        {
            using var scope = NewDisposeScope();
            using var _ = inference_mode();
            long[] Ints(string name) => c.GetProperty(name).EnumerateArray().Select(e => e.GetInt64()).ToArray();
            var ids = tensor(Ints("input_ids")).unsqueeze(0);
            var types = tensor(Ints("token_type_ids")).unsqueeze(0);
            var outp = model.forward(ids, types);
            Assert.True(MaxDiff(outp.Encoder.LastHiddenState[0], c.GetProperty("last_hidden_state")) <= 1e-5);
            Assert.True(MaxDiff(outp.PredictionLogits[0], c.GetProperty("prediction_logits")) <= 1e-5);
            Assert.True(MaxDiff(outp.SeqRelationshipLogits[0], c.GetProperty("nsp_logits")) <= 1e-5);
        }
    }

    static double MaxDiff(Tensor actual, JsonElement expected)
    {
        var flat = new List<float>();
        void Walk(JsonElement e)
        {
            if (e.ValueKind == JsonValueKind.Array) foreach (var x in e.EnumerateArray()) Walk(x);
            else flat.Add(e.GetSingle());
        }
        Walk(expected);
        var a = actual.to(ScalarType.Float32).reshape(-1).data<float>().ToArray();
        Assert.Equal(flat.Count, a.Length);
        // A NaN on either side is an infinite difference (Enumerable.Max over floats would skip it and pass).
        return a.Zip(flat, (x, y) => float.IsFinite(x) && float.IsFinite(y) ? Math.Abs((double)x - y) : double.PositiveInfinity).Max();
    }
}
