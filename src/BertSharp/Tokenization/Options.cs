namespace BertSharp.Tokenization;

/// <summary>Hugging Face <c>BertTokenizer</c> / <c>BertNormalizer</c> options, same names and defaults.</summary>
public sealed record BertTokenizerOptions
{
    /// <summary>HF <c>do_lower_case</c> / BertNormalizer <c>lowercase</c>.</summary>
    public bool DoLowerCase { get; init; } = true;
    /// <summary>Null = follow <see cref="DoLowerCase"/> (HF semantics).</summary>
    public bool? StripAccents { get; init; }
    /// <summary>HF <c>tokenize_chinese_chars</c> / BertNormalizer <c>handle_chinese_chars</c>.</summary>
    public bool TokenizeChineseChars { get; init; } = true;
    /// <summary>BertNormalizer <c>clean_text</c>: drop NUL, U+FFFD and control characters, map whitespace to spaces.</summary>
    public bool CleanText { get; init; } = true;
    /// <summary>
    /// Python BasicTokenizer <c>never_split</c>: a whitespace-delimited chunk equal to one of these is kept as one
    /// token (not lowercased, not split). The Rust fast tokenizer has no such option.
    /// </summary>
    public IReadOnlyCollection<string> NeverSplit { get; init; } = Array.Empty<string>();
    public int MaxInputCharsPerWord { get; init; } = 100;
    /// <summary>WordPiece <c>continuing_subword_prefix</c>.</summary>
    public string ContinuingSubwordPrefix { get; init; } = "##";
    public string UnkToken { get; init; } = "[UNK]";
    public string SepToken { get; init; } = "[SEP]";
    public string PadToken { get; init; } = "[PAD]";
    public string ClsToken { get; init; } = "[CLS]";
    public string MaskToken { get; init; } = "[MASK]";
    /// <summary>HF <c>additional_special_tokens</c>: matched verbatim in text like the five above.</summary>
    public IReadOnlyCollection<string> AdditionalSpecialTokens { get; init; } = Array.Empty<string>();

    public bool EffectiveStripAccents => StripAccents ?? DoLowerCase;
    /// <summary>All special tokens: unk, sep, pad, cls, mask, then the additional ones.</summary>
    public IEnumerable<string> SpecialTokens => new[] { UnkToken, SepToken, PadToken, ClsToken, MaskToken }.Concat(AdditionalSpecialTokens);
}

/// <summary>HF truncation strategies (the Rust fast tokenizer's semantics).</summary>
public enum TruncationStrategy { LongestFirst, OnlyFirst, OnlySecond, DoNotTruncate }

/// <summary>HF padding strategies: <c>longest</c> pads a batch to its longest row, <c>max_length</c> to <see cref="EncodeOptions.MaxLength"/>.</summary>
public enum PaddingStrategy { DoNotPad, Longest, MaxLength }

/// <summary>Per-call encoding options (HF <c>__call__</c> arguments).</summary>
public sealed record EncodeOptions
{
    public bool AddSpecialTokens { get; init; } = true;
    /// <summary>Null = no truncation (and no max_length padding).</summary>
    public int? MaxLength { get; init; }
    public TruncationStrategy Truncation { get; init; } = TruncationStrategy.LongestFirst;
    /// <summary>Tokens of overlap between overflowing windows (requires <see cref="MaxLength"/>); a non-zero stride implies <see cref="ReturnOverflowing"/>.</summary>
    public int Stride { get; init; }
    /// <summary>Keep what truncation cuts off as <see cref="BertEncoding.Overflowing"/> windows.</summary>
    public bool ReturnOverflowing { get; init; }
    public PaddingStrategy Padding { get; init; } = PaddingStrategy.DoNotPad;
    public int? PadToMultipleOf { get; init; }

    public static EncodeOptions Default { get; } = new();
}

/// <summary>One encoded input (HF <c>BatchEncoding</c> for a single example).</summary>
public sealed class BertEncoding
{
    public required string[] Tokens { get; init; }
    public required int[] InputIds { get; init; }
    public required int[] TokenTypeIds { get; init; }
    public required int[] AttentionMask { get; init; }
    public required int[] SpecialTokensMask { get; init; }
    /// <summary>[start, end) in UTF-16 code units into the original text (or pair text, see <see cref="SequenceIds"/>); (0,0) for specials and padding.</summary>
    public required (int Start, int End)[] Offsets { get; init; }
    /// <summary>Index of the word (pre-tokenized unit) each token came from, counted per sequence; null for specials/padding.</summary>
    public required int?[] WordIds { get; init; }
    /// <summary>0 = first text, 1 = pair text, null = special/padding.</summary>
    public required int?[] SequenceIds { get; init; }
    /// <summary>Overflowing windows when truncating with ReturnOverflowing/Stride (HF fast order).</summary>
    public List<BertEncoding> Overflowing { get; init; } = new();

