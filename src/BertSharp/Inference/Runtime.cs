using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using static TorchSharp.torch;

namespace BertSharp.Inference;

/// <summary>
/// Process-wide settings that make libtorch faster on CPU. The allocator tuning is applied automatically when the
/// BertSharp assembly loads (see <see cref="ModuleInit"/>); <see cref="Initialize"/> additionally sets the intra-op
/// thread count. Everything is idempotent.
/// </summary>
public static partial class Runtime
{
    /// <summary>
    /// <c>off</c> leaves glibc's allocator at its defaults; <c>threshold</c>: mmap threshold 32 MiB (glibc's maximum) and
    /// no trimming; anything else (default): never mmap (every block from the heap), no trimming, 64 MiB top pad.
    /// </summary>
    public const string MallocEnvVar = "BERTSHARP_MALLOC";

    // glibc <malloc.h> parameter numbers.
    const int M_TRIM_THRESHOLD = -1;
    const int M_TOP_PAD = -2;
    const int M_MMAP_THRESHOLD = -3;
    const int M_MMAP_MAX = -4;

    static readonly object Gate = new();
    static bool _mallocDone, _initDone;

    /// <summary>What <see cref="TuneMalloc"/> did, for benchmark reports ("off", "glibc: …", "n/a: …").</summary>
    public static string MallocTuning { get; private set; } = "not applied";

    /// <summary>
    /// Keeps glibc from handing freed memory back to the OS. libtorch allocates every intermediate tensor with
    /// <c>posix_memalign</c>; by default blocks ≥ 128 KiB are mmapped and unmapped on free, and the heap top is
    /// trimmed, so each forward pass touches fresh pages again (~6 µs per 4 KiB page on the reference VM). Serving
    /// every block from the heap and never trimming it keeps the pages resident and reusable. Raising the mmap
    /// threshold is not enough: glibc caps it at 32 MiB, and BERT-base's FFN activations at 32 × 128 tokens are 48 MiB
    /// (an fp32 GEMM with such an output ran at a third of its speed: docs/performance.md §1). Linux/glibc only.
    /// </summary>
    public static void TuneMalloc()
    {
        lock (Gate)
        {
            if (_mallocDone) return;
            _mallocDone = true;
            var mode = (Environment.GetEnvironmentVariable(MallocEnvVar) ?? "").Trim().ToLowerInvariant();
            if (mode == "off") { MallocTuning = "off"; return; }
            if (!OperatingSystem.IsLinux()) { MallocTuning = "n/a: not Linux"; return; }
            try
            {
                bool ok = true;
                if (mode == "threshold")
                {
                    // The setting measured in ../shared/PERFORMANCE.md: blocks up to 32 MiB from the heap, no trimming.
                    ok &= mallopt(M_MMAP_THRESHOLD, 32 << 20) == 1;
                    ok &= mallopt(M_TRIM_THRESHOLD, int.MaxValue) == 1;
                    MallocTuning = ok ? "glibc: mmap threshold 32 MiB, no trim" : "glibc: mallopt refused";
                }
                else MallocTuning = SetNoMmap(true) ? "glibc: no mmap, no trim, 64 MiB top pad" : "glibc: mallopt refused";
            }
            catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
            {
                MallocTuning = "n/a: no glibc mallopt";
            }
        }
    }

