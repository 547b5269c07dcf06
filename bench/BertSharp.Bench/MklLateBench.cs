using BertSharp.Inference;
using static TorchSharp.torch;

namespace BertSharp.Bench;

/// <summary>
/// `mkl-late`: does <see cref="Runtime.EnsureMklDispatch"/> still take effect when MKL has already run (a library user
/// who did tensor work before loading a model)? Times fp32 GEMMs with MKL's default dispatch, applies the patch, and
/// times them again in the same process. `--early` applies the patch first (the control: both columns patched).
/// One thread; median of 5 rounds of ≥ 0.3 s each.
/// </summary>
static class MklLateBench
{
    public static int Run(string[] args)
    {
        bool early = args.Contains("--early");
        InitializeDeviceType(TorchSharp.DeviceType.CPU);
        if (early) Runtime.EnsureMklDispatch();
        set_num_threads(1);
        using var _ = inference_mode();
        (int M, int K, int N)[] shapes = [(4096, 384, 1536), (4096, 384, 384), (1024, 1024, 1024)];
        var before = shapes.Select(Measure).ToArray();
        Runtime.EnsureMklDispatch();
        var after = shapes.Select(Measure).ToArray();
        Console.WriteLine($"bench mkl-late — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; {Machine.Cpu()}; threads 1; MKL {(early ? "before" : "after")} the first GEMMs: {Runtime.MklDispatchState}; load {Machine.LoadAverage()}");
        Console.WriteLine("| M×K×N | before the patch GFLOP/s | after GFLOP/s | after / before |");
        Console.WriteLine("|---|---:|---:|---:|");
        for (int i = 0; i < shapes.Length; i++)
            Console.WriteLine($"| {shapes[i].M}×{shapes[i].K}×{shapes[i].N} | {before[i]:F0} | {after[i]:F0} | {after[i] / before[i]:F2}× |");
        return 0;
    }

    static double Measure((int M, int K, int N) s)
    {
        using var scope = NewDisposeScope();
        var a = randn(s.M, s.K); var w = randn(s.N, s.K);
        return GemmBench.Median(Enumerable.Range(0, 5).Select(_ => GemmBench.Gflops(s, () => nn.functional.linear(a, w))).ToList());
    }
}
