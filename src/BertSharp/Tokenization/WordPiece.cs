namespace BertSharp.Tokenization;

/// <summary>
/// Greedy longest-match-first WordPiece (Google BERT / Hugging Face), with continuation pieces carrying a prefix
/// (<c>##</c>). Lookups are span-based: word-initial pieces in the vocabulary itself, continuation pieces in a
/// second table keyed by the text after the prefix, so no substring is ever allocated. Candidate ends start at the
/// longest vocabulary entry, which cannot change the greedy result.
/// </summary>
public sealed class WordPiece
{
    readonly Vocabulary _vocab;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _initial;
    readonly Dictionary<string, int>.AlternateLookup<ReadOnlySpan<char>> _continuation;
    readonly int _maxInitialLen, _maxContinuationLen;

    public WordPiece(Vocabulary vocab, string unkToken = "[UNK]", int maxInputCharsPerWord = 100, string continuingSubwordPrefix = "##")
    {
        _vocab = vocab;
        UnkToken = unkToken;
        UnkId = vocab.TryGetId(unkToken, out var unk) ? unk : throw new FormatException($"{vocab.Source}: the vocabulary lacks the unknown token {unkToken}");
        MaxInputCharsPerWord = maxInputCharsPerWord;
        Prefix = continuingSubwordPrefix;
        _initial = vocab.Lookup;
        var cont = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int id = 0; id < vocab.Count; id++)
        {
            var t = vocab.Tokens[id];
            if (Prefix.Length > 0 && t.Length > Prefix.Length && t.StartsWith(Prefix, StringComparison.Ordinal))
            {
                cont.TryAdd(t.Substring(Prefix.Length), id);
                _maxContinuationLen = Math.Max(_maxContinuationLen, t.Length - Prefix.Length);
            }
            _maxInitialLen = Math.Max(_maxInitialLen, t.Length);
        }
        if (Prefix.Length == 0)
        {
            _continuation = vocab.Lookup;
            _maxContinuationLen = _maxInitialLen;
        }
        else _continuation = cont.GetAlternateLookup<ReadOnlySpan<char>>();
    }

    public string UnkToken { get; }
    public int UnkId { get; }
    public int MaxInputCharsPerWord { get; }
    public string Prefix { get; }

    /// <summary>Appends the pieces of <paramref name="word"/> as (token, start, end) with UTF-16 offsets relative to the word.</summary>
    public void Tokenize(string word, List<(string Token, int Start, int End)> output)
    {
        var buf = new TokenBuffer();
        int cps = 0;
        for (int i = 0; i < word.Length; i++) if (!char.IsLowSurrogate(word[i]) || i == 0 || !char.IsHighSurrogate(word[i - 1])) cps++;
        var starts = new int[word.Length];
        var ends = new int[word.Length];
        for (int i = 0; i < word.Length; i++) { starts[i] = i; ends[i] = i + 1; }
        Tokenize(word, cps, starts, ends, 0, buf);
        for (int i = 0; i < buf.Count; i++) output.Add((_vocab[buf.Ids[i]], buf.Starts[i], buf.Ends[i]));
    }

    /// <summary>
    /// Core: the pieces of a normalized word (UTF-16 <paramref name="word"/>, <paramref name="codePoints"/> long), each
    /// mapped to original offsets through <paramref name="starts"/>/<paramref name="ends"/> (one entry per UTF-16 unit of
    /// the word), appended to <paramref name="output"/> with word index <paramref name="wordIndex"/>.
    /// </summary>
    internal void Tokenize(ReadOnlySpan<char> word, int codePoints, int[] starts, int[] ends, int wordIndex, TokenBuffer output)
    {
        int len = word.Length;
        if (codePoints > MaxInputCharsPerWord)
        {
            output.Add(UnkId, starts[0], ends[len - 1], wordIndex);
            return;
        }
        int first = output.Count;
        int s = 0;
        while (s < len)
        {
            int limit = s == 0 ? _maxInitialLen : _maxContinuationLen;
            int e = len - s > limit ? s + limit : len;
            if (e < len && char.IsLowSurrogate(word[e]) && e > s) e--;
            int id = -1;
            while (e > s)
            {
                var piece = word.Slice(s, e - s);
                if (s == 0 ? _initial.TryGetValue(piece, out id) : _continuation.TryGetValue(piece, out id)) break;
                id = -1;
                e--;
                if (e > s && char.IsLowSurrogate(word[e])) e--;
            }
            if (id < 0)
            {
                output.Count = first;
                output.Add(UnkId, starts[0], ends[len - 1], wordIndex);
                return;
            }
            output.Add(id, starts[s], ends[e - 1], wordIndex);
            s = e;
        }
    }
}

/// <summary>A growable list of (id, start, end, word) tokens, reused across calls.</summary>
internal sealed class TokenBuffer
{
    public int[] Ids = new int[64];
    public int[] Starts = new int[64];
    public int[] Ends = new int[64];
    public int[] Words = new int[64];
    public int Count;

    public void Add(int id, int start, int end, int word)
    {
        if (Count == Ids.Length) Grow();
        Ids[Count] = id;
        Starts[Count] = start;
        Ends[Count] = end;
        Words[Count] = word;
        Count++;
    }

    void Grow()
    {
        int n = Ids.Length * 2;
        Array.Resize(ref Ids, n);
        Array.Resize(ref Starts, n);
        Array.Resize(ref Ends, n);
        Array.Resize(ref Words, n);
    }

    public void Clear() => Count = 0;
}
