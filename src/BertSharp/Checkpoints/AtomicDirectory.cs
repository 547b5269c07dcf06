namespace BertSharp.Checkpoints;

/// <summary>
/// Writes a directory all-or-nothing: the content goes to a temporary sibling (<c>.tmp-NAME-PID</c>; the PID lets <see cref="Training.StaleTemporaries"/> remove those of killed runs) that is renamed
/// into place when complete, replacing an existing directory of that name. A crash never leaves half a directory.
/// The one implementation behind <see cref="Inference.ModelDirectory.Save"/> and training checkpoints.
/// </summary>
public static class AtomicDirectory
{
    /// <summary>Calls <paramref name="write"/> with a fresh temporary folder, then renames it to <paramref name="dir"/>.
    /// Returns the full path of <paramref name="dir"/>.</summary>
    public static string Write(string dir, Action<string> write)
    {
        var full = Path.GetFullPath(dir).TrimEnd(Path.DirectorySeparatorChar);
        var parent = Path.GetDirectoryName(full)!;
        var name = Path.GetFileName(full);
        Directory.CreateDirectory(parent);
        var tmp = Path.Combine(parent, $".tmp-{name}-{Environment.ProcessId}");
        TryDelete(tmp); // this process's own earlier, failed attempt
        Directory.CreateDirectory(tmp);
        try
        {
            write(tmp);
        }
        catch
        {
            TryDelete(tmp);
            throw;
        }
        if (Directory.Exists(full))
        {
            // Same directory written twice (e.g. Ctrl-C right after a periodic checkpoint): replace it.
            var old = Path.Combine(parent, $"{name}.old-{Environment.ProcessId}");
            Directory.Move(full, old);
            Directory.Move(tmp, full);
            TryDelete(old);
        }
        else Directory.Move(tmp, full);
        return full;
    }

    /// <summary>Deletes a directory tree, ignoring I/O and permission errors (best-effort clean-up).</summary>
    public static void TryDelete(string dir)
    {
        try { if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true); }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
    }
}
