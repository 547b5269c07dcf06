using System.Diagnostics;
using BertSharp.Inference;
using static TorchSharp.torch;

namespace BertSharp.Bench;

/// <summary>
/// `gemm [--threads N] [--shapes MxKxN,…]`: libtorch's fp32 `linear` (MKL sgemm, with the AVX-512 dispatch of <see cref="Runtime"/>)
/// against bf16 `linear` (oneDNN, AVX512_BF16) on BERT's layer shapes, interleaved rounds, GFLOP/s (median of 5).
/// The bf16/fp32 ratio of the GEMMs bounds what bf16 inference can gain over an fp32 engine running at the same
/// GEMM speed (ONNX Runtime's MLAS does: ../shared/PERFORMANCE.md).
/// </summary>
static class GemmBench
{
    public static int Run(string[] args)
    {
        int threads = 1;
        (int M, int K, int N)[] shapes = [(4096, 384, 384), (4096, 384, 1536), (4096, 1536, 384), (4096, 768, 768), (4096, 768, 3072), (4096, 3072, 768), (128, 384, 384), (128, 768, 768)];
        for (int i = 0; i < args.Length; i++)
            if (args[i] == "--threads") threads = int.Parse(args[++i]);
            else if (args[i] == "--shapes")
                shapes = args[++i].Split(',').Select(x => x.Split('x').Select(int.Parse).ToArray()).Select(d => (d[0], d[1], d[2])).ToArray();
            else { Console.Error.WriteLine($"gemm: unknown option {args[i]}"); return 2; }
        Runtime.Initialize(threads);
        Console.WriteLine($"bench gemm — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; {Machine.Cpu()}; threads {threads}; MKL: {Runtime.MklDispatchState}; load {Machine.LoadAverage()}");
        Console.WriteLine("| M×K→N (tokens × in → out) | fp32 GFLOP/s | bf16 GFLOP/s | bf16 / fp32 |");
        Console.WriteLine("|---|---:|---:|---:|");
        using var _ = inference_mode();
        foreach (var s in shapes)
        {
            using var scope = NewDisposeScope();
            var a = randn(s.M, s.K); var w = randn(s.N, s.K); var b = randn(s.N);
            var a16 = a.to(ScalarType.BFloat16); var w16 = w.to(ScalarType.BFloat16); var b16 = b.to(ScalarType.BFloat16);
            var f = new List<double>(); var h = new List<double>();
            for (int r = 0; r < 5; r++)
            {
                f.Add(Gflops(s, () => nn.functional.linear(a, w, b)));
                h.Add(Gflops(s, () => nn.functional.linear(a16, w16, b16)));
            }
            double mf = Median(f), mh = Median(h);
            Console.WriteLine($"| {s.M}×{s.K}→{s.N} | {mf:F0} | {mh:F0} | {mh / mf:F2}× |");
        }
        return 0;
    }

    internal static double Gflops((int M, int K, int N) s, Func<Tensor> f)
    {
        f().Dispose(); // warm
        var sw = Stopwatch.StartNew(); int n = 0;
        while (sw.Elapsed.TotalSeconds < 0.3) { f().Dispose(); n++; }
        return 2.0 * s.M * s.K * s.N * n / sw.Elapsed.TotalSeconds / 1e9;
    }

    internal static double Median(List<double> x) { x.Sort(); return x[x.Count / 2]; }
}
