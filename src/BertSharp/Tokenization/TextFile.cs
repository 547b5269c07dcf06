using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace BertSharp.Tokenization;

/// <summary>Strict UTF-8 text files: invalid bytes are reported as <c>file:line</c> instead of being replaced.</summary>
public static class TextFile
{
    /// <summary>
    /// Reads <paramref name="path"/> as UTF-8 (an optional BOM is skipped) and splits it into lines on \n, \r\n and \r
    /// (Python's universal newlines). A final newline does not start an extra line.
    /// </summary>
    /// <exception cref="FileNotFoundException">the file does not exist.</exception>
    /// <exception cref="FormatException">the file is not valid UTF-8 (the message names the line and byte offset).</exception>
    public static List<string> ReadLines(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"file not found: {path}", path);
        var text = ReadAllText(path);
        var lines = new List<string>();
        int start = 0;
        for (int i = 0; i < text.Length; i++)
        {
            char c = text[i];
            if (c != '\n' && c != '\r') continue;
            lines.Add(text.Substring(start, i - start));
            if (c == '\r' && i + 1 < text.Length && text[i + 1] == '\n') i++;
            start = i + 1;
        }
        if (start < text.Length) lines.Add(text.Substring(start));
        return lines;
    }

    /// <summary>Reads a whole file as strict UTF-8 (BOM skipped).</summary>
    public static string ReadAllText(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"file not found: {path}", path);
        var bytes = File.ReadAllBytes(path);
        ReadOnlySpan<byte> span = bytes;
        if (span.StartsWith("\uFEFF"u8)) span = span[3..];
        var chars = new char[span.Length];
        var status = Utf8.ToUtf16(span, chars, out int read, out int written, replaceInvalidSequences: false);
        if (status != OperationStatus.Done)
        {
            int line = 1 + span[..read].Count((byte)'\n');
            throw InvalidUtf8(path, line, span[read], read + (bytes.Length - span.Length));
        }
        return new string(chars, 0, written);
    }

    /// <summary>The one invalid-UTF-8 error of every reader: <c>FILE:LINE: invalid UTF-8 (byte 0xC6 at offset N)</c>,
    /// <paramref name="offset"/> counted in bytes from the start of the file.</summary>
    public static FormatException InvalidUtf8(string path, long line, byte value, long offset) =>
        new($"{path}:{line}: invalid UTF-8 (byte 0x{value:X2} at offset {offset})");
}
