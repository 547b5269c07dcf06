using System.Runtime.CompilerServices;

namespace BertSharp.Tokenization;

/// <summary>A pre-tokenized word: its normalized text and its [Start, End) span in the original string (UTF-16).</summary>
public readonly record struct Word(string Text, int Start, int End);

/// <summary>Receives the words of one text from <see cref="BasicTokenizer"/>'s single pass.</summary>
internal interface IWordSink
{
    /// <summary>A normalized word; <paramref name="starts"/>/<paramref name="ends"/> give each UTF-16 unit's original span.</summary>
    void Word(ReadOnlySpan<char> chars, int codePoints, int[] starts, int[] ends);
    /// <summary>A span of the original text kept whole (a special token, or a never_split chunk).</summary>
    void Whole(string token, int id, int start, int end);
}

/// <summary>Reusable buffer for the word being built.</summary>
internal sealed class WordScratch
{
    public char[] Chars = new char[128];
    public int[] Starts = new int[128];
    public int[] Ends = new int[128];
    public int Len, CodePoints;

    [MethodImpl(MethodImplOptions.NoInlining)]
    public void Grow()
    {
        int n = Chars.Length * 2;
        Array.Resize(ref Chars, n);
        Array.Resize(ref Starts, n);
        Array.Resize(ref Ends, n);
    }
}

/// <summary>
/// Hugging Face's BertNormalizer + BertPreTokenizer (the Rust "fast" pipeline, which agrees with Python's
/// BasicTokenizer): drop NUL/U+FFFD/control characters and map whitespace to spaces (clean_text), put spaces around
/// CJK ideographs, strip accents (NFD, drop Mn) then lowercase (full Unicode lowercase, so 'İ' → "i̇"), split on
/// whitespace and isolate every punctuation character. One pass over the string; every normalized character keeps
/// the UTF-16 span of the original character it came from.
/// </summary>
public sealed class BasicTokenizer
{
    const byte Keep = 0, Space = 1, Punct = 2, Drop = 3;

    readonly bool _lower, _strip, _clean, _chinese;
    readonly string?[]? _map;
    readonly byte[] _ascii = new byte[128];
    readonly char[] _asciiMap = new char[128];
    readonly HashSet<string>? _neverSplit;
    readonly HashSet<string>.AlternateLookup<ReadOnlySpan<char>> _neverSplitLookup;
    // Special tokens matched in the raw text (longest first); set by BertTokenizer.
    string[] _specials = [];
    int[] _specialIds = [];
    readonly bool[] _asciiSpecialStart = new bool[128];
    HashSet<char>? _otherSpecialStarts;
    Func<string, int>? _resolveWhole;

    public BasicTokenizer(BertTokenizerOptions options)
    {
        Options = options;
        _lower = options.DoLowerCase;
        _strip = options.EffectiveStripAccents;
        _clean = options.CleanText;
        _chinese = options.TokenizeChineseChars;
        _map = UnicodeTables.BmpMap(_lower, _strip);
        for (int c = 0; c < 128; c++)
        {
            byte f = UnicodeTables.Flags(c);
            _asciiMap[c] = _lower && c is >= 'A' and <= 'Z' ? (char)(c + 32) : (char)c;
            if (_clean && (c == 0 || (f & UnicodeTables.Control) != 0)) _ascii[c] = Drop;
            else if ((f & UnicodeTables.Whitespace) != 0) _ascii[c] = Space;
            else if ((f & UnicodeTables.Punct) != 0) _ascii[c] = Punct;
            else _ascii[c] = Keep;
        }
        if (options.NeverSplit.Count > 0)
        {
            _neverSplit = new HashSet<string>(options.NeverSplit, StringComparer.Ordinal);
            _neverSplitLookup = _neverSplit.GetAlternateLookup<ReadOnlySpan<char>>();
        }
    }

    public BertTokenizerOptions Options { get; }

