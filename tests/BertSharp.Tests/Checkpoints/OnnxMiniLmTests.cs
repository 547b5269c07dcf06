using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using Microsoft.ML.OnnxRuntime;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace BertSharp.Tests.Checkpoints;

/// <summary>
/// The shared all-MiniLM-L6-v2 ONNX file loaded into BertSharp's BertModel must compute what ONNX Runtime computes on
/// the same file: the 13 golden texts (ORT outputs stored beside them) and padded batches run through ORT here.
/// </summary>
public class OnnxMiniLmTests(ITestOutputHelper output)
{
    const string Dir = "assets/models/all-MiniLM-L6-v2";
    const string Onnx = Dir + "/model.onnx";
    const string Golden = Dir + "/golden/ort_outputs.jsonl";
    const double Tol = 1e-4;

    static string DirPath => TestAssets.Path(Dir);

    static BertModel Load(string dirOrFile, out ModelDirectory md, out LoadReport report)
    {
        md = ModelDirectory.Open(dirOrFile);
        var (model, r) = md.LoadModel(c => new BertModel(c));
        report = r;
        return model;
    }

    static (float[] Cls, float[] Mean, double Sum, int Length)[] GoldenRows()
    {
        return File.ReadLines(TestAssets.Path(Golden)).Where(l => l.Trim().Length > 0).Select(l =>
        {
            using var d = JsonDocument.Parse(l);
            float[] Arr(string k) => d.RootElement.GetProperty(k).EnumerateArray().Select(e => e.GetSingle()).ToArray();
            return (Arr("cls"), Arr("mean"), d.RootElement.GetProperty("last_hidden_state_sum").GetDouble(), d.RootElement.GetProperty("length").GetInt32());
        }).ToArray();
    }

