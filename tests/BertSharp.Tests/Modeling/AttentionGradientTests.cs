using BertSharp.Modeling;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Modeling;

/// <summary>
/// Training depends on the backward pass of <c>scaled_dot_product_attention</c>, which inference parity does not
/// exercise: the gradients of every attention weight must equal those of attention written out as
/// softmax(QKᵀ/√d + mask)·V with plain autograd ops.
/// </summary>
public class AttentionGradientTests
{
    static Tensor Explicit(BertSelfAttention a, Tensor hidden, Tensor? mask, int heads)
    {
        long b = hidden.shape[0], l = hidden.shape[1], h = hidden.shape[2], d = h / heads;
        Tensor Split(TorchSharp.Modules.Linear p) => p.forward(hidden).view(b, l, heads, d).transpose(1, 2);
        var scores = Split(a.query).matmul(Split(a.key).transpose(-1, -2)) / Math.Sqrt(d);
        if (mask is not null) scores = scores + mask;
        var context = scores.softmax(-1).matmul(Split(a.value));
        return context.transpose(1, 2).reshape(b, l, h);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public void SdpaGradientsEqualExplicitAttention(bool padded)
    {
        var c = new BertConfig { HiddenSize = 32, NumAttentionHeads = 4, AttentionProbsDropoutProb = 0 };
        using var a = new BertSelfAttention(c);
        using (no_grad())
            foreach (var (_, p) in a.named_parameters()) p.normal_(0, 0.5, generator: new Generator(7));
        var gen = new Generator(11);
        using var hidden = randn([3, 9, 32], generator: gen);
        using var target = randn([3, 9, 32], generator: gen);
        using var keep = ones(3, 9, dtype: ScalarType.Int64);
        if (padded) keep[1, TensorIndex.Slice(6)] = tensor(0L);
        using var mask = BertModel.AdditiveMask(keep, ScalarType.Float32);

        Dictionary<string, Tensor> Grads(Func<Tensor> forward)
        {
            foreach (var (_, p) in a.named_parameters()) p.grad?.zero_();
            using var loss = (forward() * target).sum();
            loss.backward();
            return a.named_parameters().ToDictionary(p => p.name, p => p.parameter.grad!.clone());
        }

        a.train();
        var viaSdpa = Grads(() => a.forward(hidden, mask));
        var viaExplicit = Grads(() => Explicit(a, hidden, mask, c.NumAttentionHeads));
        Assert.Equal(6, viaSdpa.Count);
        foreach (var (name, g) in viaExplicit)
        {
            // key.bias adds the same score to every key of a query, which softmax ignores: its gradient is exactly 0.
            if (name != "key.bias") Assert.True(g.abs().max().item<float>() > 1e-3, $"{name}: explicit gradient is ~0; the test would prove nothing");
            double diff = (viaSdpa[name] - g).abs().max().item<float>();
            Assert.True(diff < 1e-4, $"{name}: SDPA gradient differs from explicit attention by {diff}");
        }
    }
}

/// <summary>
/// The whole pretraining model's autograd against central finite differences in float64: every parameter group
/// (embeddings incl. positions, attention, FFN, LayerNorms, heads, the tied decoder) must receive the gradient of the loss.
/// </summary>
public class ModelGradientTests
{
    [Fact]
    public void BackwardMatchesFiniteDifferences()
    {
        var c = new BertConfig
        {
            VocabSize = 17, HiddenSize = 8, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 16,
            MaxPositionEmbeddings = 12, HiddenDropoutProb = 0, AttentionProbsDropoutProb = 0, InitializerRange = 0.5,
        };
        using var m = new BertForPreTraining(c);
        ModelUtils.InitWeights(m, c, seed: 3);
        m.to(ScalarType.Float64);
        m.eval();
        using var ids = tensor(new long[] { 2, 5, 6, 4, 9, 3, 2, 7, 4, 11, 12, 3 }, [2, 6]);
        using var types = tensor(new long[] { 0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1 }, [2, 6]);
        using var keep = tensor(new long[] { 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 0 }, [2, 6]);
        using var flat = tensor(new long[] { 3, 8, 10 });
        using var labels = tensor(new long[] { 8, 13, 5 });
        using var nsp = tensor(new long[] { 0, 1 });

        double Loss()
        {
            using var scope = NewDisposeScope();
            var o = m.forward(ids, types, keep, flat);
            var loss = nn.functional.cross_entropy(o.PredictionLogits, labels) + nn.functional.cross_entropy(o.SeqRelationshipLogits, nsp);
            return loss.item<double>();
        }

        {
            using var scope = NewDisposeScope();
            var o = m.forward(ids, types, keep, flat);
            (nn.functional.cross_entropy(o.PredictionLogits, labels) + nn.functional.cross_entropy(o.SeqRelationshipLogits, nsp)).backward();
        }
        var checkedNames = 0;
        foreach (var (name, p) in m.named_parameters())
        {
            if (ModelUtils.IsTiedAlias(name)) continue;
            var g = p.grad!.flatten();
            var w = p.detach().flatten();  // a view: writing into it perturbs the parameter
            // Probe the entries with the largest analytic gradient plus one fixed entry (catches "all zero").
            var idx = g.abs().argmax().item<long>();
            foreach (var i in new[] { idx, w.shape[0] / 2 })
            {
                double orig = w[i].item<double>();
                const double eps = 1e-6;
                using (no_grad()) w[i] = tensor(orig + eps, ScalarType.Float64);
                double up = Loss();
                using (no_grad()) w[i] = tensor(orig - eps, ScalarType.Float64);
                double down = Loss();
                using (no_grad()) w[i] = tensor(orig, ScalarType.Float64);
                double numeric = (up - down) / (2 * eps);
                double analytic = g[i].item<double>();
                Assert.True(Math.Abs(numeric - analytic) <= 1e-6 + 1e-4 * Math.Abs(numeric),
                    $"{name}[{i}]: autograd {analytic:G6}, finite difference {numeric:G6}");
            }
            checkedNames++;
        }
        Assert.True(checkedNames >= 30, $"only {checkedNames} parameters checked");
    }
}
