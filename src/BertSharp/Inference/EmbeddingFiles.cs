using System.Globalization;
using System.Text;
using BertSharp.Checkpoints;
using BertSharp.Data;

namespace BertSharp.Inference;

/// <summary>Output formats of <c>bert embed</c>.</summary>
public enum EmbeddingFileFormat
{
    /// <summary>NumPy float32 [N, H], C order.</summary>
    Npy,
    /// <summary>One <c>{"index":i,"embedding":[…]}</c> object per line, floats in shortest round-trip form.</summary>
    Jsonl,
}

/// <summary>Reading the texts and writing the vectors of <c>bert embed</c>.</summary>
public static class EmbeddingFiles
{
    /// <summary>The format of an output path from its extension.</summary>
    /// <exception cref="ArgumentException">neither <c>.npy</c> nor <c>.jsonl</c>.</exception>
    public static EmbeddingFileFormat FormatOf(string path) => Path.GetExtension(path).ToLowerInvariant() switch
    {
        ".npy" => EmbeddingFileFormat.Npy,
        ".jsonl" => EmbeddingFileFormat.Jsonl,
        var ext => throw new ArgumentException(
            $"{path}: unknown output format '{(ext.Length == 0 ? "(no extension)" : ext)}' (expected .npy or .jsonl)"),
    };

    /// <summary>
    /// One text per line of a strict UTF-8 file (a BOM and CR line ends are accepted; an empty line is the empty
    /// text). Line i (0-based) is text i.
    /// </summary>
    /// <exception cref="FileNotFoundException">no such file.</exception>
    /// <exception cref="FormatException"><c>FILE:LINE: invalid UTF-8 …</c>.</exception>
    public static List<string> ReadTexts(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"input file not found: {path}", path);
        using var reader = new Utf8LineReader(path);
        var texts = new List<string>();
        while (reader.TryReadLine(out var line)) texts.Add(line);
        return texts;
    }

    /// <summary>
    /// Writes <paramref name="vectors"/> (all of length <paramref name="dimensions"/>) to <paramref name="path"/> in
    /// the format its extension names. The file is written beside the target under a temporary name and renamed
    /// into place, so the target is either the complete new file or untouched.
    /// </summary>
    public static void Write(string path, IReadOnlyList<float[]> vectors, int dimensions)
    {
        var format = FormatOf(path);
        foreach (var v in vectors)
            if (v.Length != dimensions) throw new ArgumentException($"vector of length {v.Length} among {dimensions}-dimensional vectors");
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full)!;
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{path}: output directory {dir} does not exist");
        var tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                if (format == EmbeddingFileFormat.Npy)
                {
                    var w = new NpyFloat32Writer(fs, vectors.Count, dimensions);
                    foreach (var v in vectors) w.WriteRow(v);
                    w.Finish();
                }
                else WriteJsonl(fs, vectors);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        catch
        {
            if (File.Exists(tmp)) File.Delete(tmp);
            throw;
        }
    }

    static void WriteJsonl(Stream stream, IReadOnlyList<float[]> vectors)
    {
        using var w = new StreamWriter(stream, new UTF8Encoding(false), 1 << 16, leaveOpen: true) { NewLine = "\n" };
        var sb = new StringBuilder();
        for (int i = 0; i < vectors.Count; i++)
        {
            sb.Clear().Append("{\"index\":").Append(i.ToString(CultureInfo.InvariantCulture)).Append(",\"embedding\":[");
            var v = vectors[i];
            for (int j = 0; j < v.Length; j++)
            {
                if (!float.IsFinite(v[j])) throw new InvalidDataException($"embedding {i} has a non-finite value ({v[j]}) at {j}; JSON cannot hold it");
                if (j > 0) sb.Append(',');
                sb.Append(v[j].ToString("R", CultureInfo.InvariantCulture));
            }
            sb.Append("]}");
            w.WriteLine(sb);
        }
    }
}
