using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Export;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tests.Cli;
using BertSharp.Tests.Export;
using BertSharp.Tests.Inference;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Checkpoints;

/// <summary>
/// The exporter and the importer against each other and against HF: the golden HF checkpoints (pretraining model and
/// the four task heads) exported the way torch.onnx.export writes them come back under their HF names, bit for bit,
/// and the inference verbs give on the .onnx file exactly what they give on the original directory.
/// </summary>
[Collection(OnnxExportCollection.Name)]
public class OnnxRoundTripTests
{
    const string MiniLm = "assets/models/all-MiniLM-L6-v2";

    static void AssertSameTensors(IReadOnlyDictionary<string, Tensor> expected, IReadOnlyDictionary<string, Tensor> actual, string what)
    {
        static string Canon(string k) => k.StartsWith("bert.", StringComparison.Ordinal) ? k[5..] : k;
        var exp = expected.Where(kv => !kv.Key.EndsWith("position_ids", StringComparison.Ordinal))
            .ToDictionary(kv => Canon(StateDictLoader.Canonical(kv.Key)), kv => kv.Value);
        var act = actual.Where(kv => !kv.Key.EndsWith("position_ids", StringComparison.Ordinal) && !ModelUtils.IsTiedAlias(kv.Key))
            .ToDictionary(kv => Canon(kv.Key), kv => kv.Value);
        foreach (var k in exp.Keys.Where(ModelUtils.IsTiedAlias).ToList()) exp.Remove(k);
        Assert.Equal(exp.Keys.Order(StringComparer.Ordinal), act.Keys.Order(StringComparer.Ordinal));
        foreach (var (k, t) in exp)
        {
            Assert.True(t.shape.SequenceEqual(act[k].shape), $"{what}: {k} shape");
            Assert.True(t.to(ScalarType.Float32).eq(act[k].to(ScalarType.Float32)).all().item<bool>(), $"{what}: {k} differs");
        }
    }

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData(OnnxExportTask.Base, 13)]
    [InlineData(OnnxExportTask.Pretraining, 13)]
    [InlineData(OnnxExportTask.Pretraining, 17)]
    [InlineData(OnnxExportTask.MaskedLM, 14)]
    public void ExportedTinyRandomImportsBitIdenticalWithItsConfig(OnnxExportTask task, int opset)
    {
        using var scope = NewDisposeScope();
        var path = OnnxTestUtil.TinyRandom(task, opset);
        using var import = OnnxImport.Load(path);
        Assert.Empty(import.Unnamed);
        var original = OnnxTestUtil.TinyWeights();
        // The exported model holds what its task uses: the pretraining heads only where the task has them.
        var kept = original.Where(kv => task switch
        {
            OnnxExportTask.Base => !kv.Key.StartsWith("cls.", StringComparison.Ordinal),
            OnnxExportTask.MaskedLM => !kv.Key.StartsWith("cls.seq_relationship", StringComparison.Ordinal) && !kv.Key.StartsWith("bert.pooler", StringComparison.Ordinal),
            _ => true,
        }).ToDictionary();
        AssertSameTensors(kept, import.Weights, $"{task}/{opset}");
        var cfg = import.InferredConfig!;
        var tiny = OnnxTestUtil.TinyConfig;
        Assert.Equal((tiny.NumHiddenLayers, tiny.HiddenSize, tiny.NumAttentionHeads, tiny.IntermediateSize, tiny.VocabSize, tiny.MaxPositionEmbeddings, tiny.TypeVocabSize, tiny.HiddenAct, tiny.LayerNormEps),
                     (cfg.NumHiddenLayers, cfg.HiddenSize, cfg.NumAttentionHeads, cfg.IntermediateSize, cfg.VocabSize, cfg.MaxPositionEmbeddings, cfg.TypeVocabSize, cfg.HiddenAct, cfg.LayerNormEps));
    }

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData("seq-classification-3")]
    [InlineData("seq-regression-1")]
    [InlineData("token-classification-9")]
    [InlineData("question-answering")]
    public void ExportedHeadsImportBitIdenticalAndMatchHfLogits(string folder)
    {
        using var scope = NewDisposeScope();
        var (config, weights) = OnnxTestUtil.Head(folder);
        using var dir = new TempModelDir();
        var onnx = Path.Combine(dir.Path, "model.onnx");
        OnnxExporter.Export(config, weights, onnx, new OnnxExportOptions { Opset = 13 });
        using (var import = OnnxImport.Load(onnx))
        {
            Assert.Empty(import.Unnamed);
            AssertSameTensors(weights, import.Weights, folder);
        }
        // As a user holds it: the .onnx file with the HF config.json and vocabulary beside it.
        dir.Link(Path.Combine(OnnxTestUtil.HeadsRoot, folder), "config.json");
        dir.Link(OnnxTestUtil.Root, "vocab.txt");
        var md = ModelDirectory.Open(dir.Path);
        var architecture = md.Config.Architectures![0];
        var (model, report) = md.LoadModel(c => BertTaskModels.Create(architecture, c));
        using var _ = model;
        Assert.Empty(report.Missing);
        var golden = Path.Combine(OnnxTestUtil.HeadsRoot, folder, "golden", "batch3_padded");
        var ids = Npy.Read(Path.Combine(golden, "input_ids.npy")).ToTensor();
        var types = Npy.Read(Path.Combine(golden, "token_type_ids.npy")).ToTensor();
        var mask = Npy.Read(Path.Combine(golden, "attention_mask.npy")).ToTensor();
        using var inference = inference_mode();
        var names = folder == "question-answering" ? new[] { "start_logits", "end_logits" } : new[] { "logits" };
        var outputs = model switch
        {
            BertForSequenceClassification m => new[] { m.forward(ids, types, mask).Logits },
            BertForTokenClassification m => new[] { m.forward(ids, types, mask).Logits },
            BertForQuestionAnswering m => m.forward(ids, types, mask) is var o ? new[] { o.StartLogits, o.EndLogits } : [],
            _ => throw new InvalidOperationException(architecture),
        };
        for (int i = 0; i < names.Length; i++)
        {
            var expected = Npy.Read(Path.Combine(golden, names[i] + ".npy")).ToTensor();
            var diff = (outputs[i] - expected).abs();
            if (folder == "token-classification-9") diff = diff * mask.unsqueeze(-1); // compare where attention_mask == 1
            else if (folder == "question-answering") diff = diff * mask;
            var worst = diff.max().item<float>();
            Assert.True(worst <= 1e-4 && !float.IsNaN(worst), $"{folder} {names[i]}: max |Δ| vs HF = {worst:E2}");
        }
    }

    /// <summary>The inference verbs on an exported .onnx file (no config.json: inferred) answer exactly what they answer
    /// on the HF directory it came from.</summary>
    [AssetFact(TestAssets.TinyRandom)]
    public void FillMaskNspAndEmbedOnAnExportedFileEqualTheOriginal()
    {
        var onnxDir = new TempModelDir().Link(OnnxTestUtil.Root, "vocab.txt", "tokenizer_config.json");
        using var _ = onnxDir;
        File.CreateSymbolicLink(Path.Combine(onnxDir.Path, "model.onnx"), OnnxTestUtil.TinyRandom(OnnxExportTask.Pretraining, 13));
        var original = OnnxTestUtil.Root;
        string[][] runs =
        [
            ["fill-mask", "the capital of france is [MASK].", "--top-k", "5", "--json"],
            ["fill-mask", "the man went to the [MASK] and bought a [MASK] of milk.", "--json"],
            ["nsp", "--text-a", "the man went to the store", "--text-b", "he bought a gallon of milk", "--json"],
            ["pretrain-demo", "--text-a", "the man went to the store", "--text-b", "he bought a gallon of milk", "--json"],
        ];
        foreach (var args in runs)
        {
            var a = CliHarness.Run([.. args, "--model", original]);
            var b = CliHarness.Run([.. args, "--model", Path.Combine(onnxDir.Path, "model.onnx")]);
            Assert.True(a.Exit == 0, a.Err);
            Assert.True(b.Exit == 0, b.Err);
            Assert.Equal(a.Out, b.Out);
        }
        var texts = Path.Combine(onnxDir.Path, "texts.txt");
        File.WriteAllLines(texts, ["hello world", "", "the quick brown fox jumps over the lazy dog", "a"]);
        var outA = Path.Combine(onnxDir.Path, "a.npy");
        var outB = Path.Combine(onnxDir.Path, "b.npy");
        Assert.Equal(0, CliHarness.Run("embed", "--model", original, "--input", texts, "--output", outA).Exit);
        var e = CliHarness.Run("embed", "--model", onnxDir.Path, "--input", texts, "--output", outB);
        Assert.True(e.Exit == 0, e.Err);
        Assert.Equal(File.ReadAllBytes(outA), File.ReadAllBytes(outB));
    }

    /// <summary>ONNX → `bert convert` → HF directory → load: every tensor bit-identical to what the ONNX file holds.</summary>
    [AssetFact(MiniLm)]
    public void MiniLmConvertsToAnHfDirectoryBitIdentically()
    {
        using var scope = NewDisposeScope();
        using var outDir = new TempModelDir();
        var target = Path.Combine(outDir.Path, "hf");
        var (exit, _, err) = CliHarness.Run("convert", "--model", TestAssets.Path(MiniLm), "--output", target);
        Assert.True(exit == 0, err);
        foreach (var f in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json" })
            Assert.True(File.Exists(Path.Combine(target, f)), f);
        using var import = OnnxImport.Load(TestAssets.Path(MiniLm + "/model.onnx"));
        var converted = CheckpointFiles.LoadWeights(Path.Combine(target, "model.safetensors"));
        AssertSameTensors(import.Weights, converted, "MiniLM convert");
        Assert.Equal(30522, File.ReadAllLines(Path.Combine(target, "vocab.txt")).Length);
    }

    /// <summary>`bert info --json` on the MiniLM file without config.json: inferred config, source, and the rule behind
    /// every recovered name (36 anonymous MatMul weights).</summary>
    [AssetFact(MiniLm)]
    public void InfoShowsInferredConfigAndNameRules()
    {
        using var dir = new TempModelDir().Link(TestAssets.Path(MiniLm), "model.onnx", "vocab.txt");
        var (exit, stdout, err) = CliHarness.Run("info", "--model", dir.Path, "--json");
        Assert.True(exit == 0, err);
        var j = JsonDocument.Parse(stdout).RootElement;
        Assert.Equal("onnx", j.GetProperty("format").GetString());
        Assert.True(j.GetProperty("config_inferred").GetBoolean());
        Assert.Equal(384, j.GetProperty("config").GetProperty("hidden_size").GetInt32());
        Assert.Equal(6, j.GetProperty("config").GetProperty("num_hidden_layers").GetInt32());
        var rules = j.GetProperty("name_rules").EnumerateObject().ToDictionary(p => p.Name, p => p.Value.GetString()!);
        var weightRules = rules.Where(kv => kv.Key.Contains("encoder.layer.") && kv.Key.EndsWith(".weight") && !kv.Key.Contains("LayerNorm")).ToList();
        Assert.Equal(36, weightRules.Count);
        Assert.All(weightRules, kv => Assert.Contains("MatMul", kv.Value));
        Assert.All(weightRules, kv => Assert.Contains(kv.Key[..^".weight".Length] + ".bias", kv.Value)); // named by the bias it feeds
        Assert.Single(weightRules.Select(kv => ModelInfo.RuleKind(kv.Value)).Distinct());
        Assert.Contains(j.GetProperty("notes").EnumerateArray(), n => n.GetString()!.StartsWith("ONNX name recovery: 36 tensors by rule 'linear: MatMul", StringComparison.Ordinal));
        Assert.Equal(22_713_216, j.GetProperty("checkpoint").GetProperty("parameters").GetInt64());
    }

    /// <summary>A Hub repository's layout (tokenizer and config at the root, the export in <c>onnx/model.onnx</c>) loads
    /// from the repository directory and from the file path alike, with the same vectors as the plain directory.</summary>
    [AssetFact(MiniLm)]
    public void HubOnnxLayoutLoadsFromTheRootOrTheFile()
    {
        using var repo = new TempModelDir().Link(TestAssets.Path(MiniLm), "config.json", "vocab.txt", "tokenizer_config.json");
        Directory.CreateDirectory(Path.Combine(repo.Path, "onnx"));
        File.CreateSymbolicLink(Path.Combine(repo.Path, "onnx", "model.onnx"), TestAssets.Path(MiniLm + "/model.onnx"));
        string[] texts = ["A man is playing guitar.", "BertSharp runs BERT in .NET."];
        using var reference = Embedder.Load(TestAssets.Path(MiniLm));
        var expected = reference.Embed(texts);
        foreach (var model in new[] { repo.Path, Path.Combine(repo.Path, "onnx", "model.onnx") })
        {
            using var e = Embedder.Load(model);
            var got = e.Embed(texts);
            for (int i = 0; i < texts.Length; i++) Assert.Equal(expected[i], got[i]);
        }
    }
}
