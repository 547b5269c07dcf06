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
    readonly VocabTable _initial, _continuation;
    readonly int _maxInitialLen, _maxContinuationLen;

    public WordPiece(Vocabulary vocab, string unkToken = "[UNK]", int maxInputCharsPerWord = 100, string continuingSubwordPrefix = "##")
    {
        _vocab = vocab;
        UnkToken = unkToken;
        UnkId = vocab.TryGetId(unkToken, out var unk) ? unk : throw new FormatException($"{vocab.Source}: the vocabulary lacks the unknown token {unkToken}");
        MaxInputCharsPerWord = maxInputCharsPerWord;
        Prefix = continuingSubwordPrefix;
        var initial = new List<(string, int)>(vocab.Count);
        var cont = new List<(string, int)>();
        for (int id = 0; id < vocab.Count; id++)
        {
            var t = vocab.Tokens[id];
            initial.Add((t, id));
            _maxInitialLen = Math.Max(_maxInitialLen, t.Length);
            if (Prefix.Length > 0 && t.Length > Prefix.Length && t.StartsWith(Prefix, StringComparison.Ordinal))
            {
                cont.Add((t.Substring(Prefix.Length), id));
                _maxContinuationLen = Math.Max(_maxContinuationLen, t.Length - Prefix.Length);
            }
        }
        _initial = new VocabTable(initial);
        if (Prefix.Length == 0)
        {
            _continuation = _initial;
            _maxContinuationLen = _maxInitialLen;
        }
        else _continuation = new VocabTable(cont);
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

    [ThreadStatic] static TokenBuffer? t_buffer;
    [ThreadStatic] static int[]? t_identityStarts, t_identityEnds;

    /// <summary>Appends the ids of the pieces of one already-normalized <paramref name="word"/> to <paramref name="ids"/> (allocation-free).</summary>
    public void TokenizeToIds(ReadOnlySpan<char> word, List<int> ids)
    {
        if (word.IsEmpty) return;
        var buf = t_buffer ??= new TokenBuffer();
        if (t_identityStarts is null || t_identityStarts.Length < word.Length)
        {
            int n = Math.Max(word.Length, 256);
            t_identityStarts = new int[n];
            t_identityEnds = new int[n];
            for (int i = 0; i < n; i++) { t_identityStarts[i] = i; t_identityEnds![i] = i + 1; }
        }
        int cps = word.Length;
        for (int i = 1; i < word.Length; i++) if (char.IsLowSurrogate(word[i]) && char.IsHighSurrogate(word[i - 1])) cps--;
        buf.Clear();
        Tokenize(word, cps, t_identityStarts, t_identityEnds!, 0, buf);
        for (int i = 0; i < buf.Count; i++) ids.Add(buf.Ids[i]);
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
        Span<uint> prefixHash = len <= 256 ? stackalloc uint[len + 1] : new uint[len + 1];
        int s = 0;
        while (s < len)
        {
            int limit = s == 0 ? _maxInitialLen : _maxContinuationLen;
            int e = len - s > limit ? s + limit : len;
            if (e < len && char.IsLowSurrogate(word[e]) && e > s) e--;
            // Hashes of word[s..k) for every k up to e, in one pass.
            uint h = 0;
            for (int k = s; k < e; k++) prefixHash[k + 1] = h = VocabTable.Step(h, word[k]);
            var table = s == 0 ? _initial : _continuation;
            int id = -1;
            while (e > s)
            {
                if (table.TryGet(word.Slice(s, e - s), prefixHash[e], out id)) break;
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
