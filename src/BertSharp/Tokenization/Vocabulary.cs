namespace BertSharp.Tokenization;

/// <summary>A WordPiece vocabulary: one token per line of vocab.txt, id = line number.</summary>
public sealed class Vocabulary
{
    readonly Dictionary<string, int> _ids;
    readonly string[] _tokens;

    public Vocabulary(IReadOnlyList<string> tokens, string source = "<memory>")
    {
        if (tokens.Count == 0) throw new FormatException($"{source}: the vocabulary is empty");
        _tokens = tokens.ToArray();
        _ids = new Dictionary<string, int>(_tokens.Length, StringComparer.Ordinal);
        for (int i = 0; i < _tokens.Length; i++)
            if (!_ids.TryAdd(_tokens[i], i))
                throw new FormatException($"{source}:{i + 1}: duplicate token '{_tokens[i]}' (first seen on line {_ids[_tokens[i]] + 1})");
        Source = source;
    }

    /// <summary>Reads vocab.txt (UTF-8, one token per line; a trailing newline is allowed).</summary>
    public static Vocabulary Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"vocabulary file not found: {path}", path);
        var lines = new List<string>();
        using (var reader = new StreamReader(path, new System.Text.UTF8Encoding(false, true)))
        {
            string? line;
            try
            {
                while ((line = reader.ReadLine()) is not null) lines.Add(line.TrimEnd('\r', '\n'));
            }
            catch (System.Text.DecoderFallbackException e)
            {
                throw new FormatException($"{path}:{lines.Count + 1}: invalid UTF-8 ({e.Message})");
            }
        }
        while (lines.Count > 0 && lines[^1].Length == 0) lines.RemoveAt(lines.Count - 1);
        return new Vocabulary(lines, path);
    }

    public string Source { get; }
    public int Count => _tokens.Length;
    public IReadOnlyList<string> Tokens => _tokens;
    public bool Contains(string token) => _ids.ContainsKey(token);
    public bool TryGetId(string token, out int id) => _ids.TryGetValue(token, out id);
    public int this[string token] => _ids.TryGetValue(token, out var id) ? id : throw new KeyNotFoundException($"token '{token}' is not in the vocabulary {Source}");
    public string this[int id] => (uint)id < (uint)_tokens.Length ? _tokens[id] : throw new ArgumentOutOfRangeException(nameof(id), $"id {id} is outside the vocabulary (size {_tokens.Length})");

    /// <summary>Writes vocab.txt atomically (temp file + rename).</summary>
    public void Save(string path)
    {
        var tmp = path + ".tmp";
        File.WriteAllLines(tmp, _tokens, new System.Text.UTF8Encoding(false));
        File.Move(tmp, path, true);
    }
}