    /// <summary>
    /// For A/B measurements only: switches between the tuned allocator settings and glibc's static defaults
    /// (128 KiB mmap and trim thresholds) at run time. Linux/glibc only; returns false where unavailable.
    /// </summary>
    public static bool SetMallocTuned(bool tuned)
    {
        if (!OperatingSystem.IsLinux()) return false;
        try { return SetNoMmap(tuned); }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException)
        {
            return false;
        }
    }

    /// <summary>The default tuning (never mmap, never trim, 64 MiB top pad), or glibc's static defaults.</summary>
    static bool SetNoMmap(bool on)
    {
        bool ok = mallopt(M_MMAP_MAX, on ? 0 : 65536) == 1; // 65536: glibc's default cap on mmapped blocks
        if (!on) ok &= mallopt(M_MMAP_THRESHOLD, 128 << 10) == 1;
        ok &= mallopt(M_TRIM_THRESHOLD, on ? int.MaxValue : 128 << 10) == 1;
        ok &= mallopt(M_TOP_PAD, on ? 64 << 20 : 128 << 10) == 1;
        return ok;
    }

    /// <summary>What <see cref="Initialize"/> did about MKL's CPU dispatch (see <see cref="MklDispatch"/>), for reports.</summary>
    public static string MklDispatchState { get; private set; } = "not applied";

    static bool _mklDone;

    /// <summary>
    /// Applies <see cref="MklDispatch"/> once (loading libtorch first). <see cref="Initialize"/> calls it, and so does
    /// the <see cref="Modeling.BertModel"/> constructor, so library users who never call Initialize get it before their
    /// first model runs. Applied after MKL's first GEMM it has no effect: MKL caches its CPU check then (measured with
    /// <c>bench mkl-late</c>: GEMMs stay at the AVX2 speed), so code that runs its own fp32 matmuls before touching
    /// BertSharp should call <see cref="Initialize"/> first.
    /// </summary>
    public static void EnsureMklDispatch()
    {
        lock (Gate)
        {
            if (_mklDone) return;
            _mklDone = true;
            InitializeDeviceType(TorchSharp.DeviceType.CPU); // loads libtorch; MKL is not called yet
            MklDispatchState = MklDispatch.Apply();
        }
    }

    /// <summary>Thread count libtorch uses for intra-op parallelism after <see cref="Initialize"/>.</summary>
    public static int Threads => get_num_threads();

    /// <summary>
    /// Applies <see cref="TuneMalloc"/>, lets MKL use its AVX-512 kernels on AVX-512 CPUs of other vendors than
    /// Intel (<see cref="MklDispatch"/>; <c>BERTSHARP_MKL=off</c> keeps the default) and sets libtorch's intra-op
    /// threads to <paramref name="threads"/> (default: the number of logical cores). Call once at start, before the
    /// first tensor operation.
    /// </summary>
    public static void Initialize(int? threads = null)
    {
        TuneMalloc();
        lock (Gate)
        {
            if (_initDone && threads is null) return;
            EnsureMklDispatch();
            _initDone = true;
            set_num_threads(threads ?? Environment.ProcessorCount);
        }
    }

    /// <summary>
    /// Sets flush-to-zero / denormals-are-zero for the calling thread through libtorch's
    /// <c>at::globalContext().setFlushDenormal</c> (what <c>torch.set_flush_denormal</c> calls; TorchSharp 0.107 does not
    /// expose it). Threads created afterwards (libtorch's OpenMP pool on first parallel use) inherit the setting, so
    /// call it before the first tensor operation. Returns false where unsupported. Off by default: with HF-style
    /// initialisation it made no measurable difference (docs/performance.md).
    /// </summary>
    public static bool SetFlushDenormal(bool on)
    {
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64) return false;
        _ = get_num_threads(); // make sure TorchSharp has loaded libtorch
        if (!NativeLibrary.TryLoad("libtorch_cpu.so", typeof(TorchSharp.torch).Assembly, null, out var lib)) return false;
        if (!NativeLibrary.TryGetExport(lib, "_ZN2at13globalContextEv", out var getContext)
            || !NativeLibrary.TryGetExport(lib, "_ZN2at7Context16setFlushDenormalEb", out var setFlush))
            return false;
        unsafe
        {
            var context = ((delegate* unmanaged<IntPtr>)getContext)();
            return ((delegate* unmanaged<IntPtr, byte, byte>)setFlush)(context, on ? (byte)1 : (byte)0) != 0;
        }
    }

    /// <summary>Validates and applies an intra-op thread count (default: all cores); see <see cref="Initialize"/>.</summary>
    public static void SetThreads(int? threads)
    {
        if (threads is < 1) throw new ArgumentException($"--threads must be at least 1 (got {threads})");
        Initialize(threads);
    }

    /// <summary>Parses <c>cpu</c> / <c>cuda</c> / <c>cuda:N</c>; CUDA needs the CUDA TorchSharp package.</summary>
    public static Device ParseDevice(string? name)
    {
        name = string.IsNullOrWhiteSpace(name) ? "cpu" : name.Trim().ToLowerInvariant();
        if (name == "cpu") return CPU;
        if (name == "cuda" || name.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!cuda.is_available())
                throw new ArgumentException(
                    "--device cuda: CUDA is not available. BertSharp ships TorchSharp-cpu; to run on a GPU, reference " +
                    "TorchSharp-cuda-linux (or -windows) instead and make sure an NVIDIA driver is installed");
            return new Device(name);
        }
        throw new ArgumentException($"--device '{name}' is not supported (expected cpu, cuda or cuda:N)");
    }

    /// <summary>Parses <c>float32</c>/<c>fp32</c> or <c>bfloat16</c>/<c>bf16</c>.</summary>
    public static ScalarType ParseDType(string? name) => (name ?? "float32").Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        var other => throw new ArgumentException($"--dtype '{other}' is not supported (expected float32 or bfloat16)"),
    };

    [LibraryImport("libc", EntryPoint = "mallopt")]
    private static partial int mallopt(int param, int value);

    internal static class ModuleInit
    {
        // Allocator settings must precede the allocations they are meant to govern, so they are applied as soon as
        // the library is loaded: every host (CLI, bench, tests, user applications) gets them without a call.
#pragma warning disable CA2255 // ModuleInitializer in a library: intentional, see above.
        [ModuleInitializer]
        internal static void Run() => TuneMalloc();
#pragma warning restore CA2255
    }
}
