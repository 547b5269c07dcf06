using System.Diagnostics;
using System.Globalization;
using System.Text.RegularExpressions;

namespace BertSharp.Training;

/// <summary>
/// Cleans up after a killed run. A checkpoint is written as <c>.tmp-checkpoint-N-PID/</c> and renamed when complete;
/// re-saving a step moves the old copy to <c>checkpoint-N.old-PID/</c> for a moment. A <c>kill -9</c> between those
/// steps leaves the temporary behind (tens of MB each). <see cref="Remove"/> deletes the temporaries whose owner is gone:
/// the PID in the name is not running, is not a BertSharp process, or started after the temporary was last written
/// (a reused PID). A leftover <c>checkpoint-N.old-PID/</c> whose <c>checkpoint-N/</c> never appeared is a complete
/// checkpoint and is renamed back instead of deleted. Temporaries of live runs (this one included) are left alone.
/// </summary>
public static partial class StaleTemporaries
{
    [GeneratedRegex(@"^\.tmp-checkpoint-\d+-(?<pid>\d+)$", RegexOptions.CultureInvariant)]
    private static partial Regex TempName();

    [GeneratedRegex(@"^(?<final>checkpoint-\d+)\.old-(?<pid>\d+)$", RegexOptions.CultureInvariant)]
    private static partial Regex OldName();

    /// <summary>
    /// Removes stale checkpoint temporaries directly under <paramref name="outputDir"/> (a missing folder is fine) and
    /// returns the paths removed or restored. Never throws for a folder it cannot delete (it is reported next time).
    /// </summary>
    public static IReadOnlyList<string> Remove(string outputDir)
    {
        var done = new List<string>();
        if (!Directory.Exists(outputDir)) return done;
        foreach (var dir in Directory.EnumerateDirectories(outputDir))
        {
            var name = Path.GetFileName(dir);
            var temp = TempName().Match(name);
            var old = temp.Success ? Match.Empty : OldName().Match(name);
            if (!temp.Success && !old.Success) continue;
            var m = temp.Success ? temp : old;
            if (!int.TryParse(m.Groups["pid"].ValueSpan, NumberStyles.None, CultureInfo.InvariantCulture, out int pid)) continue;
            if (OwnerIsAlive(pid, Directory.GetLastWriteTimeUtc(dir))) continue;
            try
            {
                var final = old.Success ? Path.Combine(outputDir, old.Groups["final"].Value) : null;
                if (final is not null && !Directory.Exists(final)) Directory.Move(dir, final);  // the only copy of that step
                else Directory.Delete(dir, recursive: true);
                done.Add(dir);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return done;
    }

    /// <summary>
    /// True when process <paramref name="pid"/> may still be writing a temporary last modified at
    /// <paramref name="writtenUtc"/>: it is this process, or it runs, is a BertSharp process (its command line names
    /// bert or BertSharp) and started before the write. When the platform does not say, it is assumed alive.
    /// </summary>
    internal static bool OwnerIsAlive(int pid, DateTime writtenUtc)
    {
        if (pid == Environment.ProcessId) return true;
        if (pid <= 0) return false;
        Process p;
        try { p = Process.GetProcessById(pid); }
        catch (ArgumentException) { return false; }   // not running
        using (p)
        {
            try
            {
                if (p.HasExited) return false;
                // The owner created the temporary after it started; a process younger than the last write reuses the PID.
                if (p.StartTime.ToUniversalTime() > writtenUtc.AddSeconds(2)) return false;
            }
            catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException) { return true; }
            var command = CommandLine(pid, p);
            return command is null || command.Contains("bert", StringComparison.OrdinalIgnoreCase);
        }
    }

    // The process's command line (Linux: /proc/PID/cmdline, which names bert.dll or the bert tool even under `dotnet`),
    // else its executable path; null when unknown.
    static string? CommandLine(int pid, Process p)
    {
        try
        {
            var proc = $"/proc/{pid}/cmdline";
            if (File.Exists(proc)) return File.ReadAllText(proc).Replace('\0', ' ');
        }
        catch (IOException) { return null; }
        catch (UnauthorizedAccessException) { return null; }
        try { return p.MainModule?.FileName ?? p.ProcessName; }
        catch (Exception e) when (e is InvalidOperationException or System.ComponentModel.Win32Exception or NotSupportedException) { return null; }
    }
}
