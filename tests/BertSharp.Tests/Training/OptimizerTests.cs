using BertSharp.Modeling;
using BertSharp.Training;
using TorchSharp;
using TorchSharp.Modules;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Training;

public class OptimizerTests
{
    sealed class Toy : nn.Module
    {
        public readonly Parameter weight;
        public readonly Parameter bias;

        public Toy(double[] w, double[] b) : base("toy")
        {
            weight = new Parameter(tensor(w, ScalarType.Float64));
            bias = new Parameter(tensor(b, ScalarType.Float64));
            RegisterComponents();
        }
    }

    static void SetGrads(Toy toy, double[] gw, double[] gb)
    {
        using var scope = NewDisposeScope();
        // d/dθ Σ θ·g = g
        var loss = (toy.weight * tensor(gw, ScalarType.Float64)).sum() + (toy.bias * tensor(gb, ScalarType.Float64)).sum();
        loss.backward();
    }

    static double[] Values(Tensor t) => t.to(ScalarType.Float64).data<double>().ToArray();

    [Fact]
    public void FirstAdamWStepMatchesHandComputation()
    {
        using var toy = new Toy([0.5, -1.0, 2.0], [0.25]);
        // Float64 model parameters get float32 masters; use float32 to test the plain path.
        toy.to(ScalarType.Float32);
        using var opt = new AdamWOptimizer(toy, new AdamWOptions { WeightDecay = 0.01, Eps = 1e-6, MaxGradNorm = 0 });
        SetGrads(toy, [0.1, -0.2, 0.3], [0.5]);
        opt.Step(0.1);
        // Step 1 with bias correction: m̂ = g, v̂ = g², so the Adam direction is g / (|g| + eps).
        // weight[0]: 0.5·(1 − 0.1·0.01) − 0.1·0.1/(0.1 + 1e-6) = 0.4995 − 0.09999900001 = 0.39950099999
        var w = Values(toy.weight);
        Assert.Equal(0.39950099999, w[0], 3e-7);
        Assert.Equal(-1.0 * 0.999 + 0.1 * 0.2 / (0.2 + 1e-6), w[1], 3e-7);
        Assert.Equal(2.0 * 0.999 - 0.1 * 0.3 / (0.3 + 1e-6), w[2], 3e-7);
        // bias: no weight decay. 0.25 − 0.1·0.5/(0.5 + 1e-6)
        Assert.Equal(0.25 - 0.1 * 0.5 / (0.5 + 1e-6), Values(toy.bias)[0], 3e-7);
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void ThreeStepsMatchReferenceFormula(bool biasCorrection)
    {
        double[] w0 = [0.5, -1.0, 2.0], b0 = [0.25];
        double[][] gws = [[0.1, -0.2, 0.3], [-0.05, 0.4, 0.0], [0.3, 0.3, -0.1]];
        double[][] gbs = [[0.5], [-0.1], [0.2]];
        double[] lrs = [1e-2, 2e-2, 5e-3];
        const double b1 = 0.9, b2 = 0.999, eps = 1e-6, wd = 0.01;

        using var toy = new Toy(w0, b0);
        toy.to(ScalarType.Float32);
        using var opt = new AdamWOptimizer(toy, new AdamWOptions { Beta1 = b1, Beta2 = b2, Eps = eps, WeightDecay = wd, BiasCorrection = biasCorrection, MaxGradNorm = 0 });

        // Reference in double: PyTorch AdamW (bias-corrected) or Google's AdamWeightDecay (not).
        double[] Ref(double[] p0, double[][] gs, bool decay)
        {
            var p = (double[])p0.Clone();
            var m = new double[p.Length];
            var v = new double[p.Length];
            for (int t = 1; t <= 3; t++)
            {
                var g = gs[t - 1];
                double lr = lrs[t - 1];
                for (int i = 0; i < p.Length; i++)
                {
                    m[i] = b1 * m[i] + (1 - b1) * g[i];
                    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
                    double mh = biasCorrection ? m[i] / (1 - Math.Pow(b1, t)) : m[i];
                    double vh = biasCorrection ? v[i] / (1 - Math.Pow(b2, t)) : v[i];
                    double update = mh / (Math.Sqrt(vh) + eps) + (decay ? wd * p[i] : 0);
                    p[i] -= lr * update;
                }
            }
            return p;
        }

        for (int t = 0; t < 3; t++)
        {
            SetGrads(toy, gws[t], gbs[t]);
            opt.Step(lrs[t]);
            opt.ZeroGrad();
        }
        var wRef = Ref(w0, gws, decay: true);
        var bRef = Ref(b0, gbs, decay: false);
        var w = Values(toy.weight);
        for (int i = 0; i < 3; i++) Assert.Equal(wRef[i], w[i], 1e-6);
        Assert.Equal(bRef[0], Values(toy.bias)[0], 1e-6);
        Assert.Equal(3, opt.StepCount);
    }

    [Fact]
    public void ClipsToGlobalNorm()
    {
        using var toy = new Toy([0.0, 0.0, 0.0], [0.0]);
        toy.to(ScalarType.Float32);
        // SGD-like check: with beta1 = beta2 = 0 and no correction, the update is g/(|g|+eps) — so clip via the norm.
        using var opt = new AdamWOptimizer(toy, new AdamWOptions { MaxGradNorm = 1.0, WeightDecay = 0 });
        SetGrads(toy, [3.0, 0.0, 0.0], [4.0]);
        double norm = opt.Step(0.0);
        Assert.Equal(5.0, norm, 4);
        using var scope = NewDisposeScope();
        // The gradients were scaled in place to norm 1 (torch's clip_grad_norm_ rule).
        Assert.Equal(0.6, toy.weight.grad!.data<float>()[0], 4);
        Assert.Equal(0.8, toy.bias.grad!.data<float>()[0], 4);
    }

    [Fact]
    public void WeightDecayExcludesBiasAndLayerNormOnBert()
    {
        var config = TinyPretraining.Config();
        using var model = TinyPretraining.Model(config);
        using var opt = new AdamWOptimizer(model);
        Assert.Equal(0.01, opt.Options.WeightDecay);
        var byName = opt.Slots.ToDictionary(s => s.Name);
        Assert.True(byName["bert.embeddings.word_embeddings.weight"].Decay);
        Assert.True(byName["bert.encoder.layer.0.attention.self.query.weight"].Decay);
        Assert.True(byName["cls.seq_relationship.weight"].Decay);
        Assert.False(byName["bert.encoder.layer.0.attention.self.query.bias"].Decay);
        Assert.False(byName["bert.embeddings.LayerNorm.weight"].Decay);
        Assert.False(byName["bert.encoder.layer.1.output.LayerNorm.weight"].Decay);
        Assert.False(byName["cls.predictions.bias"].Decay);
        Assert.False(byName.ContainsKey("cls.predictions.decoder.weight"));  // tied: optimised once
        Assert.Equal(ModelUtils.CountParameters(model), opt.Slots.Sum(s => s.Param.numel()));
    }

    [Fact]
    public void ScheduleWarmsUpThenDecaysToZero()
    {
        var s = new LinearWarmupDecay(1e-3, 10, 110);
        Assert.Equal(0, s.At(0));
        Assert.Equal(5e-4, s.At(5), 12);
        Assert.Equal(1e-3, s.At(10), 12);
        Assert.Equal(5e-4, s.At(60), 12);
        Assert.Equal(0, s.At(110));
        Assert.Equal(10, LinearWarmupDecay.ResolveWarmup(100, 0.1, null));
        Assert.Equal(7, LinearWarmupDecay.ResolveWarmup(100, 0.1, 7));
    }

    [Fact]
    public void BFloat16ModelKeepsFloat32Masters()
    {
        var config = TinyPretraining.Config();
        using var model = TinyPretraining.Model(config);
        model.to(ScalarType.BFloat16);
        using var opt = new AdamWOptimizer(model, new AdamWOptions { WeightDecay = 0 });
        Assert.All(opt.Slots, s => Assert.Equal(ScalarType.Float32, s.Master!.dtype));
        Assert.Contains(opt.StateTensors(), kv => kv.Key == "master.bert.embeddings.word_embeddings.weight");

        // One step with an lr far below bf16 resolution (weights ~0.02 have a bf16 spacing of ~1e-4; only values near 0
        // can resolve it, ~5% here): an update
        // applied to the bf16 weights themselves rounds away, so only fp32 masters can hold it.
        const double lr = 1e-6;
        var before = opt.Slots.ToDictionary(s => s.Name, s => s.Master!.clone());
        var bf16Before = opt.Slots.ToDictionary(s => s.Name, s => s.Param.detach().clone());
        {
            using var scope = NewDisposeScope();
            var g = new Generator(5);
            Tensor loss = zeros(1);
            foreach (var s in opt.Slots) loss = loss + (s.Param.to(ScalarType.Float32) * randn(s.Param.shape, generator: g)).sum();
            loss.backward();
        }
        opt.Step(lr);
        long moved = 0, total = 0, bf16Changed = 0;
        foreach (var s in opt.Slots)
        {
            using var delta = (s.Master! - before[s.Name]).abs();
            // Adam's first step moves every element with a gradient by about lr (grad-norm clipping does not change the direction).
            moved += (delta > lr * 0.5).sum().item<long>();
            total += delta.numel();
            Assert.True(delta.max().item<float>() <= lr * 1.5, $"{s.Name}: a master moved by more than the step");
            // The bf16 weights are exactly the masters rounded to bf16.
            using var rounded = s.Master!.to(ScalarType.BFloat16);
            Assert.True(s.Param.detach().eq(rounded).all().item<bool>(), $"{s.Name}: bf16 weights differ from master.to(bf16)");
            bf16Changed += s.Param.detach().ne(bf16Before[s.Name]).sum().item<long>();
        }
        Assert.True(moved > total * 0.95, $"only {moved} of {total} fp32 master elements moved");
        Assert.True(bf16Changed < total * 0.10, $"{bf16Changed} of {total} bf16 weights changed: the lr is not below bf16 resolution");
        foreach (var t in before.Values.Concat(bf16Before.Values)) t.Dispose();
    }
}
