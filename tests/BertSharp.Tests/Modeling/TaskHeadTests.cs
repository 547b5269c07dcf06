using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>
/// The task heads beyond the HF goldens: losses recomputed by hand in float64, multiple choice against the encoder
/// run per choice, head initialisation and load reports, save/load round trips, classifier dropout, label configs.
/// </summary>
public class TaskHeadTests : IDisposable
{
    readonly string _tmp = Path.Combine(Path.GetTempPath(), "bertsharp-taskheads-" + Guid.NewGuid().ToString("N"));
    public TaskHeadTests() => Directory.CreateDirectory(_tmp);
    public void Dispose() { if (Directory.Exists(_tmp)) Directory.Delete(_tmp, true); }

    static BertConfig Tiny => new()
    {
        VocabSize = 20, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 64, MaxPositionEmbeddings = 16,
    };

    static Vocabulary TinyVocab() => new(new[] { "[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]" }.Concat(Enumerable.Range(0, 15).Select(i => $"w{i}")).ToList());

    static T Init<T>(T model, BertConfig c, long seed = 3) where T : nn.Module
    {
        ModelUtils.InitWeights(model, c, seed);
        // Larger head weights than HF's 0.02 so the logits (and the losses) are far from uniform.
        using (no_grad())
            foreach (var (name, p) in model.named_parameters())
                if (!name.StartsWith("bert.", StringComparison.Ordinal)) p.normal_(0, 0.5, generator: new Generator(11));
        model.eval();
        return model;
    }

    // [2, 6] ids, the second row right-padded.
    static Tensor Ids => tensor(new long[,] { { 2, 7, 8, 9, 10, 3 }, { 2, 11, 12, 3, 0, 0 } });
    static Tensor Mask => tensor(new long[,] { { 1, 1, 1, 1, 1, 1 }, { 1, 1, 1, 1, 0, 0 } });

    static double[,] ToArray2(Tensor t)
    {
        var d = t.detach().to(ScalarType.Float64).contiguous();
        var flat = d.data<double>().ToArray();
        var r = new double[d.shape[0], d.shape[1]];
        for (int i = 0; i < r.GetLength(0); i++) for (int j = 0; j < r.GetLength(1); j++) r[i, j] = flat[i * r.GetLength(1) + j];
        return r;
    }

    /// <summary>−log softmax(row)[target], in float64.</summary>
    static double Nll(double[,] logits, int row, int target)
    {
        int n = logits.GetLength(1);
        double max = Enumerable.Range(0, n).Max(j => logits[row, j]);
        double lse = max + Math.Log(Enumerable.Range(0, n).Sum(j => Math.Exp(logits[row, j] - max)));
        return lse - logits[row, target];
    }

    static void Close(double expected, Tensor actual, double rtol = 1e-5) =>
        Assert.True(Math.Abs(actual.item<float>() - expected) <= rtol * Math.Abs(expected) + 1e-7, $"expected {expected}, got {actual.item<float>()}");

    [Fact]
    public void SingleLabelLossIsCrossEntropyAndDecidesTheProblemType()
    {
        var c = Tiny.WithNumLabels(3);
        using var m = Init(new BertForSequenceClassification(c), c);
        var labels = tensor(new long[] { 2, 0 });
        using var _ = no_grad();
        var o = m.forward(Ids, null, Mask, labels);
        var l = ToArray2(o.Logits);
        Close((Nll(l, 0, 2) + Nll(l, 1, 0)) / 2, o.Loss!);
        Assert.Equal("single_label_classification", m.ProblemType);
        Assert.Equal("single_label_classification", m.Describe(c).ProblemType);
    }

    [Fact]
    public void OneLabelIsRegressionWithMse()
    {
        var c = Tiny.WithNumLabels(1);
        using var m = Init(new BertForSequenceClassification(c), c);
        var labels = tensor(new float[] { 0.5f, -1.25f });
        using var _ = no_grad();
        var o = m.forward(Ids, null, Mask, labels);
        var l = ToArray2(o.Logits);
        Assert.Equal(new long[] { 2, 1 }, o.Logits.shape);
        Close((Math.Pow(l[0, 0] - 0.5, 2) + Math.Pow(l[1, 0] + 1.25, 2)) / 2, o.Loss!);
        Assert.Equal("regression", m.ProblemType);
    }

