using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

public class ModelDirectoryTests : IDisposable
{
    readonly string _tmp = Path.Combine(Path.GetTempPath(), "bertsharp-md-" + Guid.NewGuid().ToString("N"));

    public ModelDirectoryTests() => Directory.CreateDirectory(_tmp);
    public void Dispose() { if (Directory.Exists(_tmp)) Directory.Delete(_tmp, true); }

    static Vocabulary TinyVocab() => new(new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", "the", "cat", "sat", "on", "mat", ".", "##s" });

    static BertConfig TinyConfig => BertConfig.Preset("tiny") with { VocabSize = 12, MaxPositionEmbeddings = 32 };

    /// <summary>
    /// --init and resume load through the same matcher as inference: an old-style checkpoint (no <c>bert.</c> prefix,
    /// TF-era LayerNorm gamma/beta) fills every parameter; resuming demands every weight.
    /// </summary>
    [Fact]
    public void LoadWeightsIntoMatchesOldNamesAndResumeRequiresEveryWeight()
    {
        var config = TinyConfig;
        using var source = new BertForPreTraining(config);
        ModelUtils.InitWeights(source, config, seed: 3);
        var dir = Path.Combine(_tmp, "old-names");
        Directory.CreateDirectory(dir);
        config.Save(Path.Combine(dir, "config.json"));
        KeyValuePair<string, Tensor> Old(string name, Tensor t) => new(
            (name.StartsWith("bert.", StringComparison.Ordinal) ? name[5..] : name)
                .Replace("LayerNorm.weight", "LayerNorm.gamma").Replace("LayerNorm.bias", "LayerNorm.beta"), t);
        var tensors = source.state_dict().Where(kv => !ModelUtils.IsTiedAlias(kv.Key)).Select(kv => Old(kv.Key, kv.Value)).ToList();
        Assert.Contains(tensors, kv => kv.Key == "embeddings.LayerNorm.gamma");
        ModelDirectory.SaveTensors(Path.Combine(dir, ModelDirectory.WeightsFile), tensors);

        using var target = new BertForPreTraining(config);
        ModelUtils.InitWeights(target, config, seed: 4);
        var report = ModelDirectory.Open(dir).LoadWeightsInto(target, requireComplete: true);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        var expected = source.state_dict();
        foreach (var (name, t) in target.state_dict())
            Assert.True(t.equal(expected[name]).all().item<bool>(), name);

        // A checkpoint that lacks a weight: fine for --init (newly initialised, reported), an error for resume.
        ModelDirectory.SaveTensors(Path.Combine(dir, ModelDirectory.WeightsFile), tensors.Where(kv => !kv.Key.StartsWith("cls.seq_relationship", StringComparison.Ordinal)));
        using var partial = new BertForPreTraining(config);
        var init = ModelDirectory.Open(dir).LoadWeightsInto(partial);
        Assert.Equal(["cls.seq_relationship.bias", "cls.seq_relationship.weight"], init.Missing.Order(StringComparer.Ordinal));
        var e = Assert.Throws<InvalidDataException>(() => ModelDirectory.Open(dir).LoadWeightsInto(partial, requireComplete: true));
        Assert.Contains("missing weights 'cls.seq_relationship", e.Message);
    }

    [Fact]
    public void SaveThenLoadGivesIdenticalOutputs()
    {
        var config = TinyConfig;
        using var model = new BertForPreTraining(config);
        ModelUtils.InitWeights(model, config, seed: 7);
        model.eval();
        var tok = new BertTokenizer(TinyVocab());
        var dir = Path.Combine(_tmp, "model");
        ModelDirectory.Save(model, config, tok, dir);
        Assert.True(File.Exists(Path.Combine(dir, "config.json")));
        Assert.True(File.Exists(Path.Combine(dir, "model.safetensors")));
        Assert.True(File.Exists(Path.Combine(dir, "vocab.txt")));
        Assert.True(File.Exists(Path.Combine(dir, "tokenizer_config.json")));
        Assert.DoesNotContain(Directory.GetDirectories(_tmp), d => Path.GetFileName(d).StartsWith('.'));

        var (loaded, report) = ModelDirectory.Open(dir).LoadModel(c => new BertForPreTraining(c), seed: 999);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        using var _ = inference_mode();
        var ids = tensor(new long[] { 2, 5, 6, 4, 8, 5, 9, 10, 3 }).unsqueeze(0);
        var a = model.forward(ids);
        var b = loaded.forward(ids);
        Assert.Equal(0f, (a.PredictionLogits - b.PredictionLogits).abs().max().item<float>());
        Assert.Equal(0f, (a.SeqRelationshipLogits - b.SeqRelationshipLogits).abs().max().item<float>());
    }

    [Fact]
    public void SavingOverAnExistingDirectoryReplacesItAtomically()
    {
        var config = TinyConfig;
        using var model = new BertForPreTraining(config);
        var dir = Path.Combine(_tmp, "m");
        ModelDirectory.Save(model, config, new BertTokenizer(TinyVocab()), dir);
        File.WriteAllText(Path.Combine(dir, "stale.txt"), "x");
        ModelDirectory.Save(model, config, new BertTokenizer(TinyVocab()), dir);
        Assert.False(File.Exists(Path.Combine(dir, "stale.txt")));
        Assert.Single(Directory.GetDirectories(_tmp));
    }

    [Fact]
    public void ShapeMismatchNamesTensorAndShapes()
    {
        var config = TinyConfig;
        using var model = new BertForPreTraining(config);
        var dir = Path.Combine(_tmp, "m");
        ModelDirectory.Save(model, config, new BertTokenizer(TinyVocab()), dir);
        // Config says a wider intermediate layer than the weights have.
        (config with { IntermediateSize = 256 }).Save(Path.Combine(dir, "config.json"));
        var e = Assert.Throws<InvalidDataException>(() => ModelDirectory.Open(dir).LoadModel(c => new BertForPreTraining(c)));
        Assert.Contains("intermediate.dense.weight", e.Message);
        Assert.Contains("[512, 128]", e.Message);
        Assert.Contains("[256, 128]", e.Message);
    }

    [Fact]
    public void MissingPiecesAreClearErrors()
    {
        var e1 = Assert.Throws<DirectoryNotFoundException>(() => ModelDirectory.Open(Path.Combine(_tmp, "nope")));
        Assert.Contains("model directory not found", e1.Message);
        var e2 = Assert.Throws<FileNotFoundException>(() => ModelDirectory.Open(_tmp));
        Assert.Contains("config.json", e2.Message);
        TinyConfig.Save(Path.Combine(_tmp, "config.json"));
        var e3 = Assert.Throws<FileNotFoundException>(() => ModelDirectory.Open(_tmp));
        Assert.Contains("no weights found", e3.Message);
    }

    [Fact]
    public void LoaderAcceptsBarePrefixAndOldLayerNormNames()
    {
        var config = TinyConfig;
        using var source = new BertModel(config);
        ModelUtils.InitWeights(source, config, seed: 5);
        // A bare BertModel state dict with TF-era gamma/beta names, loaded into BertForPreTraining.
        var dict = source.state_dict().ToDictionary(
            kv => kv.Key.Replace("LayerNorm.weight", "LayerNorm.gamma").Replace("LayerNorm.bias", "LayerNorm.beta"), kv => kv.Value);
        using var target = new BertForPreTraining(config);
        var report = StateDictLoader.Load(target, dict);
        // Exactly the pre-training heads are missing (tied decoder aliases aside), nothing else.
        var heads = target.state_dict().Keys.Where(k => k.StartsWith("cls.", StringComparison.Ordinal) && !ModelUtils.IsTiedAlias(k)).Order(StringComparer.Ordinal).ToList();
        Assert.NotEmpty(heads);
        Assert.Equal(heads, report.Missing.Order(StringComparer.Ordinal));
        Assert.Empty(report.MissingEncoder);
        Assert.Empty(report.Unexpected);
        // Every source tensor (gamma/beta renamed back) landed under bert.* unchanged.
        var loaded = target.state_dict();
        var sourceDict = source.state_dict();
        Assert.Equal(sourceDict.Count, report.Loaded);
        foreach (var (key, t) in sourceDict)
            Assert.True(loaded["bert." + key].eq(t).all().item<bool>(), $"bert.{key} differs from the source's {key}");
    }

    [Fact]
    public void ResolverExplainsHowToGetAModel()
    {
        var saved = Environment.GetEnvironmentVariable(ModelResolver.EnvVar);
        Environment.SetEnvironmentVariable(ModelResolver.EnvVar, null);
        try
        {
            var e = Assert.Throws<ArgumentException>(() => ModelResolver.Resolve(null));
            Assert.Contains("--model", e.Message);
            Assert.Contains(ModelResolver.EnvVar, e.Message);
            Environment.SetEnvironmentVariable(ModelResolver.EnvVar, _tmp);
            Assert.Equal(Path.GetFullPath(_tmp), ModelResolver.Resolve(null));
        }
        finally
        {
            Environment.SetEnvironmentVariable(ModelResolver.EnvVar, saved);
        }
    }
}
