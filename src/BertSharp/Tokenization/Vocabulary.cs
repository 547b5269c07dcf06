namespace BertSharp.Tokenization;

/// <summary>A WordPiece vocabulary: one token per line of vocab.txt, id = line number (0-based).</summary>
public sealed class Vocabulary
{
    readonly Dictionary<string, int> _ids;
    readonly string[] _tokens;

    /// <param name="tokens">Tokens in id order.</param>
    /// <param name="source">Where they came from (used in error messages; a file path gives <c>file:line</c>).</param>
    /// <exception cref="FormatException">the list is empty or holds a token twice.</exception>
    public Vocabulary(IReadOnlyList<string> tokens, string source = "<memory>")
    {
        if (tokens.Count == 0) throw new FormatException($"{source}: the vocabulary is empty");
        _tokens = tokens.ToArray();
        _ids = new Dictionary<string, int>(_tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < _tokens.Length; i++)
            if (!_ids.TryAdd(_tokens[i], i))
                throw new FormatException($"{source}:{i + 1}: duplicate token '{_tokens[i]}' (first seen on line {_ids[_tokens[i]] + 1})");
        Source = source;
        Lookup = _ids.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    /// <summary>
    /// Reads vocab.txt: strict UTF-8, one token per line (\n, \r\n or \r), as Hugging Face's <c>load_vocab</c>
    /// (no trimming other than the line break). Trailing empty lines are ignored.
    /// </summary>
    /// <exception cref="FileNotFoundException">the file does not exist.</exception>
    /// <exception cref="FormatException">invalid UTF-8, an empty vocabulary or a duplicate token (with <c>file:line</c>).</exception>
    public static Vocabulary Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"vocabulary file not found: {path}", path);
        var lines = TextFile.ReadLines(path);
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return new Vocabulary(lines, path);
    }

    public string Source { get; }
    public int Count => _tokens.Length;
    public IReadOnlyList<string> Tokens => _tokens;
    public bool Contains(string token) => _ids.ContainsKey(token);
    public bool TryGetId(string token, out int id) => _ids.TryGetValue(token, out id);
    /// <summary>Allocation-free lookup by span.</summary>
    public bool TryGetId(ReadOnlySpan<char> token, out int id) => Lookup.TryGetValue(token, out id);
    public int this[string token] => _ids.TryGetValue(token, out var id) ? id : throw new KeyNotFoundException($"token '{token}' is not in the vocabulary {Source}");
    public string this[int id] => (uint)id < (uint)_tokens.Length ? _tokens[id] : throw new ArgumentOutOfRangeException(nameof(id), $"id {id} is outside the vocabulary (size {_tokens.Length})");

    internal Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> Lookup { get; }

    /// <summary>Writes vocab.txt atomically (temp file + rename), one token per line with \n.</summary>
    public void Save(string path)
    {
        var tmp = path + ".tmp";
        using (var w = new StreamWriter(tmp, false, new System.Text.UTF8Encoding(false)))
        {
            w.NewLine = "\n";
            foreach (var t in _tokens) w.WriteLine(t);
        }
        File.Move(tmp, path, true);
    }
}