    /// <summary>Declares the tokens matched verbatim in the raw text (HF added/special tokens), with their ids.</summary>
    internal void SetSpecialTokens(IReadOnlyList<(string Token, int Id)> specials, Func<string, int> resolveWhole)
    {
        var sorted = specials.Where(s => s.Token.Length > 0).OrderByDescending(s => s.Token.Length).ThenBy(s => s.Token, StringComparer.Ordinal).ToArray();
        _specials = sorted.Select(s => s.Token).ToArray();
        _specialIds = sorted.Select(s => s.Id).ToArray();
        Array.Clear(_asciiSpecialStart);
        _otherSpecialStarts = null;
        foreach (var s in _specials)
        {
            if (s[0] < 128) _asciiSpecialStart[s[0]] = true;
            else (_otherSpecialStarts ??= new HashSet<char>()).Add(s[0]);
        }
        _resolveWhole = resolveWhole;
    }

    /// <summary>Splits <paramref name="text"/> into normalized words with offsets into the original text.</summary>
    /// <remarks>Special tokens are not matched here (this is the pre-tokenizer alone); <c>never_split</c> chunks are kept whole.</remarks>
    public List<Word> Split(string text)
    {
        var sink = new WordListSink { Words = new List<Word>() };
        Run(text, ref sink, new WordScratch(), matchSpecials: false);
        return sink.Words;
    }

    struct WordListSink : IWordSink
    {
        public List<Word> Words;
        public readonly void Word(ReadOnlySpan<char> chars, int codePoints, int[] starts, int[] ends) =>
            Words.Add(new Word(new string(chars), starts[0], ends[chars.Length - 1]));
        public readonly void Whole(string token, int id, int start, int end) => Words.Add(new Word(token, start, end));
    }

    /// <summary>The single pass: normalizes and splits <paramref name="text"/>, reporting words to <paramref name="sink"/>.</summary>
    internal void Run<TSink>(string text, ref TSink sink, WordScratch w, bool matchSpecials = true) where TSink : struct, IWordSink
    {
        w.Len = 0;
        w.CodePoints = 0;
        var ascii = _ascii;
        var amap = _asciiMap;
        bool specials = matchSpecials && _specials.Length > 0;
        bool chunkStart = true;
        int n = text.Length;
        int i = 0;
        while (i < n)
        {
            char c = text[i];
            if (specials && (c < 128 ? _asciiSpecialStart[c] : _otherSpecialStarts?.Contains(c) == true) && TryMatchSpecial(text, i, out int sIdx))
            {
                Flush(ref sink, w);
                int len = _specials[sIdx].Length;
                sink.Whole(_specials[sIdx], _specialIds[sIdx], i, i + len);
                i += len;
                chunkStart = false;
                continue;
            }
            if (chunkStart && _neverSplit is not null && TryNeverSplit(text, i, ref sink, w, out int consumed))
            {
                i += consumed;
                chunkStart = false;
                continue;
            }
            if (c < 128)
            {
                switch (ascii[c])
                {
                    case Keep:
                        if (w.Len == w.Chars.Length) w.Grow();
                        w.Chars[w.Len] = amap[c];
                        w.Starts[w.Len] = i;
                        w.Ends[w.Len] = i + 1;
                        w.Len++;
                        w.CodePoints++;
                        chunkStart = false;
                        break;
                    case Space:
                        if (w.Len > 0) Flush(ref sink, w);
                        chunkStart = true;
                        break;
                    case Punct:
                        if (w.Len > 0) Flush(ref sink, w);
                        Append(w, c, i, i + 1, true);
                        Flush(ref sink, w);
                        chunkStart = false;
                        break;
                }
                i++;
                continue;
            }
            i = NonAscii(text, i, ref sink, w);
            chunkStart = i < 0;
            if (i < 0) i = -i;
        }
        Flush(ref sink, w);
    }

