using TorchSharp;
using TorchSharp.Modules;
using BertSharp.Modeling;
using static TorchSharp.torch;

namespace BertSharp.Training;

/// <summary>Hyper-parameters of <see cref="AdamWOptimizer"/>.</summary>
public sealed record AdamWOptions
{
    public double Beta1 { get; init; } = 0.9;
    public double Beta2 { get; init; } = 0.999;
    /// <summary>1e-6 as Google's BERT (HF's AdamW defaults to 1e-8; pass that for HF parity).</summary>
    public double Eps { get; init; } = 1e-6;
    /// <summary>Decoupled weight decay, applied to every parameter except biases and LayerNorm weights.</summary>
    public double WeightDecay { get; init; } = 0.01;
    /// <summary>
    /// True: PyTorch/HF AdamW (bias-corrected moments). False: Google's AdamWeightDecayOptimizer / HF's old
    /// BertAdam / pytorchic-bert (no bias correction).
    /// </summary>
    public bool BiasCorrection { get; init; } = true;
    /// <summary>Global L2 norm the gradients are clipped to before the update; 0 or less disables clipping.</summary>
    public double MaxGradNorm { get; init; } = 1.0;
}

/// <summary>
/// AdamW with decoupled weight decay written with in-place torch ops: one first/second moment per parameter,
/// the update of PyTorch's <c>torch.optim.AdamW</c> (or, without bias correction, Google's BERT optimizer), global
/// gradient-norm clipping, and — when the model's parameters are not float32 (bf16 training) — float32 master
/// weights that the optimizer updates and copies back into the model after each step (mixed precision).
/// All state is exposed as named tensors so that a checkpoint restores it bit for bit.
/// </summary>
public sealed class AdamWOptimizer : IDisposable
{
    /// <summary>One optimised parameter with its state.</summary>
    public sealed class Slot
    {
        internal Slot(string name, Parameter p, bool decay, Tensor m, Tensor v, Tensor? master)
        {
            Name = name; Param = p; Decay = decay; ExpAvg = m; ExpAvgSq = v; Master = master;
        }
        public string Name { get; }
        public Parameter Param { get; }
        public bool Decay { get; }
        public Tensor ExpAvg { get; }
        public Tensor ExpAvgSq { get; }
        /// <summary>The float32 master copy when the model parameter has a lower precision; else null.</summary>
        public Tensor? Master { get; }
    }

    readonly List<Slot> _slots = new();

    public AdamWOptimizer(nn.Module model, AdamWOptions? options = null, Func<string, bool>? excludeFromDecay = null)
    {
        Options = options ?? new AdamWOptions();
        var exclude = excludeFromDecay ?? IsExcludedFromDecay;
        var seen = new HashSet<IntPtr>();
        using var scope = NewDisposeScope();  // slot tensors are detached; temporaries die here, not on the finalizer thread
        foreach (var (name, p) in model.named_parameters())
        {
            if (!p.requires_grad || ModelUtils.IsTiedAlias(name)) continue;
            if (!seen.Add(p.Handle)) continue;  // a parameter shared under two names is optimised once
            Tensor? master = null;
            using (no_grad())
            {
                if (p.dtype != ScalarType.Float32) master = p.detach().to(ScalarType.Float32).clone().DetachFromDisposeScope();
                var m = zeros(p.shape, ScalarType.Float32, p.device).DetachFromDisposeScope();
                var v = zeros(p.shape, ScalarType.Float32, p.device).DetachFromDisposeScope();
                _slots.Add(new Slot(name, p, !exclude(name), m, v, master));
            }
        }
    }

    public AdamWOptions Options { get; }

    /// <summary>Number of updates done so far (the bias-correction exponent of the next update minus one).</summary>
    public long StepCount { get; private set; }

    public IReadOnlyList<Slot> Slots => _slots;

    /// <summary>HF/Google rule: no weight decay for biases and LayerNorm parameters.</summary>
    public static bool IsExcludedFromDecay(string name) =>
        name.EndsWith("bias", StringComparison.Ordinal) ||
        name.Contains("LayerNorm", StringComparison.Ordinal) ||
        name.Contains("layer_norm", StringComparison.Ordinal);

    /// <summary>Sets every gradient to zero (call after <see cref="Step"/>).</summary>
    public void ZeroGrad()
    {
        using var scope = NewDisposeScope();
        foreach (var s in _slots)
        {
            var g = s.Param.grad;
            g?.zero_();
        }
    }