    static double MaxDiff(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        Assert.Equal(a.Length, b.Length);
        double m = 0;
        for (var i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - b[i]));
        return m;
    }

    /// <summary>Runs one text unpadded and compares cls/mean (vectors) and the sum of all elements with the stored ORT outputs; returns the max |Δ| of cls/mean and of the sum.</summary>
    static (double Vec, double Sum) CompareGolden(BertModel model, BertTokenizer tok)
    {
        var texts = File.ReadAllLines(TestAssets.Path(Dir + "/golden/texts.txt")).Where(t => t.Length > 0).ToArray();
        var gold = GoldenRows();
        Assert.Equal(13, texts.Length);
        Assert.Equal(texts.Length, gold.Length);
        double vec = 0, sum = 0;
        using var _ = torch.inference_mode();
        for (var i = 0; i < texts.Length; i++)
        {
            using var scope = torch.NewDisposeScope();
            var e = tok.Encode(texts[i]);
            var ids = torch.tensor(e.InputIds.Select(x => (long)x).ToArray(), [1, e.InputIds.Length]);
            var types = torch.tensor(e.TokenTypeIds.Select(x => (long)x).ToArray(), [1, e.InputIds.Length]);
            var mask = torch.ones([1, e.InputIds.Length], ScalarType.Int64);
            var h = model.forward(ids, types, mask).LastHiddenState[0];
            vec = Math.Max(vec, MaxDiff(h[0].data<float>().ToArray(), gold[i].Cls));
            vec = Math.Max(vec, MaxDiff(h.mean([0]).data<float>().ToArray(), gold[i].Mean));
            Assert.Equal(gold[i].Length, e.InputIds.Length);
            sum = Math.Max(sum, Math.Abs(h.to(ScalarType.Float64).sum().item<double>() - gold[i].Sum));
        }
        return (vec, sum);
    }

    [AssetFact(Onnx, Golden)]
    public void GoldenTexts_MatchOnnxRuntime()
    {
        var model = Load(DirPath, out var md, out var report);
        Assert.False(md.ConfigInferred);
        Assert.Equal(CheckpointFormat.Onnx, CheckpointFiles.DetectFormat(md.WeightsPath));
        Assert.Empty(report.Unexpected);
        Assert.Empty(report.Missing);
        var (vec, sum) = CompareGolden(model, md.LoadTokenizer());
        output.WriteLine($"golden: max |Δ| cls/mean {vec:g3}, last_hidden_state_sum {sum:g3}");
        Assert.True(vec <= Tol, $"cls/mean max |Δ| {vec}");
        // The sum of all L×384 elements accumulates the per-element rounding differences.
        Assert.True(sum <= 1e-3, $"sum max |Δ| {sum}");
    }

    [AssetFact(Onnx, Golden)]
    public void NoConfigJson_InfersTheShippedConfig_AndMatches()
    {
        using var tmp = new TempDir();
        File.CreateSymbolicLink(tmp.File("model.onnx"), TestAssets.Path(Onnx));
        File.CreateSymbolicLink(tmp.File("vocab.txt"), TestAssets.Path(Dir + "/vocab.txt"));
        var model = Load(tmp.Path, out var md, out var report);
        Assert.True(md.ConfigInferred);
        Assert.Contains("inferred", md.ConfigSource);
        Assert.Empty(report.Missing);
        var shipped = BertConfig.Load(TestAssets.Path(Dir + "/config.json"));
        var c = md.Config;
        Assert.Equal(shipped.VocabSize, c.VocabSize);
        Assert.Equal(shipped.HiddenSize, c.HiddenSize);
        Assert.Equal(shipped.NumHiddenLayers, c.NumHiddenLayers);
        Assert.Equal(shipped.NumAttentionHeads, c.NumAttentionHeads);
        Assert.Equal(shipped.IntermediateSize, c.IntermediateSize);
        Assert.Equal(shipped.HiddenAct, c.HiddenAct);
        Assert.Equal(shipped.MaxPositionEmbeddings, c.MaxPositionEmbeddings);
        Assert.Equal(shipped.TypeVocabSize, c.TypeVocabSize);
        Assert.Equal(shipped.LayerNormEps, c.LayerNormEps);
        Assert.Equal(shipped.PadTokenId, c.PadTokenId);
        Assert.Equal(shipped.PositionEmbeddingType, c.PositionEmbeddingType);
        Assert.NotNull(md.NameRules);
        Assert.Contains("transposed", md.NameRules!["encoder.layer.3.intermediate.dense.weight"]);
        Assert.Equal("named initializer", md.NameRules["pooler.dense.weight"]);
        var (vec, _) = CompareGolden(model, md.LoadTokenizer());
        Assert.True(vec <= Tol, $"cls/mean max |Δ| {vec}");

        // The OnnxImport entry point gives the same config and rules.
        using var imp = OnnxImport.Load(tmp.File("model.onnx"));
        Assert.Equal(c with { Extra = null }, imp.InferredConfig! with { Extra = null });
        Assert.Equal(6 * 16 + 5 + 2, imp.Rules.Count);
        Assert.Empty(imp.Unnamed);
    }

    [AssetFact(Onnx)]
    public void ModelPathToTheOnnxFile_Resolves()
    {
        var file = TestAssets.Path(Onnx);
        var resolved = ModelResolver.Resolve(file);
        Assert.Equal(Path.GetFullPath(file), resolved);
        var md = ModelDirectory.Open(resolved);
        Assert.Equal(Path.GetFullPath(DirPath), Path.GetFullPath(md.Path));
        Assert.False(md.ConfigInferred); // config.json beside the file is used
        Assert.Equal(30522, md.LoadTokenizer().Vocab.Count);
    }

    [AssetFact(Onnx)]
    public void ConfigJsonContradictingTheGraph_IsAClearError()
    {
        using var tmp = new TempDir();
        File.CreateSymbolicLink(tmp.File("model.onnx"), TestAssets.Path(Onnx));
        var cfg = BertConfig.Load(TestAssets.Path(Dir + "/config.json"));
        (cfg with { NumAttentionHeads = 6 }).Save(tmp.File("config.json"));
        var e = Assert.Throws<InvalidDataException>(() => ModelDirectory.Open(tmp.Path));
        Assert.Contains("num_attention_heads is 6", e.Message);
        Assert.Contains("has 12", e.Message);
        (cfg with { IntermediateSize = 1024 }).Save(tmp.File("config.json"));
        var e2 = Assert.Throws<InvalidDataException>(() => ModelDirectory.Open(tmp.Path).LoadModel(c => new BertModel(c)));
        Assert.Contains("shape mismatch", e2.Message);
    }

    [AssetFact(Dir + "/vocab.txt", TestAssets.UncasedVocab)]
    public void CrlfVocabulary_IsTheSameVocabulary()
    {
        var crlf = Vocabulary.Load(TestAssets.Path(Dir + "/vocab.txt"));
        var lf = Vocabulary.Load(TestAssets.Path(TestAssets.UncasedVocab));
        Assert.Contains("\r\n", File.ReadAllText(TestAssets.Path(Dir + "/vocab.txt"))[..200]);
        Assert.Equal(lf.Tokens, crlf.Tokens);
        Assert.DoesNotContain(crlf.Tokens, t => t.Contains('\r'));
        var a = new BertTokenizer(crlf).EncodeIds("Hello, world! Tokenizers don't care about line ends.");
        var b = new BertTokenizer(lf).EncodeIds("Hello, world! Tokenizers don't care about line ends.");
        Assert.Equal(b, a);
    }

    [AssetFact(Onnx)]
    public void PaddedBatches_MatchOnnxRuntimeRunOnTheSameFile()
    {
        var model = Load(DirPath, out var md, out _);
        var tok = md.LoadTokenizer();
        using var session = new InferenceSession(TestAssets.Path(Onnx));
        var pooledName = session.OutputMetadata.Keys.Single(k => k != "last_hidden_state");
        (string A, string? B)[][] batches =
        [
            [("A man is playing a guitar.", null), ("Short.", null), ("The quick brown fox jumps over the lazy dog near the riverbank at dawn.", null)],
            [("Is this the same sentence?", "No, it is a different one, and a longer one at that."), ("One.", "Two."), ("A single text in a pair batch", null)],
        ];
        double maxHidden = 0, maxPooled = 0;
        foreach (var batch in batches)
        {
            var enc = tok.EncodeBatch(batch.Select(p => p.A).ToList(), batch.Select(p => p.B).ToList());
            var len = enc.Max(e => e.InputIds.Length);
            enc = enc.Select(e => tok.Pad(e, len)).ToArray();
            long[] Flat(Func<BertEncoding, int[]> f) => enc.SelectMany(e => f(e).Select(x => (long)x)).ToArray();
            var ids = Flat(e => e.InputIds);
            var types = Flat(e => e.TokenTypeIds);
            var mask = Flat(e => e.AttentionMask);
            Assert.Contains(0L, mask);
            long[] shape = [enc.Length, len];

            using var idsV = OrtValue.CreateTensorValueFromMemory(ids, shape);
            using var typesV = OrtValue.CreateTensorValueFromMemory(types, shape);
            using var maskV = OrtValue.CreateTensorValueFromMemory(mask, shape);
            using var runOptions = new RunOptions();
            using var outputs = session.Run(runOptions,
                ["input_ids", "attention_mask", "token_type_ids"], [idsV, maskV, typesV], ["last_hidden_state", pooledName]);
            var ortHidden = outputs[0].GetTensorDataAsSpan<float>().ToArray();
            var ortPooled = outputs[1].GetTensorDataAsSpan<float>().ToArray();

            using var _ = torch.inference_mode();
            using var scope = torch.NewDisposeScope();
            var o = model.forward(torch.tensor(ids, shape), torch.tensor(types, shape), torch.tensor(mask, shape));
            var ours = o.LastHiddenState.contiguous().data<float>().ToArray();
            var pooled = o.PooledOutput!.contiguous().data<float>().ToArray();
            var h = md.Config.HiddenSize;
            for (var t = 0; t < ids.Length; t++)
            {
                if (mask[t] == 0) continue;
                maxHidden = Math.Max(maxHidden, MaxDiff(ours.AsSpan(t * h, h), ortHidden.AsSpan(t * h, h)));
            }
            maxPooled = Math.Max(maxPooled, MaxDiff(pooled, ortPooled));
        }
        output.WriteLine($"padded batches: max |Δ| last_hidden_state (real tokens) {maxHidden:g3}, pooler {maxPooled:g3}");
        Assert.True(maxHidden <= Tol, $"last_hidden_state max |Δ| {maxHidden}");
        Assert.True(maxPooled <= Tol, $"pooler max |Δ| {maxPooled}");
    }
}