    [Fact]
    public void FloatLabelsWithSeveralClassesAreMultiLabelBce()
    {
        var c = Tiny.WithNumLabels(3);
        using var m = Init(new BertForSequenceClassification(c), c);
        var y = new double[,] { { 1, 0, 1 }, { 0, 0, 1 } };
        var labels = tensor(new float[,] { { 1, 0, 1 }, { 0, 0, 1 } });
        using var _ = no_grad();
        var o = m.forward(Ids, null, Mask, labels);
        var l = ToArray2(o.Logits);
        double sum = 0;
        for (int i = 0; i < 2; i++)
            for (int j = 0; j < 3; j++)
            {
                double p = 1 / (1 + Math.Exp(-l[i, j]));
                sum -= y[i, j] * Math.Log(p) + (1 - y[i, j]) * Math.Log(1 - p);
            }
        Close(sum / 6, o.Loss!);
        Assert.Equal("multi_label_classification", m.ProblemType);
    }

    [Fact]
    public void ConfiguredRegressionWithSeveralOutputsIsMseOverAll()
    {
        var c = Tiny.WithNumLabels(2) with { ProblemType = "regression" };
        using var m = Init(new BertForSequenceClassification(c), c);
        var y = new double[,] { { 0.1, 0.9 }, { -2, 3 } };
        using var _ = no_grad();
        var o = m.forward(Ids, null, Mask, tensor(new float[,] { { 0.1f, 0.9f }, { -2, 3 } }));
        var l = ToArray2(o.Logits);
        double sum = 0;
        for (int i = 0; i < 2; i++) for (int j = 0; j < 2; j++) sum += Math.Pow(l[i, j] - y[i, j], 2);
        Close(sum / 4, o.Loss!);
    }

    [Fact]
    public void TokenLossSkipsIgnoredLabelsAndPadding()
    {
        var c = Tiny.WithNumLabels(4);
        using var m = Init(new BertForTokenClassification(c), c);
        // −100 on [CLS]/[SEP]/a later sub-token; row 1 has a real label on a padded position: not scored either.
        var labels = tensor(new long[,] { { -100, 1, -100, 3, 0, -100 }, { -100, 2, 1, -100, 3, -100 } });
        using var _ = no_grad();
        var o = m.forward(Ids, null, Mask, labels);
        Assert.Equal(new long[] { 2, 6, 4 }, o.Logits.shape);
        var l = ToArray2(o.Logits.reshape(-1, 4));
        var scored = new (int Row, int Label)[] { (1, 1), (3, 3), (4, 0), (6 + 1, 2), (6 + 2, 1) };
        Close(scored.Average(s => Nll(l, s.Row, s.Label)), o.Loss!);
        Assert.Null(m.bert.pooler);
    }

    [Fact]
    public void QuestionAnsweringLossClampsPositionsAndIgnoresOutOfRange()
    {
        var c = Tiny;
        using var m = Init(new BertForQuestionAnswering(c), c);
        var ids = cat([Ids, Ids[..1]], 0);                 // [3, 6]
        var mask = cat([Mask, Mask[..1]], 0);
        // Row 2's start lies past the sequence: clamped to L = 6, the ignored index, so only its end is scored;
        // a negative position clamps to 0.
        var start = tensor(new long[] { 1, 2, 40 });
        var end = tensor(new long[] { 3, -5, 4 });
        using var _ = no_grad();
        var o = m.forward(ids, null, mask, start, end);
        Assert.Equal(new long[] { 3, 6 }, o.StartLogits.shape);
        var s = ToArray2(o.StartLogits);
        var e = ToArray2(o.EndLogits);
        double startLoss = (Nll(s, 0, 1) + Nll(s, 1, 2)) / 2;
        double endLoss = (Nll(e, 0, 3) + Nll(e, 1, 0) + Nll(e, 2, 4)) / 3;
        Close((startLoss + endLoss) / 2, o.Loss!);
        Assert.Null(m.bert.pooler);
    }

    [Fact]
    public void QuestionAnsweringNeedsTwoOutputs()
    {
        var e = Assert.Throws<ArgumentException>(() => new BertForQuestionAnswering(Tiny.WithNumLabels(3)));
        Assert.Contains("num_labels 2", e.Message);
    }

