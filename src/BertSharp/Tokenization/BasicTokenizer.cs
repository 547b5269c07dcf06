using System.Globalization;
using System.Text;

namespace BertSharp.Tokenization;

/// <summary>A pre-tokenized word: its normalized text and its [Start, End) span in the original string (UTF-16).</summary>
public readonly record struct Word(string Text, int Start, int End);

/// <summary>
/// Hugging Face's BasicTokenizer (BertNormalizer + BertPreTokenizer): clean text, space around CJK ideographs,
/// lowercase and/or strip accents (NFD, drop Mn), split on whitespace and punctuation. Tracks original offsets.
/// </summary>
public sealed class BasicTokenizer
{
    readonly BertTokenizerOptions _o;

    public BasicTokenizer(BertTokenizerOptions options) => _o = options;

    /// <summary>Splits <paramref name="text"/> into normalized words with offsets into the original text.</summary>
    public List<Word> Split(string text)
    {
        var words = new List<Word>();
        var cur = new StringBuilder();
        int curStart = -1, curEnd = -1;

        void Flush()
        {
            if (cur.Length > 0) words.Add(new Word(cur.ToString(), curStart, curEnd));
            cur.Clear();
            curStart = -1;
        }

        for (int i = 0; i < text.Length;)
        {
            int cp = CodePoints.At(text, i, out int width);
            int start = i, end = i + width;
            i = end;
            if (cp == 0 || cp == 0xFFFD || (IsControl(cp))) continue;
            if (IsWhitespace(cp)) { Flush(); continue; }
            if (_o.TokenizeChineseChars && IsChinese(cp))
            {
                Flush();
                words.Add(new Word(char.ConvertFromUtf32(cp), start, end));
                continue;
            }
            string piece = Normalize(cp);
            if (piece.Length == 0) continue;
            if (IsPunctuation(cp))
            {
                Flush();
                words.Add(new Word(piece, start, end));
                continue;
            }
            if (curStart < 0) curStart = start;
            cur.Append(piece);
            curEnd = end;
        }
        Flush();
        return words;
    }

    string Normalize(int cp)
    {
        string s = char.ConvertFromUtf32(cp);
        if (_o.DoLowerCase) s = s.ToLowerInvariant();
        if (_o.EffectiveStripAccents)
        {
            var nfd = s.Normalize(NormalizationForm.FormD);
            var sb = new StringBuilder(nfd.Length);
            foreach (var c in nfd)
                if (CharUnicodeInfo.GetUnicodeCategory(c) != UnicodeCategory.NonSpacingMark) sb.Append(c);
            s = sb.ToString();
        }
        return s;
    }

    public static bool IsWhitespace(int cp) =>
        cp == ' ' || cp == '\t' || cp == '\n' || cp == '\r' ||
        CharUnicodeInfo.GetUnicodeCategory(cp) == UnicodeCategory.SpaceSeparator;

    public static bool IsControl(int cp)
    {
        if (cp == '\t' || cp == '\n' || cp == '\r') return false;
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat is UnicodeCategory.Control or UnicodeCategory.Format;
    }

    /// <summary>HF: every ASCII non-letter/digit/space printable character, plus Unicode P* categories.</summary>
    public static bool IsPunctuation(int cp)
    {
        if ((cp >= 33 && cp <= 47) || (cp >= 58 && cp <= 64) || (cp >= 91 && cp <= 96) || (cp >= 123 && cp <= 126)) return true;
        var cat = CharUnicodeInfo.GetUnicodeCategory(cp);
        return cat is UnicodeCategory.ConnectorPunctuation or UnicodeCategory.DashPunctuation or UnicodeCategory.OpenPunctuation
            or UnicodeCategory.ClosePunctuation or UnicodeCategory.InitialQuotePunctuation or UnicodeCategory.FinalQuotePunctuation
            or UnicodeCategory.OtherPunctuation;
    }

    /// <summary>The CJK Unified Ideographs blocks HF treats as "Chinese characters".</summary>
    public static bool IsChinese(int cp) =>
        (cp >= 0x4E00 && cp <= 0x9FFF) || (cp >= 0x3400 && cp <= 0x4DBF) || (cp >= 0x20000 && cp <= 0x2A6DF) ||
        (cp >= 0x2A700 && cp <= 0x2B73F) || (cp >= 0x2B740 && cp <= 0x2B81F) || (cp >= 0x2B820 && cp <= 0x2CEAF) ||
        (cp >= 0xF900 && cp <= 0xFAFF) || (cp >= 0x2F800 && cp <= 0x2FA1F);
}

static class CodePoints
{
    /// <summary>The code point at <paramref name="i"/>; a lone surrogate yields U+FFFD.</summary>
    public static int At(string s, int i, out int width)
    {
        char c = s[i];
        if (char.IsHighSurrogate(c) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1]))
        {
            width = 2;
            return char.ConvertToUtf32(c, s[i + 1]);
        }
        width = 1;
        return char.IsSurrogate(c) ? 0xFFFD : c;
    }
}
