using System.Runtime.InteropServices;
using BertSharp.Inference;
using Xunit;

namespace BertSharp.Tests.Inference;

/// <summary>
/// <see cref="Runtime.TuneMalloc"/> (applied when the BertSharp assembly loads) makes glibc serve every block from the
/// heap, so large activations are reused instead of being mmapped and page-faulted again on every forward pass.
/// Checked on the allocation call libtorch's CPU allocator makes (<c>posix_memalign</c>, 64-byte aligned) through
/// glibc's own chunk header: bit 1 of the size word before the block is IS_MMAPPED.
/// </summary>
public partial class MallocTuningTests
{
    const long Mib48 = 48L << 20; // BERT-base FFN activations at 32 × 128 tokens, fp32

    [LibraryImport("libc", EntryPoint = "posix_memalign")]
    private static partial int PosixMemalign(out nint ptr, nuint alignment, nuint size);

    [LibraryImport("libc", EntryPoint = "free")]
    private static partial void Free(nint ptr);

    [StructLayout(LayoutKind.Sequential)]
    struct MallInfo2 { public nuint Arena, Ordblks, Smblks, Hblks, Hblkhd, Usmblks, Fsmblks, Uordblks, Fordblks, Keepcost; }

    [LibraryImport("libc", EntryPoint = "mallinfo2")]
    private static partial MallInfo2 MallInfo();

    /// <summary>Larger than all free heap memory (glibc serves a request from free heap memory before it considers
    /// mmap, whatever the settings), so only the mmap decision can place it; untouched, so it costs no RSS.</summary>
    static long BeyondFreeHeap() => Math.Max(Mib48, (long)MallInfo().Fordblks + (64L << 20));

    static bool Glibc => OperatingSystem.IsLinux() && Runtime.MallocTuning.StartsWith("glibc", StringComparison.Ordinal);

    static bool AllocationIsMmapped(long size)
    {
        Assert.Equal(0, PosixMemalign(out var p, 64, (nuint)size));
        try { return (Marshal.ReadInt64(p - 8) & 2) != 0; }
        finally { Free(p); }
    }

    [Fact]
    public void Default_setting_is_no_mmap_and_no_trim()
    {
        if (!OperatingSystem.IsLinux() || Environment.GetEnvironmentVariable(Runtime.MallocEnvVar) is { Length: > 0 }) return;
        Assert.Equal("glibc: no mmap, no trim, 64 MiB top pad", Runtime.MallocTuning);
    }

    [Fact]
    public void A_48_MiB_block_comes_from_the_heap()
    {
        if (!Glibc || Runtime.MallocTuning.Contains("threshold", StringComparison.Ordinal)) return;
        // Up to a glibc heap (64 MiB): never mmapped, on any thread. (Beyond that, glibc's per-thread arenas still fall
        // back to mmap whatever M_MMAP_MAX says; only the main thread's arena grows with brk: docs/performance.md §1.)
        Assert.False(AllocationIsMmapped(Mib48));
        Assert.False(AllocationIsMmapped(1L << 20));
        // The control: with glibc's defaults a request the free heap cannot hold is mmapped, so the check can fail.
        Assert.True(Runtime.SetMallocTuned(false));
        try { Assert.True(AllocationIsMmapped(BeyondFreeHeap())); }
        finally { Assert.True(Runtime.SetMallocTuned(true)); }
        Assert.False(AllocationIsMmapped(Mib48));
    }
}