    [Fact]
    public void MultipleChoiceScoresEachChoiceWithTheEncoderAndClassifier()
    {
        var c = Tiny;
        using var m = Init(new BertForMultipleChoice(c), c);
        // [B=2, C=3, L=5], padded choices, segment B on the answers.
        var ids = tensor(new long[,,]
        {
            { { 2, 7, 3, 8, 3 }, { 2, 7, 3, 9, 3 }, { 2, 7, 3, 3, 0 } },
            { { 2, 10, 11, 3, 12 }, { 2, 10, 11, 3, 0 }, { 2, 10, 3, 13, 14 } },
        });
        var mask = (ids != 0).to(ScalarType.Int64);
        var types = tensor(new long[,,]
        {
            { { 0, 0, 0, 1, 1 }, { 0, 0, 0, 1, 1 }, { 0, 0, 0, 1, 0 } },
            { { 0, 0, 0, 0, 1 }, { 0, 0, 0, 0, 0 }, { 0, 0, 0, 1, 1 } },
        });
        var labels = tensor(new long[] { 1, 2 });
        using var _ = no_grad();
        var o = m.forward(ids, types, mask, labels);
        Assert.Equal(new long[] { 2, 3 }, o.Logits.shape);

        var reference = new double[2, 3];
        var w = ToArray2(m.classifier.weight!);
        double bias = m.classifier.bias!.item<float>();
        for (int b = 0; b < 2; b++)
            for (int ch = 0; ch < 3; ch++)
            {
                // Trim each choice's padding: the same encoder on the unpadded sequence, then w·pooled + b by hand.
                long len = mask[b, ch].sum().item<long>();
                var pooled = m.bert.forward(ids[b, ch, ..(int)len].unsqueeze(0), types[b, ch, ..(int)len].unsqueeze(0)).PooledOutput!;
                var pv = pooled.to(ScalarType.Float64).data<double>().ToArray();
                reference[b, ch] = bias + Enumerable.Range(0, pv.Length).Sum(k => w[0, k] * pv[k]);
            }
        var logits = ToArray2(o.Logits);
        for (int b = 0; b < 2; b++)
            for (int ch = 0; ch < 3; ch++)
                Assert.True(Math.Abs(logits[b, ch] - reference[b, ch]) < 1e-5, $"choice [{b},{ch}]: {logits[b, ch]} vs {reference[b, ch]}");
        Close((Nll(reference, 0, 1) + Nll(reference, 1, 2)) / 2, o.Loss!);
    }

    [Fact]
    public void ClassifierDropoutOverridesHiddenDropout()
    {
        var noDropout = Tiny with { HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0 };
        foreach (var (cfg, expectRandom) in new[] { (noDropout, false), (noDropout with { ClassifierDropout = 0.5 }, true), (noDropout with { HiddenDropoutProb = 0.5, ClassifierDropout = 0.0 }, true) })
        {
            var c = cfg.WithNumLabels(3);
            using var m = Init(new BertForSequenceClassification(c), c);
            var pooled = (Func<Tensor>)(() => { m.train(); using var _ = no_grad(); return m.forward(Ids, null, Mask).Logits; });
            bool differs = (pooled() - pooled()).abs().max().item<float>() > 0;
            Assert.Equal(expectRandom, differs);
        }
        // classifier_dropout 0 with hidden dropout 0.5: the encoder drops, the head does not; checked directly.
        var only = (noDropout with { ClassifierDropout = 0.0, HiddenDropoutProb = 0.9 }).WithNumLabels(2);
        using var model = Init(new BertForSequenceClassification(only), only);
        model.train();
        var dropout = model.named_modules().Single(x => x.name == "dropout").module;
        using var g = no_grad();
        var x = ones(4, 32);
        Assert.Equal(0f, (((TorchSharp.Modules.Dropout)dropout).forward(x) - x).abs().max().item<float>());
    }

    public static TheoryData<string> TaskArchitectures => new()
    {
        nameof(BertForSequenceClassification), nameof(BertForTokenClassification), nameof(BertForQuestionAnswering), nameof(BertForMultipleChoice),
    };

    static BertConfig ForArch(BertConfig c, string arch) => arch switch
    {
        nameof(BertForSequenceClassification) => c.WithLabels(["neg", "neutral", "pos"]),
        nameof(BertForTokenClassification) => c.WithLabels(["O", "B-X", "I-X", "B-Y", "I-Y"]),
        _ => c,
    };

    static string[] HeadParameters(nn.Module m) =>
        m.named_parameters().Select(p => p.name).Where(n => !n.StartsWith("bert.", StringComparison.Ordinal)).Order(StringComparer.Ordinal).ToArray();

