using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Export;
using BertSharp.Inference;
using BertSharp.Tests.Cli;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Inference;

/// <summary>A cache folder for the ONNX engine shared by one test class, removed afterwards.</summary>
public sealed class OnnxCacheFixture : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("bertsharp-onnx-cache-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}

/// <summary>
/// The ONNX Runtime engine of <see cref="Embedder"/> against the torch engine (an independent implementation of the
/// same forward pass) on tiny-random, against ONNX Runtime's own vectors for the shipped MiniLM file, and its cache.
/// </summary>
public class OnnxEngineTests(OnnxCacheFixture cache, Xunit.Abstractions.ITestOutputHelper log) : IClassFixture<OnnxCacheFixture>
{
    static readonly string[] Texts =
    [
        "the quick brown fox jumps over the lazy dog",
        "hello",
        "BERT in C#: sentence embeddings on ONNX Runtime and on TorchSharp should agree to the last digits.",
        "a",
        "padding is masked out, so a short text in a batch of long ones keeps its vector",
        "naïve café — unicode, punctuation!? and numbers 12345",
        "two words",
    ];

    EmbedderOptions Options(InferenceEngine engine, EmbeddingPooling pooling, bool normalize, int batch = 3) => new()
    {
        Engine = engine,
        Pooling = pooling,
        Normalize = normalize,
        BatchSize = batch,
        Onnx = new OnnxEngineOptions { CacheDirectory = cache.Path },
    };

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData(EmbeddingPooling.Mean, false)]
    [InlineData(EmbeddingPooling.Mean, true)]
    [InlineData(EmbeddingPooling.Cls, false)]
    [InlineData(EmbeddingPooling.Max, false)]
    [InlineData(EmbeddingPooling.Max, true)]
    [InlineData(EmbeddingPooling.Pooler, false)]
    [InlineData(EmbeddingPooling.Pooler, true)]
    public void OnnxEngineEqualsTorchEngineOnPaddedBatches(EmbeddingPooling pooling, bool normalize)
    {
        var model = TestAssets.Path(TestAssets.TinyRandom);
        using var torchEmbedder = Embedder.Load(model, Options(InferenceEngine.Torch, pooling, normalize));
        using var onnxEmbedder = Embedder.Load(model, Options(InferenceEngine.Onnx, pooling, normalize));
        Assert.Equal(InferenceEngine.Torch, torchEmbedder.Engine);
        Assert.Equal(InferenceEngine.Onnx, onnxEmbedder.Engine);
        Assert.NotNull(onnxEmbedder.OnnxEngine);
        Assert.StartsWith(cache.Path, onnxEmbedder.OnnxEngine!.ModelPath);
        var a = torchEmbedder.Embed(Texts);
        var b = onnxEmbedder.Embed(Texts);
        double worst = 0;
        for (int i = 0; i < Texts.Length; i++)
        {
            Assert.Equal(a[i].Length, b[i].Length);
            worst = Math.Max(worst, EmbedderTests.MaxDiff(a[i], b[i]));
        }
        log.WriteLine($"{pooling} normalize={normalize}: max |Δ| onnx vs torch = {worst:E2}");
        Assert.True(worst <= 1e-5, $"{pooling}: max |Δ| = {worst:E2}");
        // The vectors are not trivially equal (e.g. all zero): texts differ from one another.
        Assert.True(EmbedderTests.MaxDiff(b[0], b[1]) > 1e-3);
        // Batch size does not change the ONNX engine's vectors (padding masked out).
        using var single = Embedder.Load(model, Options(InferenceEngine.Onnx, pooling, normalize, batch: 1));
        var c = single.Embed(Texts);
        for (int i = 0; i < Texts.Length; i++) Assert.True(EmbedderTests.MaxDiff(b[i], c[i]) <= 1e-5);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void LongTextWindowsAgreeAcrossEngines()
    {
        var model = TestAssets.Path(TestAssets.TinyRandom);
        var texts = new[] { string.Join(' ', Enumerable.Repeat("the quick brown fox jumps over the lazy dog", 8)), "short one" };
        EmbedderOptions O(InferenceEngine e) => Options(e, EmbeddingPooling.Mean, true) with { MaxLength = 16, Stride = 4 };
        using var t = Embedder.Load(model, O(InferenceEngine.Torch));
        using var o = Embedder.Load(model, O(InferenceEngine.Onnx));
        var rt = t.EmbedWithReport(texts);
        var ro = o.EmbedWithReport(texts);
        Assert.Equal(rt.Windows, ro.Windows);
        Assert.True(ro.Windows > 3);
        for (int i = 0; i < texts.Length; i++) Assert.True(EmbedderTests.MaxDiff(rt.Vectors[i], ro.Vectors[i]) <= 1e-5);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void EngineChoiceAndRefusals()
    {
        var cpu = CPU;
        Assert.Equal(InferenceEngine.Onnx, Embedder.ResolveEngine(InferenceEngine.Auto, ScalarType.Float32, cpu, EmbeddingLayer.Last, out _));
        Assert.Equal(InferenceEngine.Torch, Embedder.ResolveEngine(InferenceEngine.Auto, ScalarType.BFloat16, cpu, EmbeddingLayer.Last, out var why));
        Assert.Contains("float32", why);
        Assert.Equal(InferenceEngine.Torch, Embedder.ResolveEngine(InferenceEngine.Auto, ScalarType.Float32, cpu, EmbeddingLayer.Parse("-2"), out _));
        Assert.Equal(InferenceEngine.Torch, Embedder.ResolveEngine(InferenceEngine.Torch, ScalarType.Float32, cpu, EmbeddingLayer.Last, out _));

        var model = TestAssets.Path(TestAssets.TinyRandom);
        var e1 = Assert.Throws<ArgumentException>(() => Embedder.Load(model, Options(InferenceEngine.Onnx, EmbeddingPooling.Mean, false) with { DType = ScalarType.BFloat16 }));
        Assert.Contains("float32", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => Embedder.Load(model, Options(InferenceEngine.Onnx, EmbeddingPooling.Mean, false) with { Layer = EmbeddingLayer.Parse("-2") }));
        Assert.Contains("last layer", e2.Message);
        using var auto = Embedder.Load(model, Options(InferenceEngine.Auto, EmbeddingPooling.Mean, false) with { Layer = EmbeddingLayer.Parse("-2") });
        Assert.Equal(InferenceEngine.Torch, auto.Engine);
        Assert.Contains(auto.Settings, s => s.StartsWith("engine torch (auto: ", StringComparison.Ordinal));
        Assert.Throws<ArgumentException>(() => Embedder.ParseEngine("tensorrt"));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void CacheReusesTheFileAndAChangedWeightGetsANewKey()
    {
        var dir = ModelDirectory.Open(TestAssets.Path(TestAssets.TinyRandom));
        var root = Path.Combine(cache.Path, "keys-" + Guid.NewGuid().ToString("N"));
        var options = new OnnxEngineOptions { CacheDirectory = root, Threads = 1 };
        using var scope = NewDisposeScope();
        var weights = CheckpointFiles.LoadWeights(dir.WeightsPath);
        long[] ids = [101, 7592, 2088, 102, 101, 7592, 102, 0];
        long[] mask = [1, 1, 1, 1, 1, 1, 1, 0];

        float[] first;
        string key, file;
        DateTime written;
        using (var e = OnnxEngine.Create(dir.Config, weights, options))
        {
            Assert.False(e.FromCache);
            Assert.True(e.ExportSeconds > 0);
            key = e.Key;
            file = e.ModelPath;
            Assert.Equal(Path.Combine(root, key, OnnxEngine.ModelFileName), file);
            written = File.GetLastWriteTimeUtc(file);
            e.Run(ids, mask, null, 2, 4);
            first = e.Output("last_hidden_state").ToArray();
            Assert.Equal(2 * 4 * dir.Config.HiddenSize, first.Length);
        }
        // No temporary folder is left beside the entry.
        Assert.Equal([key], Directory.GetDirectories(root).Select(Path.GetFileName));

        using (var again = OnnxEngine.Create(dir.Config, weights, options))
        {
            Assert.True(again.FromCache);
            Assert.Equal(0, again.ExportSeconds);
            Assert.Equal(file, again.ModelPath);
            Assert.Equal(written, File.GetLastWriteTimeUtc(file));
            again.Run(ids, mask, null, 2, 4);
            Assert.Equal(first, again.Output("last_hidden_state").ToArray());
        }

        // One changed number in one weight: another key, another entry, other outputs.
        var changed = new Dictionary<string, Tensor>(weights);
        var name = changed.Keys.First(k => k.EndsWith("encoder.layer.0.attention.self.query.weight", StringComparison.Ordinal));
        var w = changed[name].clone();
        w[0, 0] = w[0, 0] + 0.5f;
        changed[name] = w;
        Assert.NotEqual(key, OnnxEngine.CacheKey(dir.Config, changed, options.Export));
        using (var other = OnnxEngine.Create(dir.Config, changed, options))
        {
            Assert.False(other.FromCache);
            Assert.NotEqual(key, other.Key);
            other.Run(ids, mask, null, 2, 4);
            Assert.True(EmbedderTests.MaxDiff(first, other.Output("last_hidden_state").ToArray()) > 1e-4);
        }
        // Other export options: another key too.
        Assert.NotEqual(key, OnnxEngine.CacheKey(dir.Config, weights, options.Export with { Opset = 17 }));
        Assert.Equal(2, Directory.GetDirectories(root).Length);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void FillMaskOnOnnxEqualsTorch()
    {
        var model = TestAssets.Path(TestAssets.TinyRandom);
        using var torchPipeline = BertPipeline.Load(model);
        using var onnxPipeline = BertPipeline.Load(model, engine: InferenceEngine.Onnx, onnx: new OnnxEngineOptions { CacheDirectory = cache.Path });
        Assert.Equal(InferenceEngine.Torch, torchPipeline.Engine);
        Assert.Equal(InferenceEngine.Onnx, onnxPipeline.Engine);
        foreach (var text in new[] { "the capital of france is [MASK].", "[MASK] quick brown [MASK] jumps over the lazy dog" })
        {
            var a = torchPipeline.FillMask(text, topK: 5);
            var b = onnxPipeline.FillMask(text, topK: 5);
            Assert.Equal(a.Count, b.Count);
            for (int m = 0; m < a.Count; m++)
            {
                Assert.Equal(a[m].Position, b[m].Position);
                Assert.Equal(a[m].Predictions.Select(p => p.Id), b[m].Predictions.Select(p => p.Id));
                for (int k = 0; k < 5; k++) Assert.True(Math.Abs(a[m].Predictions[k].Score - b[m].Predictions[k].Score) <= 1e-5);
            }
        }
    }

    const string MiniLm = "assets/models/all-MiniLM-L6-v2";

    /// <summary>ONNX Runtime's own outputs for the shipped file (one text per run), against the engine's padded batches of our export.</summary>
    [AssetFact(MiniLm)]
    public void MiniLmOnnxEngineEqualsShippedOrtReferences()
    {
        var dir = TestAssets.Path(MiniLm);
        var texts = File.ReadAllLines(Path.Combine(dir, "golden", "texts.txt"));
        var expected = File.ReadAllLines(Path.Combine(dir, "golden", "ort_outputs.jsonl")).Select(l => JsonDocument.Parse(l).RootElement).ToList();
        Assert.Equal(texts.Length, expected.Count);
        foreach (var (pooling, key) in new[] { (EmbeddingPooling.Mean, "mean"), (EmbeddingPooling.Cls, "cls") })
        {
            using var embedder = Embedder.Load(dir, Options(InferenceEngine.Onnx, pooling, false, batch: 5));
            Assert.Equal(InferenceEngine.Onnx, embedder.Engine);
            var vectors = embedder.Embed(texts);
            double worst = 0;
            for (int i = 0; i < texts.Length; i++)
            {
                var e = expected[i].GetProperty(key).EnumerateArray().Select(x => x.GetSingle()).ToArray();
                worst = Math.Max(worst, EmbedderTests.MaxDiff(e, vectors[i]));
            }
            log.WriteLine($"MiniLM {key}: max |Δ| vs ONNX Runtime on the shipped file = {worst:E2}");
            Assert.True(worst <= 1e-4, $"{key}: max |Δ| = {worst:E2}");
        }
    }

    /// <summary>
    /// --quantize int8: a dynamically quantized export on the ONNX engine (auto picks it; torch is refused). Its
    /// vectors are close to float32's on real sentences (mean cosine ≥ 0.99, each ≥ 0.98; docs/export.md).
    /// </summary>
    [AssetFact(MiniLm)]
    public void MiniLmInt8OnTheOnnxEngineStaysCloseToFloat32()
    {
        var dir = TestAssets.Path(MiniLm);
        var texts = File.ReadAllLines(Path.Combine(dir, "golden", "texts.txt"));
        var int8 = new OnnxEngineOptions { CacheDirectory = cache.Path, Export = new OnnxEngineOptions().Export with { Quantize = OnnxQuantization.Int8Dynamic } };
        using var q = Embedder.Load(dir, new EmbedderOptions { Engine = InferenceEngine.Auto, Onnx = int8, BatchSize = 8 });
        using var f = Embedder.Load(dir, Options(InferenceEngine.Onnx, EmbeddingPooling.Mean, true, batch: 8));
        Assert.Equal(InferenceEngine.Onnx, q.Engine);
        var a = q.Embed(texts);
        var b = f.Embed(texts);
        var cos = a.Zip(b, (x, y) => Similarity.Cosine(x, y)).ToList();
        log.WriteLine($"int8 vs float32 on {texts.Length} texts: mean cosine {cos.Average():F4}, min {cos.Min():F4}");
        Assert.True(cos.Average() >= 0.99 && cos.Min() >= 0.98, $"mean {cos.Average():F4}, min {cos.Min():F4}");
        Assert.True(cos.Max() < 1 - 1e-7, "the int8 graph must not be the float32 one");
        var e = Assert.Throws<ArgumentException>(() => Embedder.Load(dir, new EmbedderOptions { Engine = InferenceEngine.Torch, Onnx = int8 }));
        Assert.Contains("--quantize int8", e.Message);
    }
}

/// <summary>`--engine` on the CLI (the default cache folder: the test process's own, TestRuntime).</summary>
public class OnnxEngineCliTests
{
    [AssetFact(TestAssets.TinyRandom)]
    public void EmbedWithEngineOnnxEqualsTorchAndBadEngineExits2()
    {
        var model = TestAssets.Path(TestAssets.TinyRandom);
        var work = Directory.CreateTempSubdirectory("bertsharp-engine-cli-").FullName;
        try
        {
            var input = Path.Combine(work, "texts.txt");
            File.WriteAllLines(input, ["first text here", "a second, somewhat longer text to embed", "x"]);
            var results = new Dictionary<string, float[]>();
            foreach (var engine in new[] { "torch", "onnx" })
            {
                var output = Path.Combine(work, $"{engine}.npy");
                var (exit, stdout, stderr) = CliHarness.Run("embed", "--model", model, "--input", input, "--output", output, "--engine", engine, "--batch-size", "2", "--json");
                Assert.True(exit == 0, stderr);
                Assert.Equal(engine, JsonDocument.Parse(stdout).RootElement.GetProperty("engine").GetString());
                results[engine] = Npy.Read(output).ToFloat();
            }
            Assert.True(EmbedderTests.MaxDiff(results["torch"], results["onnx"]) <= 1e-5);
            // The export went to the default cache folder (BERTSHARP_CACHE/onnx), written whole.
            Assert.Contains(Directory.GetDirectories(OnnxEngine.DefaultCacheDirectory),
                d => File.Exists(Path.Combine(d, OnnxEngine.ModelFileName)) && File.Exists(Path.Combine(d, "info.json")));

            var (code, _, err) = CliHarness.Run("similarity", "--model", model, "--engine", "tensorrt", "one", "two");
            Assert.Equal(2, code);
            Assert.Contains("--engine 'tensorrt'", err);
            Assert.DoesNotContain("   at ", err);
            var (code2, _, err2) = CliHarness.Run("embed", "--model", model, "--input", input, "--output", Path.Combine(work, "bf.npy"), "--engine", "onnx", "--dtype", "bfloat16");
            Assert.Equal(2, code2);
            Assert.Contains("float32", err2);
            Assert.False(File.Exists(Path.Combine(work, "bf.npy")));
            var (code3, _, err3) = CliHarness.Run("similarity", "--model", model, "--engine", "torch", "--quantize", "int8", "one", "two");
            Assert.Equal(2, code3);
            Assert.Contains("--quantize int8 runs on the ONNX engine", err3);
            var (code4, _, err4) = CliHarness.Run("similarity", "--model", model, "--quantize", "int4", "one", "two");
            Assert.Equal(2, code4);
            Assert.Contains("--quantize", err4);
            // --quantize int8 with the default engine (auto) runs and gives a cosine close to float32's.
            var (code5, out5, err5) = CliHarness.Run("similarity", "--model", model, "--quantize", "int8", "--json", "one two three", "one two four");
            Assert.True(code5 == 0, err5);
        }
        finally
        {
            Directory.Delete(work, recursive: true);
        }
    }
}
