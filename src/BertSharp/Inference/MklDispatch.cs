using System.IO.MemoryMappedFiles;
using System.Runtime.InteropServices;
using System.Runtime.Intrinsics.X86;
using System.Text;

namespace BertSharp.Inference;

/// <summary>
/// Lets libtorch's bundled MKL use its AVX-512 kernels on non-Intel CPUs that have AVX-512 (AMD Zen 4/5).
/// MKL picks its code path from CPUID, but only after asking <c>mkl_serv_intel_cpu_true()</c>; on other vendors that
/// answers 0 and sgemm runs its AVX2 path (184 GFLOP/s vs 409 for AVX-512 on the reference VM: fp32 inference at
/// half of ONNX Runtime's speed). libtorch_cpu.so calls that function through its GOT, so the slot can be pointed at
/// a six-byte stub that returns 1: the in-process equivalent of the well-known <c>LD_PRELOAD</c> workaround.
/// The kernels MKL then selects are chosen by CPUID feature bits as on Intel, so they only use instructions the CPU
/// has. Linux x64 only; <c>BERTSHARP_MKL=off</c> disables it; run it before MKL's first call: MKL caches its CPU check at its first GEMM, and a later patch has no effect (measured: `bench mkl-late`). Costs ~20 ms (the ELF scan).
/// docs/performance.md has the measurements.
/// </summary>
internal static unsafe partial class MklDispatch
{
    public const string EnvVar = "BERTSHARP_MKL";
    const string Target = "mkl_serv_intel_cpu_true";