    /// <summary>One non-ASCII code point at <paramref name="i"/>; returns the next index, negated when it was whitespace.</summary>
    int NonAscii<TSink>(string text, int i, ref TSink sink, WordScratch w) where TSink : struct, IWordSink
    {
        char c = text[i];
        int cp = c, width = 1;
        if (char.IsHighSurrogate(c) && i + 1 < text.Length && char.IsLowSurrogate(text[i + 1]))
        {
            cp = char.ConvertToUtf32(c, text[i + 1]);
            width = 2;
        }
        byte f = UnicodeTables.Flags(cp); // a lone surrogate is category Cs, i.e. a control character
        if (_clean && ((f & UnicodeTables.Control) != 0 || cp == 0xFFFD)) return i + width;
        if ((f & UnicodeTables.Whitespace) != 0)
        {
            Flush(ref sink, w);
            return -(i + width);
        }
        bool cjk = _chinese && (f & UnicodeTables.Cjk) != 0;
        if (cjk) Flush(ref sink, w);
        ReadOnlySpan<char> norm;
        if (width == 1)
        {
            var m = _map?[c];
            norm = m is null ? text.AsSpan(i, 1) : m.AsSpan();
        }
        else norm = _lower || _strip ? UnicodeTables.Normalize(cp, _lower, _strip).AsSpan() : text.AsSpan(i, 2);
        for (int k = 0; k < norm.Length;)
        {
            int ncp = norm[k], nw = 1;
            if (char.IsHighSurrogate(norm[k]) && k + 1 < norm.Length && char.IsLowSurrogate(norm[k + 1]))
            {
                ncp = char.ConvertToUtf32(norm[k], norm[k + 1]);
                nw = 2;
            }
            bool punct = (UnicodeTables.Flags(ncp) & UnicodeTables.Punct) != 0;
            if (punct) Flush(ref sink, w);
            Append(w, norm[k], i, i + width, true);
            if (nw == 2) Append(w, norm[k + 1], i, i + width, false);
            if (punct) Flush(ref sink, w);
            k += nw;
        }
        if (cjk) Flush(ref sink, w);
        return i + width;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Append(WordScratch w, char ch, int start, int end, bool newCodePoint)
    {
        if (w.Len == w.Chars.Length) w.Grow();
        w.Chars[w.Len] = ch;
        w.Starts[w.Len] = start;
        w.Ends[w.Len] = end;
        w.Len++;
        if (newCodePoint) w.CodePoints++;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    static void Flush<TSink>(ref TSink sink, WordScratch w) where TSink : struct, IWordSink
    {
        if (w.Len == 0) return;
        sink.Word(w.Chars.AsSpan(0, w.Len), w.CodePoints, w.Starts, w.Ends);
        w.Len = 0;
        w.CodePoints = 0;
    }

    bool TryMatchSpecial(string text, int i, out int index)
    {
        var rest = text.AsSpan(i);
        for (int k = 0; k < _specials.Length; k++)
            if (rest.StartsWith(_specials[k], StringComparison.Ordinal)) { index = k; return true; }
        index = -1;
        return false;
    }

    /// <summary>
    /// Python BasicTokenizer semantics for never_split: a whitespace-delimited chunk equal to a never_split token is
    /// kept whole (neither lowercased nor split).
    /// </summary>
    bool TryNeverSplit<TSink>(string text, int i, ref TSink sink, WordScratch w, out int consumed) where TSink : struct, IWordSink
    {
        int end = i;
        while (end < text.Length)
        {
            int cp = text[end];
            if (char.IsHighSurrogate(text[end]) && end + 1 < text.Length && char.IsLowSurrogate(text[end + 1])) cp = char.ConvertToUtf32(text[end], text[end + 1]);
            if ((UnicodeTables.Flags(cp) & UnicodeTables.Whitespace) != 0) break;
            end += cp > 0xFFFF ? 2 : 1;
        }
        consumed = end - i;
        if (consumed == 0 || !_neverSplitLookup.TryGetValue(text.AsSpan(i, consumed), out var token)) return false;
        Flush(ref sink, w);
        sink.Whole(token, _resolveWhole?.Invoke(token) ?? -1, i, end);
        return true;
    }

    /// <summary>True for whitespace as BERT treats it (\t, \n, \r, or the Unicode White_Space property).</summary>
    public static bool IsWhitespace(int cp) => (UnicodeTables.Flags(cp) & UnicodeTables.Whitespace) != 0;

    /// <summary>True for characters that clean_text removes (Unicode C* categories except \t \n \r).</summary>
    public static bool IsControl(int cp) => (UnicodeTables.Flags(cp) & UnicodeTables.Control) != 0;

    /// <summary>HF: every ASCII non-letter/digit/space printable character, plus Unicode P* categories.</summary>
    public static bool IsPunctuation(int cp) => (UnicodeTables.Flags(cp) & UnicodeTables.Punct) != 0;

    /// <summary>The CJK Unified Ideographs blocks HF treats as "Chinese characters".</summary>
    public static bool IsChinese(int cp) => UnicodeTables.IsChinese(cp);
}