    static void AssertHfInitialisedHead(nn.Module m, BertConfig c)
    {
        foreach (var (name, p) in m.named_parameters().Where(p => !p.name.StartsWith("bert.", StringComparison.Ordinal)))
        {
            if (name.EndsWith(".bias", StringComparison.Ordinal)) Assert.Equal(0f, p.abs().max().item<float>());
            else
            {
                // N(0, initializer_range): the sample mean within 4 standard errors of 0.
                Assert.True(Math.Abs(p.mean().item<float>()) < 4 * c.InitializerRange / Math.Sqrt(p.numel()), $"{name} mean {p.mean().item<float>()}");
                var std = p.std().item<float>();
                Assert.True(std > 0.6 * c.InitializerRange && std < 1.4 * c.InitializerRange, $"{name}: std {std}, expected ≈ {c.InitializerRange}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(TaskArchitectures))]
    public void EncoderOnlyCheckpointLeavesExactlyTheHeadMissingAndInitialisesIt(string arch)
    {
        // An encoder-only checkpoint as HF BertModel writes it: keys without the bert. prefix.
        var c = Tiny with { InitializerRange = 0.05 };
        using var encoder = new BertModel(c);
        ModelUtils.InitWeights(encoder, c, seed: 5);
        var dir = Path.Combine(_tmp, "encoder");
        ModelDirectory.Save(encoder, c, new BertTokenizer(TinyVocab()), dir);

        var md = ModelDirectory.Open(dir);
        var (m, report) = md.LoadModel(cfg => BertTaskModels.Create(arch, ForArch(cfg, arch)));
        Assert.Equal(HeadParameters(m), report.Missing.Order(StringComparer.Ordinal));
        var hasPooler = ((IBertWithEncoder)m).Bert.pooler is not null;
        Assert.Equal(hasPooler ? [] : new[] { "pooler.dense.bias", "pooler.dense.weight" }, report.Unexpected);
        AssertHfInitialisedHead(m, c);
        var we = ((IBertWithEncoder)m).Bert.embeddings.word_embeddings.weight!;
        Assert.Equal(0f, (we - encoder.embeddings.word_embeddings.weight!).abs().max().item<float>());
    }

    [AssetTheory(TestAssets.TinyRandom)]
    [MemberData(nameof(TaskArchitectures))]
    public void PretrainingCheckpointLeavesExactlyTheHeadMissing(string arch)
    {
        var md = ModelDirectory.Open(TestAssets.Path(TestAssets.TinyRandom));
        var (m, report) = md.LoadModel(cfg => BertTaskModels.Create(arch, ForArch(cfg, arch)));
        Assert.Equal(HeadParameters(m), report.Missing.Order(StringComparer.Ordinal));
        var hasPooler = ((IBertWithEncoder)m).Bert.pooler is not null;
        Assert.NotEmpty(report.Unexpected);
        Assert.All(report.Unexpected, k => Assert.True(k.StartsWith("cls.", StringComparison.Ordinal) || (!hasPooler && k.StartsWith("bert.pooler.", StringComparison.Ordinal)), k));
        AssertHfInitialisedHead(m, md.Config);
    }

    [Theory]
    [MemberData(nameof(TaskArchitectures))]
    public void SavedTaskModelNamesItsClassAndLoadsBackIdentically(string arch)
    {
        var c = ForArch(Tiny, arch);
        var model = Init(BertTaskModels.Create(arch, c), c);
        var dir = Path.Combine(_tmp, arch);
        ModelDirectory.Save(model, c, new BertTokenizer(TinyVocab()), dir);

        var json = JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!.AsObject();
        Assert.Equal(arch, json["architectures"]![0]!.GetValue<string>());
        if (c.Id2Label is not null)
        {
            var id2label = json["id2label"]!.AsObject();
            Assert.Equal(c.Labels, Enumerable.Range(0, id2label.Count).Select(i => id2label[i.ToString()]!.GetValue<string>()));
            Assert.Equal(c.NumLabels - 1, json["label2id"]![c.Labels[^1]]!.GetValue<int>());
        }
        else Assert.False(json.ContainsKey("id2label"));   // HF omits the default two labels

        var md = ModelDirectory.Open(dir);
        var (loaded, report) = md.LoadModel(cfg => BertTaskModels.Create(cfg.Architectures![0], cfg), seed: 1234);
        Assert.IsType(model.GetType(), loaded);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        using var _ = inference_mode();
        Tensor Out(nn.Module x) => x switch
        {
            BertForSequenceClassification s => s.forward(Ids, null, Mask).Logits,
            BertForTokenClassification t => t.forward(Ids, null, Mask).Logits,
            BertForQuestionAnswering q => cat([q.forward(Ids, null, Mask).StartLogits, q.forward(Ids, null, Mask).EndLogits], 1),
            BertForMultipleChoice mc => mc.forward(stack([Ids, Ids.flip(0)], 1), null, stack([Mask, Mask.flip(0)], 1)).Logits,
            _ => throw new InvalidOperationException(),
        };
        Assert.Equal(0f, (Out(model) - Out(loaded)).abs().max().item<float>());
    }

    [Fact]
    public void SavedConfigKeepsTheProblemTypeTheLossDecided()
    {
        var c = Tiny.WithNumLabels(3);
        var m = Init(new BertForSequenceClassification(c), c);
        using (no_grad()) m.forward(Ids, null, Mask, tensor(new float[,] { { 1, 0, 0 }, { 0, 1, 1 } }));
        var dir = Path.Combine(_tmp, "ml");
        ModelDirectory.Save(m, c, new BertTokenizer(TinyVocab()), dir);
        var cfg = ModelDirectory.Open(dir).Config;
        Assert.Equal("multi_label_classification", cfg.ProblemType);
        Assert.Equal([nameof(BertForSequenceClassification)], cfg.Architectures!);
        // The loaded model keeps that decision: integer labels do not switch it to single-label.
        var again = new BertForSequenceClassification(cfg);
        Assert.Equal("multi_label_classification", again.ProblemType);
    }

    [Fact]
    public void LabelConfigsFollowHf()
    {
        var c = BertConfig.Parse("""{"num_labels": 4, "hidden_size": 32, "num_attention_heads": 2}""");
        Assert.Equal(4, c.NumLabels);
        Assert.Equal(["LABEL_0", "LABEL_1", "LABEL_2", "LABEL_3"], c.Labels);
        Assert.DoesNotContain("\"num_labels\"", c.ToJson());           // id2label carries it, as HF writes it
        Assert.Contains("\"3\": \"LABEL_3\"", c.ToJson());
        // id2label wins over a num_labels key.
        var d = BertConfig.Parse("""{"num_labels": 4, "id2label": {"1": "b", "0": "a"}}""");
        Assert.Equal(["a", "b"], d.Labels);
        Assert.Equal(2, BertConfig.Parse("{}").NumLabels);
        var w = Tiny.WithLabels(["x", "y", "z"]);
        var back = BertConfig.Parse(w.ToJson());
        Assert.Equal(["x", "y", "z"], back.Labels);
        Assert.Equal(2, back.Label2Id!["z"]);
        Assert.Throws<ArgumentException>(() => Tiny.WithLabels(["x", "x"]));
        Assert.Null(BertConfig.Parse(Tiny.ToJson()).ProblemType);
        Assert.DoesNotContain("problem_type", Tiny.ToJson());
        Assert.DoesNotContain("classifier_dropout", Tiny.ToJson());
        Assert.Equal(0.3, BertConfig.Parse("""{"classifier_dropout": 0.3}""").ClassifierDropout);
        Assert.Null(BertConfig.Parse("""{"classifier_dropout": null}""").ClassifierDropout);
        var a = Tiny with { Architectures = ["BertForTokenClassification"] };
        Assert.Equal(["BertForTokenClassification"], BertConfig.Parse(a.ToJson()).Architectures!);
        Assert.Single(System.Text.RegularExpressions.Regex.Matches(a.ToJson(), "\"architectures\""));
    }

    [Theory]
    [InlineData("""{"id2label": {"0": "a", "2": "b"}}""", "id2label keys must be the class indices")]
    [InlineData("""{"id2label": {"zero": "a"}}""", "id2label keys must be the class indices")]
    [InlineData("""{"id2label": {}}""", "id2label is empty")]
    [InlineData("""{"num_labels": 0}""", "num_labels must be a positive integer")]
    [InlineData("""{"problem_type": "ranking"}""", "problem_type 'ranking'")]
    [InlineData("""{"classifier_dropout": 1.5}""", "classifier_dropout must be in [0, 1)")]
    public void BadLabelConfigsAreClearErrors(string json, string expected)
    {
        var e = Assert.Throws<FormatException>(() => BertConfig.Parse(json, "my/config.json"));
        Assert.StartsWith("my/config.json: ", e.Message);
        Assert.Contains(expected, e.Message);
    }

    [Fact]
    public void UnknownArchitectureIsAClearError()
    {
        var e = Assert.Throws<ArgumentException>(() => BertTaskModels.Create("RobertaForMaskedLM", Tiny));
        Assert.Contains("unknown BERT architecture 'RobertaForMaskedLM'", e.Message);
    }
}