    /// <summary>Patches the GOT slot(s) once; returns a one-line description of what was done (or why not).</summary>
    public static string Apply()
    {
        if ((Environment.GetEnvironmentVariable(EnvVar) ?? "").Trim().Equals("off", StringComparison.OrdinalIgnoreCase))
            return $"default dispatch ({EnvVar}=off)";
        if (!OperatingSystem.IsLinux() || RuntimeInformation.ProcessArchitecture != Architecture.X64)
            return "default dispatch (not Linux x64)";
        if (IsIntel()) return "default dispatch (Intel CPU)";
        if (!(Avx512F.IsSupported && Avx512BW.IsSupported && Avx512DQ.IsSupported && Avx512CD.IsSupported && Avx512F.VL.IsSupported))
            return "default dispatch (no AVX-512)";
        try { return Patch(); }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException or DllNotFoundException
                                      or EntryPointNotFoundException or InvalidDataException)
        {
            return $"default dispatch ({e.Message})";
        }
    }

    static bool IsIntel()
    {
        var (_, ebx, ecx, edx) = X86Base.CpuId(0, 0);
        Span<byte> vendor = stackalloc byte[12];
        BitConverter.TryWriteBytes(vendor, ebx);
        BitConverter.TryWriteBytes(vendor[4..], edx);
        BitConverter.TryWriteBytes(vendor[8..], ecx);
        return vendor.SequenceEqual("GenuineIntel"u8);
    }

    static string Patch()
    {
        if (Locate(out var original, out var loadBase) is not { } path)
            return $"default dispatch (no {Target} in a loaded libtorch_cpu.so)";
        var slots = GotSlots(path, Target);
        if (slots.Count == 0) return $"default dispatch (no relocation for {Target})";

        var stub = ReturnOneStub();
        long size = new FileInfo(path).Length;
        int patched = 0;
        foreach (var offset in slots)
        {
            var slot = (nint*)(loadBase + (nint)offset);
            var current = *slot;
            // Bound (points at the real function) or lazy (points into the library's own PLT); anything else means the
            // load address or the file is not what we think, and we leave it alone.
            bool plausible = current == original || current == stub
                             || (current >= loadBase && current < loadBase + (nint)(2 * size));
            if (!plausible) throw new InvalidDataException($"unexpected GOT content for {Target}");
            WriteProtected(slot, stub);
            patched++;
        }
        return $"MKL AVX-512 dispatch on ({patched} GOT slot{(patched == 1 ? "" : "s")})";
    }

    /// <summary>The file libtorch_cpu.so was loaded from, its load address and the address of the MKL function.</summary>
    internal static string? Locate(out nint function, out nint loadBase)
    {
        function = loadBase = 0;
        if (!NativeLibrary.TryLoad("libtorch_cpu.so", typeof(TorchSharp.torch).Assembly, null, out var lib)
            || !NativeLibrary.TryGetExport(lib, Target, out function))
            return null;
        Dl_info info;
        if (dladdr(function, &info) == 0 || info.dli_fname == 0) return null;
        loadBase = info.dli_fbase;
        return Marshal.PtrToStringUTF8(info.dli_fname);
    }

    static nint _stub;

    /// <summary><c>mov eax, 1; ret</c> in an executable page (allocated once).</summary>
    static nint ReturnOneStub()
    {
        if (_stub != 0) return _stub;
        var page = mmap(0, 4096, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (page == -1) throw new IOException("mmap failed");
        ReadOnlySpan<byte> code = [0xB8, 0x01, 0x00, 0x00, 0x00, 0xC3];
        code.CopyTo(new Span<byte>((void*)page, code.Length));
        if (mprotect(page, 4096, PROT_READ | PROT_EXEC) != 0) throw new IOException("mprotect (stub) failed");
        return _stub = page;
    }

    static void WriteProtected(nint* slot, nint value)
    {
        long pageSize = Environment.SystemPageSize;
        var page = (nint)((long)slot & ~(pageSize - 1));
        int original = PageProtection(page);
        if ((original & PROT_WRITE) == 0 && mprotect(page, (nuint)pageSize, original | PROT_WRITE) != 0)
            throw new IOException("mprotect (GOT) failed");
        *slot = value;
        if ((original & PROT_WRITE) == 0) mprotect(page, (nuint)pageSize, original);
    }

    /// <summary>The protection of the mapping holding <paramref name="address"/>, from /proc/self/maps.</summary>
    static int PageProtection(nint address)
    {
        foreach (var line in File.ReadLines("/proc/self/maps"))
        {
            int dash = line.IndexOf('-'), space = line.IndexOf(' ');
            ulong start = Convert.ToUInt64(line[..dash], 16), end = Convert.ToUInt64(line[(dash + 1)..space], 16);
            if ((ulong)address < start || (ulong)address >= end) continue;
            var perms = line.AsSpan(space + 1, 4);
            return (perms[0] == 'r' ? PROT_READ : 0) | (perms[1] == 'w' ? PROT_WRITE : 0) | (perms[2] == 'x' ? PROT_EXEC : 0);
        }
        throw new IOException("GOT page not found in /proc/self/maps");
    }

    /// <summary>
    /// The r_offset of every R_X86_64_JUMP_SLOT / GLOB_DAT relocation against <paramref name="symbol"/> in the ELF64
    /// shared object at <paramref name="path"/> (section headers, .dynsym and its string table, the RELA sections).
    /// </summary>
    internal static List<ulong> GotSlots(string path, string symbol)
    {
        using var file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        using var view = file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* basePtr = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
        try
        {
            var elf = new ReadOnlySpan<byte>(basePtr + view.PointerOffset, checked((int)Math.Min(view.Capacity, int.MaxValue)));
            if (elf.Length < 64 || !elf[..4].SequenceEqual("\u007fELF"u8) || elf[4] != 2 || elf[5] != 1)
                throw new InvalidDataException($"{path}: not a little-endian ELF64 file");
            ulong shoff = U64(elf, 0x28);
            int shentsize = U16(elf, 0x3A), shnum = U16(elf, 0x3C);

            var wanted = Encoding.ASCII.GetBytes(symbol);
            var result = new List<ulong>();
            for (int i = 0; i < shnum; i++)
            {
                var rela = new Section(elf, checked((int)shoff + i * shentsize));
                if (rela.Type != 4 /* SHT_RELA */) continue;
                var dynsym = new Section(elf, checked((int)shoff + rela.Link * shentsize));
                if (dynsym.Type != 11 /* SHT_DYNSYM */) continue;
                var strtab = new Section(elf, checked((int)shoff + dynsym.Link * shentsize));
                for (ulong o = 0; o + 24 <= rela.Size; o += 24)
                {
                    int at = checked((int)(rela.Offset + o));
                    ulong info = U64(elf, at + 8);
                    uint type = (uint)info, sym = (uint)(info >> 32);
                    if (type is not (6 or 7) || sym == 0) continue; // GLOB_DAT, JUMP_SLOT
                    int name = checked((int)(strtab.Offset + U32(elf, checked((int)dynsym.Offset + (int)sym * 24))));
                    var s = elf[name..];
                    if (s.Length > wanted.Length && s[..wanted.Length].SequenceEqual(wanted) && s[wanted.Length] == 0)
                        result.Add(U64(elf, at));
                }
            }
            return result;
        }
        finally { view.SafeMemoryMappedViewHandle.ReleasePointer(); }
    }

    readonly ref struct Section(ReadOnlySpan<byte> elf, int at)
    {
        public uint Type { get; } = U32(elf, at + 4);
        public ulong Offset { get; } = U64(elf, at + 0x18);
        public ulong Size { get; } = U64(elf, at + 0x20);
        public int Link { get; } = (int)U32(elf, at + 0x28);
    }

    static ushort U16(ReadOnlySpan<byte> b, int at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt16LittleEndian(b[at..]);
    static uint U32(ReadOnlySpan<byte> b, int at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(b[at..]);
    static ulong U64(ReadOnlySpan<byte> b, int at) => System.Buffers.Binary.BinaryPrimitives.ReadUInt64LittleEndian(b[at..]);

    const int PROT_READ = 1, PROT_WRITE = 2, PROT_EXEC = 4, MAP_PRIVATE = 2, MAP_ANONYMOUS = 0x20;

    [StructLayout(LayoutKind.Sequential)]
    struct Dl_info { public nint dli_fname, dli_fbase, dli_sname, dli_saddr; }

    [LibraryImport("libc", EntryPoint = "dladdr")] private static partial int dladdr(nint address, Dl_info* info);
    [LibraryImport("libc", EntryPoint = "mmap")] private static partial nint mmap(nint addr, nuint length, int prot, int flags, int fd, nint offset);
    [LibraryImport("libc", EntryPoint = "mprotect")] private static partial int mprotect(nint addr, nuint length, int prot);
}
