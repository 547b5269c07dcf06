using System.Globalization;
using System.Text;

namespace BertSharp.Tokenization;

/// <summary>
/// Character classes and normalization used by Hugging Face's BertNormalizer / BertPreTokenizer, computed without
/// ICU (the project runs with InvariantGlobalization, where <c>string.Normalize</c> is a no-op and
/// <c>ToLowerInvariant</c> leaves U+0130 alone).
/// </summary>
static partial class UnicodeTables
{
    public const byte Control = 1;     // Python unicodedata category C* (Cc, Cf, Cn, Co, Cs) minus \t \n \r
    public const byte Whitespace = 2;  // Rust char::is_whitespace (White_Space property) plus \t \n \r
    public const byte Punct = 4;       // ASCII non-alphanumeric printable, or Unicode P*
    public const byte Cjk = 8;         // CJK ideograph blocks of Google BERT's _is_chinese_char
    public const byte NonSpacingMark = 16; // Mn

    static readonly byte[] s_bmpFlags = BuildBmpFlags();
    static readonly Dictionary<int, int[]> s_decompositions = BuildDecompositions();

    static byte[] BuildBmpFlags()
    {
        var f = new byte[0x10000];
        for (int cp = 0; cp < f.Length; cp++) f[cp] = ComputeFlags(cp);
        return f;
    }

    static Dictionary<int, int[]> BuildDecompositions()
    {
        var data = DecompositionData;
        var d = new Dictionary<int, int[]>(2100);
        for (int i = 0; i < data.Length;)
        {
            int cp = data[i], n = data[i + 1];
            d[cp] = data.Slice(i + 2, n).ToArray();
            i += 2 + n;
        }
        return d;
    }

    public static byte Flags(int cp) => (uint)cp < 0x10000u ? s_bmpFlags[cp] : ComputeFlags(cp);

    static byte ComputeFlags(int cp)
    {
        byte f = 0;
        var cat = cp is >= 0xD800 and <= 0xDFFF ? UnicodeCategory.Surrogate : CharUnicodeInfo.GetUnicodeCategory(cp);
        if (cp != '\t' && cp != '\n' && cp != '\r' &&
            cat is UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.OtherNotAssigned
                or UnicodeCategory.PrivateUse or UnicodeCategory.Surrogate)
            f |= Control;
        if (IsRustWhitespace(cp)) f |= Whitespace;
        if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126) ||
            cat is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
                or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation
                or UnicodeCategory.FinalQuotePunctuation or UnicodeCategory.OtherPunctuation)
            f |= Punct;
        if (IsChinese(cp)) f |= Cjk;
        if (cat == UnicodeCategory.NonSpacingMark) f |= NonSpacingMark;
        return f;
    }

    /// <summary>The White_Space property (what Rust's <c>char::is_whitespace</c> tests).</summary>
    public static bool IsRustWhitespace(int cp) =>
        cp is (>= 0x09 and <= 0x0D) or 0x20 or 0x85 or 0xA0 or 0x1680 or (>= 0x2000 and <= 0x200A)
            or 0x2028 or 0x2029 or 0x202F or 0x205F or 0x3000;

    /// <summary>The CJK Unified Ideographs blocks that BERT treats as "Chinese characters".</summary>
    public static bool IsChinese(int cp) =>
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
        (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
        (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);

    /// <summary>Appends the full canonical decomposition (NFD) of <paramref name="cp"/> to <paramref name="output"/>.</summary>
    public static void Decompose(int cp, List<int> output)
    {
        const int SBase = 0xAC00, LBase = 0x1100, VBase = 0x1161, TBase = 0x11A7, VCount = 21, TCount = 28, SCount = 11172;
        int s = cp - SBase;
        if ((uint)s < SCount)
        {
            output.Add(LBase + s / (VCount * TCount));
            output.Add(VBase + s % (VCount * TCount) / TCount);
            if (s % TCount != 0) output.Add(TBase + s % TCount);
            return;
        }
        if (s_decompositions.TryGetValue(cp, out var d)) output.AddRange(d);
        else output.Add(cp);
    }

    /// <summary>
    /// Python/Rust full lowercase of one code point: the simple mapping, except U+0130 → "i\u0307"
    /// (the only unconditional multi-character lowercase mapping in SpecialCasing.txt).
    /// </summary>
    public static void Lower(int cp, List<int> output)
    {
        if (cp == 0x130) { output.Add('i'); output.Add(0x307); return; }
        output.Add(cp < 0x10000 ? char.ToLowerInvariant((char)cp) : Rune.ToLowerInvariant(new Rune(cp)).Value);
    }

    /// <summary>
    /// BertNormalizer on one (non-control, non-whitespace) code point, in Rust's order: strip accents (NFD, drop Mn),
    /// then lowercase. Returns the resulting UTF-16 text.
    /// </summary>
    public static string Normalize(int cp, bool lowercase, bool stripAccents)
    {
        var a = new List<int>(4);
        if (stripAccents)
        {
            var d = new List<int>(4);
            Decompose(cp, d);
            foreach (var x in d)
                if ((Flags(x) & NonSpacingMark) == 0) a.Add(x);
        }
        else a.Add(cp);
        List<int> b = a;
        if (lowercase)
        {
            b = new List<int>(a.Count + 1);
            foreach (var x in a) Lower(x, b);
        }
        var sb = new StringBuilder(b.Count);
        foreach (var x in b) sb.Append(char.ConvertFromUtf32(x));
        return sb.ToString();
    }

    static readonly string?[]?[] s_maps = new string?[]?[4];

    /// <summary>
    /// For every BMP character, its normalized form under the given mode, or null when it maps to itself.
    /// Built lazily once per mode (lowercase × strip accents).
    /// </summary>
    public static string?[]? BmpMap(bool lowercase, bool stripAccents)
    {
        int mode = (lowercase ? 1 : 0) | (stripAccents ? 2 : 0);
        if (mode == 0) return null;
        var map = Volatile.Read(ref s_maps[mode]);
        if (map is not null) return map;
        map = new string?[0x10000];
        for (int cp = 0x80; cp < 0x10000; cp++)
        {
            if (cp is >= 0xD800 and <= 0xDFFF) continue;
            var s = Normalize(cp, lowercase, stripAccents);
            if (s.Length != 1 || s[0] != cp) map[cp] = s;
        }
        Interlocked.CompareExchange(ref s_maps[mode], map, null);
        return s_maps[mode];
    }
}
