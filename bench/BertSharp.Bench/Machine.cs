using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;

namespace BertSharp.Bench;

/// <summary>What every benchmark reports about the machine it ran on: CPU, load, CPU time (one place for all suites).</summary>
static class Machine
{
    /// <summary>The 1/5/15-minute load averages, joined by <paramref name="separator"/> ("?" where unavailable).</summary>
    public static string LoadAverage(string separator = " ")
    {
        try { return string.Join(separator, File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "?"; }
        catch (UnauthorizedAccessException) { return "?"; }
    }

    /// <summary>The CPU model name (the process architecture where /proc/cpuinfo is unavailable).</summary>
    public static string Cpu() => CpuInfo("model name") ?? RuntimeInformation.ProcessArchitecture.ToString();

    /// <summary>Which of the vector/matrix extensions that matter for libtorch the CPU has.</summary>
    public static IEnumerable<string> CpuExtensions()
    {
        var flags = CpuInfo("flags") ?? "";
        return new[] { "avx2", "avx512f", "avx512_bf16", "amx_bf16" }.Where(f => Regex.IsMatch(flags, $@"\b{f}\b"));
    }

    /// <summary>CPU seconds this process has used (user + system, all threads).</summary>
    public static double CpuSeconds() => Process.GetCurrentProcess().TotalProcessorTime.TotalSeconds;

    static string? CpuInfo(string key)
    {
        try
        {
            var line = File.ReadLines("/proc/cpuinfo").FirstOrDefault(l => l.StartsWith(key, StringComparison.Ordinal));
            return line?.Split(':', 2)[1].Trim();
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
    }
}