    public int Length => InputIds.Length;

    /// <summary>
    /// <see cref="Offsets"/> converted to Unicode code points (Python string indices, what HF reports), given the
    /// texts this encoding was made from. Linear in the lengths of the texts plus the number of tokens; to convert
    /// several encodings of the same texts (overflowing windows), build each <see cref="CodePointIndex"/> once and
    /// use the other overload.
    /// </summary>
    public (int Start, int End)[] GetCodePointOffsets(string text, string? pair = null) =>
        GetCodePointOffsets(new CodePointIndex(text), pair is null ? null : new CodePointIndex(pair));

    /// <summary><see cref="Offsets"/> in code points, through prebuilt indices of the text and pair (O(log) per token).</summary>
    public (int Start, int End)[] GetCodePointOffsets(CodePointIndex text, CodePointIndex? pair = null)
    {
        ArgumentNullException.ThrowIfNull(text);
        var result = new (int, int)[Offsets.Length];
        for (int i = 0; i < Offsets.Length; i++)
        {
            var (s, e) = Offsets[i];
            if (SequenceIds[i] is not int seq) { result[i] = (s, e); continue; }
            var src = seq == 1 ? pair ?? throw new ArgumentNullException(nameof(pair), "this encoding has pair tokens") : text;
            result[i] = (src.FromUtf16(s), src.FromUtf16(e));
        }
        return result;
    }
}

/// <summary>
/// UTF-16 → code point index conversion for one string in O(log p) per lookup (p = surrogate pairs in the string),
/// built in one pass. Holds only the positions of the surrogate pairs, so text without any costs nothing extra.
/// </summary>
public sealed class CodePointIndex
{
    // UTF-16 index of the low half of every surrogate pair, ascending; empty for text without astral characters.
    readonly int[] _lowHalves;

    public CodePointIndex(string s)
    {
        ArgumentNullException.ThrowIfNull(s);
        Text = s;
        var span = s.AsSpan();
        int first = span.IndexOfAnyInRange('\uDC00', '\uDFFF');
        if (first < 0) { _lowHalves = []; return; }
        var lows = new List<int>();
        for (int i = Math.Max(first, 1); i < s.Length; i++)
            if (char.IsLowSurrogate(s[i]) && char.IsHighSurrogate(s[i - 1])) lows.Add(i);
        _lowHalves = lows.ToArray();
    }

    /// <summary>The string this index describes.</summary>
    public string Text { get; }

    /// <summary>The code point index of UTF-16 index <paramref name="utf16Index"/> (same result as <see cref="CodePoints.FromUtf16"/>).</summary>
    public int FromUtf16(int utf16Index)
    {
        if (_lowHalves.Length == 0 || utf16Index <= _lowHalves[0]) return utf16Index;
        // Number of pairs whose low half lies before utf16Index: each such pair is two code units but one code point.
        int k = Array.BinarySearch(_lowHalves, utf16Index);
        int before = k >= 0 ? k : ~k;
        return utf16Index - before;
    }
}

/// <summary>UTF-16 ↔ code point index conversion.</summary>
public static class CodePoints
{
    /// <summary>
    /// The code point index of UTF-16 index <paramref name="utf16Index"/> in <paramref name="s"/>. Scans the string
    /// up to the index: for many lookups into one string use <see cref="CodePointIndex"/>.
    /// </summary>
    public static int FromUtf16(string s, int utf16Index)
    {
        int n = utf16Index;
        for (int i = 1; i < utf16Index && i < s.Length; i++)
            if (char.IsLowSurrogate(s[i]) && char.IsHighSurrogate(s[i - 1])) n--;
        return n;
    }

    /// <summary>The UTF-16 index of code point index <paramref name="codePointIndex"/> in <paramref name="s"/>.</summary>
    public static int ToUtf16(string s, int codePointIndex)
    {
        int i = 0;
        for (int k = 0; k < codePointIndex && i < s.Length; k++)
            i += char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]) ? 2 : 1;
        return i;
    }
}