    /// <summary>
    /// Clips the gradients to <see cref="AdamWOptions.MaxGradNorm"/> (global L2 norm) and applies one update with
    /// learning rate <paramref name="lr"/>. Returns the gradient norm before clipping. Parameters without a
    /// gradient are left alone (their moments do not decay, as in PyTorch).
    /// </summary>
    public double Step(double lr)
    {
        using var scope = NewDisposeScope();
        using var _ = no_grad();
        var o = Options;
        var grads = new Tensor?[_slots.Count];
        for (int i = 0; i < _slots.Count; i++)
        {
            var g = _slots[i].Param.grad;
            if (g is null) continue;
            grads[i] = g.dtype == ScalarType.Float32 ? g : g.to(ScalarType.Float32);
        }

        var present = grads.Where(g => g is not null).Select(g => g!).ToArray();
        if (present.Length == 0) return 0;
        using var norms = stack(present.Select(g => linalg.vector_norm(g)).ToArray());
        double total = linalg.vector_norm(norms).item<float>();
        if (o.MaxGradNorm > 0)
        {
            // Same rule as torch.nn.utils.clip_grad_norm_: scale by min(1, max / (norm + 1e-6)).
            double coef = o.MaxGradNorm / (total + 1e-6);
            if (coef < 1.0)
                foreach (var g in present) g.mul_(coef);
        }

        StepCount++;
        double bc1 = o.BiasCorrection ? 1 - Math.Pow(o.Beta1, StepCount) : 1.0;
        double bc2 = o.BiasCorrection ? 1 - Math.Pow(o.Beta2, StepCount) : 1.0;
        // torch: w −= lr/bc1 · m / (√v/√bc2 + ε)  ≡  w −= (lr·√bc2/bc1) · m / (√v + ε·√bc2)  (one pass fewer)
        double bc2Sqrt = Math.Sqrt(bc2);
        double stepSize = lr * bc2Sqrt / bc1;
        double epsHat = o.Eps * bc2Sqrt;
        for (int i = 0; i < _slots.Count; i++)
        {
            var g = grads[i];
            if (g is null) continue;
            var s = _slots[i];
            var w = s.Master ?? s.Param;
            if (s.Decay && o.WeightDecay != 0) w.mul_(1 - lr * o.WeightDecay);
            s.ExpAvg.lerp_(g, 1 - o.Beta1);  // β1·m + (1 − β1)·g
            s.ExpAvgSq.mul_(o.Beta2).addcmul_(g, g, value: 1 - o.Beta2);
            var denom = s.ExpAvgSq.sqrt().add_(epsHat);
            w.addcdiv_(s.ExpAvg, denom, value: -stepSize);
            if (s.Master is not null) s.Param.copy_(s.Master);
        }
        return total;
    }

    /// <summary>Named state tensors: <c>exp_avg.NAME</c>, <c>exp_avg_sq.NAME</c> and (bf16) <c>master.NAME</c>.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> StateTensors()
    {
        foreach (var s in _slots)
        {
            yield return new("exp_avg." + s.Name, s.ExpAvg);
            yield return new("exp_avg_sq." + s.Name, s.ExpAvgSq);
            if (s.Master is not null) yield return new("master." + s.Name, s.Master);
        }
    }

    /// <summary>Restores what <see cref="StateTensors"/> returned and the step count; copies masters into the model.</summary>
    public void LoadState(IReadOnlyDictionary<string, Tensor> state, long stepCount)
    {
        using var _ = no_grad();
        Tensor Get(string key) => state.TryGetValue(key, out var t) ? t
            : throw new InvalidDataException($"optimizer state lacks '{key}' (was the checkpoint written for another model?)");
        foreach (var s in _slots)
        {
            s.ExpAvg.copy_(Get("exp_avg." + s.Name));
            s.ExpAvgSq.copy_(Get("exp_avg_sq." + s.Name));
            if (s.Master is not null)
            {
                if (state.TryGetValue("master." + s.Name, out var m)) s.Master.copy_(m);
                else s.Master.copy_(s.Param);  // checkpoint written in fp32: the model weights are the masters
                s.Param.copy_(s.Master);
            }
        }
        StepCount = stepCount;
    }

    /// <summary>The float32 weights (masters when they exist) under the model's parameter names.</summary>
    public IEnumerable<KeyValuePair<string, Tensor>> Float32Weights() =>
        _slots.Select(s => new KeyValuePair<string, Tensor>(s.Name, s.Master ?? s.Param));

    public void Dispose()
    {
        foreach (var s in _slots)
        {
            s.ExpAvg.Dispose();
            s.ExpAvgSq.Dispose();
            s.Master?.Dispose();
        }
        _slots.Clear();
    }
}
