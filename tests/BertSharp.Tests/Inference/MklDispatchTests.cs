using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using BertSharp.Inference;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Inference;

/// <summary>
/// <see cref="MklDispatch"/> points libtorch's <c>mkl_serv_intel_cpu_true</c> GOT slot at a stub returning 1, so MKL
/// takes its AVX-512 kernels on AMD. The test process applied it in <see cref="TestRuntime"/>; these tests check it
/// happened where it should, and that fp32 matmuls on the patched path are right against a double-precision
/// reference computed here.
/// </summary>
public class MklDispatchTests
{
    static bool ShouldPatch()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return false;
        var (_, ebx, _, _) = X86Base.CpuId(0, 0);
        bool intel = ebx == 0x756E6547; // "Genu"
        return !intel && Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512F.VL.IsSupported;
    }

    [Fact]
    public void Dispatch_is_patched_exactly_where_the_cpu_calls_for_it()
    {
        var state = Runtime.MklDispatchState;
        if (Environment.GetEnvironmentVariable(MklDispatch.EnvVar) == "off") Assert.Contains("off", state);
        else if (ShouldPatch()) Assert.StartsWith("MKL AVX-512 dispatch on (", state);
        else Assert.StartsWith("default dispatch (", state);
    }

    [Fact]
    public void Applying_again_is_harmless()
    {
        var first = Runtime.MklDispatchState;
        Assert.Equal(first.StartsWith("MKL", StringComparison.Ordinal), MklDispatch.Apply().StartsWith("MKL", StringComparison.Ordinal));
    }

    [Fact]
    public void The_relocation_is_found_in_libtorch_cpu()
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return;
        var path = MklDispatch.Locate(out var function, out var loadBase);
        Assert.NotNull(path);
        Assert.True(function > loadBase);
        Assert.NotEmpty(MklDispatch.GotSlots(path, "mkl_serv_intel_cpu_true"));
        Assert.Empty(MklDispatch.GotSlots(path, "no_such_symbol_anywhere"));
    }

    // Shapes of BERT's linear layers (base and the small presets), including the ones that broke oneDNN's 1×1
    // convolution path (docs/performance.md §2), through libtorch's fp32 linear (MKL sgemm).
    [Theory]
    [InlineData(128, 768, 768)]
    [InlineData(128, 768, 3072)]
    [InlineData(256, 3072, 768)]
    [InlineData(128, 512, 2048)]
    [InlineData(77, 384, 1536)]
    [InlineData(1, 384, 384)]
    public void Fp32_linear_matches_a_double_precision_reference(int m, int k, int n)
    {
        using var scope = NewDisposeScope();
        var gen = new Generator(seed: 7);
        var x = randn([m, k], generator: gen);
        var w = randn([n, k], generator: gen) * 0.05f;
        var b = randn([n], generator: gen);
        var y = nn.functional.linear(x, w, b).data<float>().ToArray();

        var xs = x.data<float>().ToArray(); var ws = w.data<float>().ToArray(); var bs = b.data<float>().ToArray();
        double worst = 0;
        for (int i = 0; i < m; i++)
        for (int j = 0; j < n; j++)
        {
            double acc = bs[j], mag = Math.Abs(bs[j]);
            for (int t = 0; t < k; t++) { double p = (double)xs[i * k + t] * ws[j * k + t]; acc += p; mag += Math.Abs(p); }
            worst = Math.Max(worst, Math.Abs(y[i * n + j] - acc) / (mag + 1e-30));
        }
        // fp32 accumulation over k terms: relative to the sum of |terms|, errors are ~k·2^-24 at worst.
        Assert.True(worst < 2e-6 * Math.Sqrt(k), $"max error relative to Σ|terms| = {worst:E2}");
    }
}
