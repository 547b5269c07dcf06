using System.Text;

namespace BertSharp.Data;

/// <summary>
/// Reads a file line by line as strict UTF-8 with exact 1-based line numbers in errors (a StreamReader decodes
/// ahead, so its failures cannot be pinned to a line). Strips a leading BOM and trailing <c>\r</c>.
/// Reports the bytes consumed through <c>bytesRead</c> (deltas) for progress bars.
/// </summary>
internal sealed class Utf8LineReader : IDisposable
{
    static readonly UTF8Encoding Strict = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    readonly Stream _stream;
    readonly string _path;
    readonly Action<long>? _bytesRead;
    readonly byte[] _buffer = new byte[1 << 16];
    int _start, _end;
    bool _eof;
    byte[] _line = new byte[256];
    int _lineLength;
    long _position;

    public Utf8LineReader(string path, Action<long>? bytesRead = null)
    {
        if (Directory.Exists(path))
            throw new FileNotFoundException($"corpus path {path} is a directory, expected a file; to read the *.txt files in a folder use --corpus-format dir", path);
        if (!File.Exists(path)) throw new FileNotFoundException($"corpus file not found: {path}", path);
        _path = path;
        _stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        _bytesRead = bytesRead;
    }

    public string Path => _path;

    /// <summary>1-based number of the line last returned.</summary>
    public long LineNumber { get; private set; }

    public bool TryReadLine(out string line)
    {
        _lineLength = 0;
        long consumed = 0, lineStart = _position;
        bool any = false;
        while (true)
        {
            if (_start == _end)
            {
                if (_eof || !Fill())
                {
                    if (!any) { line = ""; Report(consumed); return false; }
                    break;
                }
            }
            any = true;
            var span = _buffer.AsSpan(_start, _end - _start);
            int nl = span.IndexOf((byte)'\n');
            if (nl >= 0)
            {
                Append(span[..nl]);
                _start += nl + 1;
                consumed += nl + 1;
                break;
            }
            Append(span);
            consumed += span.Length;
            _start = _end;
        }
        LineNumber++;
        Report(consumed);
        _position += consumed;
        var bytes = _line.AsSpan(0, _lineLength);
        if (LineNumber == 1 && bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF])) { bytes = bytes[3..]; lineStart += 3; }
        if (bytes.Length > 0 && bytes[^1] == (byte)'\r') bytes = bytes[..^1];
        try
        {
            line = Strict.GetString(bytes);
        }
        catch (DecoderFallbackException e)
        {
            var at = Math.Clamp(e.Index, 0, bytes.Length - 1);
            throw Tokenization.TextFile.InvalidUtf8(_path, LineNumber, bytes[at], lineStart + at);
        }
        return true;
    }

    void Report(long n)
    {
        if (n > 0) _bytesRead?.Invoke(n);
    }

    bool Fill()
    {
        _start = 0;
        _end = _stream.Read(_buffer, 0, _buffer.Length);
        if (_end == 0) { _eof = true; return false; }
        return true;
    }

    void Append(ReadOnlySpan<byte> bytes)
    {
        if (_lineLength + bytes.Length > _line.Length)
            Array.Resize(ref _line, Math.Max(_line.Length * 2, _lineLength + bytes.Length));
        bytes.CopyTo(_line.AsSpan(_lineLength));
        _lineLength += bytes.Length;
    }

    public void Dispose() => _stream.Dispose();
}
