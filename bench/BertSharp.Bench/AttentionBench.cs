using System.Diagnostics;
using BertSharp.Inference;
using static TorchSharp.torch;

namespace BertSharp.Bench;

/// <summary>
/// `attention [--threads 1] [--batch 8] [--heads 12] [--head-dim 32] [--seqs 128,512]`: libtorch's
/// scaled_dot_product_attention against the explicit softmax(QKᵀ/√d + mask)·V (two batched matmuls), fp32 and bf16,
/// unmasked and with a padding mask, interleaved; ms per call (median of 5 rounds).
/// </summary>
static class AttentionBench
{
    public static int Run(string[] args)
    {
        int threads = 1, batch = 8, heads = 12, headDim = 32; int[] seqs = [128, 512];
        for (int i = 0; i < args.Length; i++)
            switch (args[i])
            {
                case "--threads": threads = int.Parse(args[++i]); break;
                case "--batch": batch = int.Parse(args[++i]); break;
                case "--heads": heads = int.Parse(args[++i]); break;
                case "--head-dim": headDim = int.Parse(args[++i]); break;
                case "--seqs": seqs = args[++i].Split(',').Select(int.Parse).ToArray(); break;
                default: Console.Error.WriteLine($"attention: unknown option {args[i]}"); return 2;
            }
        Runtime.Initialize(threads);
        Console.WriteLine($"bench attention — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; {Machine.Cpu()}; threads {threads}; MKL: {Runtime.MklDispatchState}; load {Machine.LoadAverage()}");
        Console.WriteLine("| dtype | B×h×L×d | mask | SDPA ms | explicit ms | explicit / SDPA speed |");
        Console.WriteLine("|---|---|---|---:|---:|---:|");
        using var _ = inference_mode();
        foreach (var dtype in new[] { ScalarType.Float32, ScalarType.BFloat16 })
        foreach (var l in seqs)
        foreach (var masked in new[] { false, true })
        {
            using var scope = NewDisposeScope();
            var q = randn(batch, heads, l, headDim).to(dtype); var k = randn(batch, heads, l, headDim).to(dtype); var v = randn(batch, heads, l, headDim).to(dtype);
            Tensor? mask = null;
            if (masked)
            {
                var keep = ones(batch, l); keep[0, TensorIndex.Slice(l / 2)] = 0;
                mask = ((1 - keep) * -3.4e38f).view(batch, 1, 1, l).to(dtype);
            }
            double scale = 1 / Math.Sqrt(headDim);
            Tensor Sdpa() => nn.functional.scaled_dot_product_attention(q, k, v, mask);
            Tensor Explicit()
            {
                var s = matmul(q, k.transpose(-1, -2)).mul_(scale);
                if (mask is not null) s.add_(mask);
                return matmul(s.softmax(-1), v);
            }
            var maxDiff = (Sdpa().to(ScalarType.Float32) - Explicit().to(ScalarType.Float32)).abs().max().item<float>();
            var a = new List<double>(); var b = new List<double>();
            for (int r = 0; r < 5; r++)
            {
                a.Add(Time(Sdpa)); b.Add(Time(Explicit));
            }
            double ma = Median(a), mb = Median(b);
            Console.WriteLine($"| {(dtype == ScalarType.Float32 ? "fp32" : "bf16")} | {batch}×{heads}×{l}×{headDim} | {(masked ? "padded" : "none")} | {ma:F2} | {mb:F2} | {ma / mb:F2}× (max |Δ| {maxDiff:E1}) |");
        }
        return 0;
    }

    static double Time(Func<Tensor> f)
    {
        using (NewDisposeScope()) f(); // warm
        var sw = Stopwatch.StartNew(); int n = 0;
        while (sw.Elapsed.TotalSeconds < 0.3) { using (NewDisposeScope()) f(); n++; }
        return sw.Elapsed.TotalMilliseconds / n;
    }

    static double Median(List<double> x) { x.Sort(); return x[x.Count / 2]; }
}
