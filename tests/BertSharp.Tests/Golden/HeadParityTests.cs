using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static TorchSharp.torch;

namespace BertSharp.Tests.Golden;

/// <summary>
/// The task heads against Hugging Face transformers v4.5.1 on golden/models/tiny-random/heads: logits at real tokens
/// within 1e-4, the loss and the head parameters' gradients (eval mode) within rtol 1e-4, for every case of the four
/// HF-written head checkpoints.
/// </summary>
public class HeadParityTests(ITestOutputHelper output) : IDisposable
{
    public const string Heads = TestAssets.TinyRandom + "/heads";
    const double LogitTolerance = 1e-4;
    const double RelTolerance = 1e-4;

    readonly string _tmp = Path.Combine(Path.GetTempPath(), "bertsharp-heads-" + Guid.NewGuid().ToString("N"));
    public void Dispose() { if (Directory.Exists(_tmp)) Directory.Delete(_tmp, true); }

    static string HeadDir(string folder) => Path.Combine(TestAssets.Path(Heads), folder);

    public static IEnumerable<object[]> Cases()
    {
        if (TestAssets.MissingReason(Heads) is not null) { yield return ["(assets missing)", ""]; yield break; }
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestAssets.Path(Heads), "manifest.json")));
        foreach (var h in doc.RootElement.GetProperty("heads").EnumerateArray())
            foreach (var c in h.GetProperty("cases").EnumerateArray())
                yield return [h.GetProperty("dir").GetString()!, c.GetString()!];
    }

    public static IEnumerable<object[]> Folders() =>
        TestAssets.MissingReason(Heads) is not null
            ? new[] { new object[] { "(assets missing)" } }
            : new[] { "seq-classification-3", "seq-regression-1", "token-classification-9", "question-answering" }.Select(f => new object[] { f });

    /// <summary>Head parameter names (the HF state-dict keys a head folder's head.safetensors holds).</summary>
    static string[] HeadParameters(nn.Module m) =>
        m.named_parameters().Select(p => p.name).Where(n => !n.StartsWith("bert.", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();

    static string EncoderPath => Path.Combine(TestAssets.Path(TestAssets.TinyRandom), "pytorch_model.bin");

    /// <summary>../pytorch_model.bin, read once for all cases (read-only afterwards).</summary>
    /// Detached from the dispose scope of whichever test reads it first.
    static readonly Lazy<Dictionary<string, Tensor>> Encoder = new(() =>
    {
        var w = CheckpointFiles.LoadWeights(EncoderPath);
        foreach (var t in w.Values) t.DetachFromDisposeScope();
        return w;
    });

    /// <summary>
    /// The head model of a golden folder, loaded as a user would: the complete fine-tuned checkpoint through
    /// ModelDirectory, or (head.safetensors folders) the encoder from ../pytorch_model.bin and then the head tensors,
    /// both through the same name matcher.
    /// </summary>
    static nn.Module Load(string folder)
    {
        var dir = HeadDir(folder);
        if (File.Exists(Path.Combine(dir, "pytorch_model.bin")))
        {
            var md = ModelDirectory.Open(dir);
            var (m, report) = md.LoadModel(c => BertTaskModels.Create(c.Architectures![0], c));
            Assert.Empty(report.Missing);
            Assert.Empty(report.Unexpected);
            return m;
        }
        var config = BertConfig.Load(Path.Combine(dir, "config.json"));
        var model = BertTaskModels.Create(config.Architectures![0], config);
        ModelUtils.InitWeights(model, config);
        var headPath = Path.Combine(dir, "head.safetensors");
        var encoder = Encoder.Value;
        var head = CheckpointFiles.LoadWeights(headPath);
        var r1 = StateDictLoader.Load(model, encoder, EncoderPath);
        Assert.Equal(HeadParameters(model), r1.Missing.Order(StringComparer.Ordinal));    // exactly the head is missing
        var r2 = StateDictLoader.Load(model, head, headPath);
        Assert.Equal(head.Count, r2.Loaded);
        Assert.Empty(r2.Unexpected);
        foreach (var t in head.Values) t.Dispose();
        model.eval();
        return model;
    }

    sealed class Case(string dir)
    {
        public Tensor this[string file] => Npy.Read(Path.Combine(dir, file + ".npy")).ToTensor();
        public bool Has(string file) => File.Exists(Path.Combine(dir, file + ".npy"));
    }

    static Case GetCase(string folder, string name) => new(Path.Combine(HeadDir(folder), "golden", name));

    /// <summary>max |a − b| where the [B, L] mask is 1 (everywhere when null).</summary>
    static double MaxAbsDiff(Tensor a, Tensor b, Tensor? mask = null)
    {
        Assert.Equal(b.shape, a.shape);
        var d = (a.detach().to(ScalarType.Float64) - b.to(ScalarType.Float64)).abs();
        if (mask is not null)
        {
            var m = mask.to(ScalarType.Float64);
            while (m.dim() < d.dim()) m = m.unsqueeze(-1);
            d = d * m;
        }
        return d.max().item<double>();
    }

    /// <summary>
    /// torch.allclose-style ratio max |a − b| / (atol + rtol·|b|) (≤ 1 passes), atol 1e-6: float32 round-off on
    /// O(1) losses, which is all an analytically zero gradient (the QA biases: softmax over positions is
    /// shift-invariant) holds in the golden file.
    /// </summary>
    static double AllCloseRatio(Tensor a, Tensor b, double rtol, double atol = 1e-6)
    {
        Assert.Equal(b.shape, a.shape);
        var a64 = a.detach().to(ScalarType.Float64);
        var b64 = b.to(ScalarType.Float64);
        return ((a64 - b64).abs() / (atol + rtol * b64.abs())).max().item<double>();
    }

    /// <summary>Forward with the golden labels: (logits to compare, loss).</summary>
    static (List<(string Name, Tensor Value, bool PerToken)> Logits, Tensor Loss, BertModelOutput Encoder) Run(nn.Module model, Case g)
    {
        var ids = g["input_ids"];
        var types = g["token_type_ids"];
        var mask = g["attention_mask"];
        switch (model)
        {
            case BertForSequenceClassification m:
            {
                var o = m.forward(ids, types, mask, g["labels"]);
                return ([("logits", o.Logits, false)], o.Loss!, o.Encoder);
            }
            case BertForTokenClassification m:
            {
                var o = m.forward(ids, types, mask, g["labels"]);
                return ([("logits", o.Logits, true)], o.Loss!, o.Encoder);
            }
            case BertForQuestionAnswering m:
            {
                var o = m.forward(ids, types, mask, g["start_positions"], g["end_positions"]);
                return ([("start_logits", o.StartLogits, true), ("end_logits", o.EndLogits, true)], o.Loss!, o.Encoder);
            }
            default: throw new InvalidOperationException(model.GetType().Name);
        }
    }

    [AssetTheory(Heads)]
    [MemberData(nameof(Cases))]
    public void MatchesHuggingFace(string folder, string caseName)
    {
        using var scope = NewDisposeScope();
        var model = Load(folder);
        model.eval();
        var g = GetCase(folder, caseName);
        var mask = g["attention_mask"];
        var report = new List<string>();
        void Check(string what, double diff, double tolerance)
        {
            report.Add($"{what}={diff:E2}");
            Assert.True(diff <= tolerance, $"{folder}/{caseName}: {what} = {diff:E3} > {tolerance}");
        }

        var (logits, loss, enc) = Run(model, g);
        Check("last_hidden_state", MaxAbsDiff(enc.LastHiddenState, g["last_hidden_state"], mask), LogitTolerance);
        if (g.Has("pooler_output")) Check("pooler_output", MaxAbsDiff(enc.PooledOutput!, g["pooler_output"]), LogitTolerance);
        foreach (var (name, value, perToken) in logits)
            Check(name, MaxAbsDiff(value, g[name], perToken ? mask : null), LogitTolerance);
        var refLoss = g["loss"].to(ScalarType.Float64).item<double>();
        Check("loss(rel)", Math.Abs(loss.item<float>() - refLoss) / Math.Abs(refLoss), RelTolerance);

        // Gradients of the head parameters (eval mode: no dropout), d HF's loss / d parameter.
        model.zero_grad();
        loss.backward();
        int grads = 0;
        foreach (var (name, p) in model.named_parameters().Where(p => !p.name.StartsWith("bert.", StringComparison.Ordinal)))
        {
            Assert.True(g.Has("grad_" + name), $"golden has no grad_{name}");
            var refGrad = g["grad_" + name];
            report.Add($"grad_{name}: max|Δ|={MaxAbsDiff(p.grad!, refGrad):E2} (max|ref|={refGrad.abs().max().item<float>():E2})");
            Check($"grad_{name} allclose(rtol 1e-4, atol 1e-6) ratio", AllCloseRatio(p.grad!, refGrad, RelTolerance), 1.0);
            grads++;
        }
        Assert.Equal(2, grads);
        if (model is BertForQuestionAnswering qa)   // d loss / d bias = Σ softmax − 1 = 0 for both logits
            Check("|grad qa_outputs.bias| (analytically 0)", qa.qa_outputs.bias!.grad!.abs().max().item<float>(), 1e-6);
        output.WriteLine($"{folder}/{caseName}: {string.Join("  ", report)}");
    }

    [AssetTheory(Heads)]
    [MemberData(nameof(Folders))]
    public void ConfigRoundTripsAndDerivesLabels(string folder)
    {
        var path = Path.Combine(HeadDir(folder), "config.json");
        var text = File.ReadAllText(path);
        var c = BertConfig.Parse(text, path);
        var raw = JsonNode.Parse(text)!.AsObject();
        // Written back key for key (HF writes id2label keys as strings; num_labels is derived, not stored).
        var again = JsonNode.Parse(c.ToJson())!.AsObject();
        Assert.Equal(raw.Select(kv => kv.Key).Order(), again.Select(kv => kv.Key).Order());
        foreach (var (k, v) in raw) Assert.True(JsonNode.DeepEquals(v, again[k]), $"{folder}: key {k} changed: {v?.ToJsonString()} → {again[k]?.ToJsonString()}");

        var expectedArch = raw["architectures"]![0]!.GetValue<string>();
        Assert.Equal([expectedArch], c.Architectures!);
        if (raw["id2label"] is JsonObject id2label)
        {
            Assert.Equal(id2label.Count, c.NumLabels);
            for (int i = 0; i < id2label.Count; i++) Assert.Equal(id2label[i.ToString()]!.GetValue<string>(), c.Labels[i]);
            foreach (var (name, id) in raw["label2id"]!.AsObject()) Assert.Equal(id!.GetValue<int>(), c.Label2Id![name]);
        }
        else
        {
            Assert.Equal(2, c.NumLabels);                      // HF's default
            Assert.Equal(["LABEL_0", "LABEL_1"], c.Labels);
        }
        Assert.Equal(folder switch { "seq-classification-3" => 3, "seq-regression-1" => 1, "token-classification-9" => 9, _ => 2 }, c.NumLabels);
    }

    [AssetTheory(Heads)]
    [MemberData(nameof(Folders))]
    public void SavedHeadModelLoadsBackAsTheSameTaskModel(string folder)
    {
        using var scope = NewDisposeScope();
        var model = Load(folder);
        var config = BertConfig.Load(Path.Combine(HeadDir(folder), "config.json"));
        var vocab = Vocabulary.Load(Path.Combine(TestAssets.Path(TestAssets.TinyRandom), "vocab.txt"));
        var dir = Path.Combine(_tmp, folder);
        ModelDirectory.Save(model, config with { Architectures = null }, new BertTokenizer(vocab), dir);

        var md = ModelDirectory.Open(dir);
        var written = JsonNode.Parse(File.ReadAllText(md.ConfigPath))!.AsObject();
        Assert.Equal(config.Architectures![0], written["architectures"]![0]!.GetValue<string>());
        Assert.Equal(config.NumLabels, md.Config.NumLabels);
        Assert.Equal(config.Labels, md.Config.Labels);
        var (loaded, report) = md.LoadModel(c => BertTaskModels.Create(c.Architectures![0], c), seed: 999);
        Assert.Equal(model.GetType(), loaded.GetType());
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);

        var g = GetCase(folder, "batch3_padded");
        using var _ = inference_mode();
        var a = Run(model, g).Logits;
        var b = Run(loaded, g).Logits;
        for (int i = 0; i < a.Count; i++) Assert.Equal(0.0, MaxAbsDiff(a[i].Value, b[i].Value));
    }
}
