using System.Text;

namespace BertSharp.Data;

/// <summary>
/// Rule-based sentence splitter (documented in docs/data.md):
/// <list type="bullet">
/// <item>Blank lines are hard boundaries (paragraphs); other whitespace runs collapse to one space.</item>
/// <item>A run of <c>. ! ?</c> (plus directly attached closing quotes/brackets) ends a sentence when it is followed by
/// the end of the text, or by whitespace and then an uppercase letter, a digit, or an opening quote/bracket.</item>
/// <item>Never a boundary: a period after a known abbreviation (Mr. Dr. e.g. i.e. U.S. etc., see
/// <see cref="DefaultAbbreviations"/>), after a single-letter initial other than "I" (J. R. R. Tolkien), after a
/// dotted acronym (a.m., U.S.A.); a decimal point or any terminator not followed by whitespace (3.14, e.g.,);
/// an ellipsis (<c>...</c>, <c>..</c>, <c>…</c>).</item>
/// <item>WikiText-style spacing (<c>word . Next</c>) works because the period's preceding "word" is empty, so it is
/// never taken for an abbreviation; a detached <c>"</c> right after the terminator is a closing quote (and stays
/// with the sentence) when the sentence so far holds an odd number of <c>"</c>.</item>
/// </list>
/// Sentences starting with a lowercase letter are not split off (common in informal text); that is deliberate.
/// </summary>
public sealed class SentenceSplitter
{
    public static readonly IReadOnlyList<string> DefaultAbbreviations =
    [
        "mr", "mrs", "ms", "dr", "prof", "sr", "jr", "st", "vs", "etc", "e.g", "i.e", "u.s", "u.k", "u.n", "a.m", "p.m",
        "inc", "ltd", "co", "corp", "jan", "feb", "mar", "apr", "jun", "jul", "aug", "sep", "sept", "oct", "nov", "dec",
        "no", "nos", "fig", "figs", "vol", "vols", "pp", "ed", "eds", "al", "gen", "col", "lt", "sgt", "capt", "cmdr",
        "adm", "gov", "sen", "rep", "rev", "hon", "mt", "ft", "approx", "dept", "est", "cf", "viz", "ca", "op", "ch",
    ];

    public static SentenceSplitter Default { get; } = new();

    readonly HashSet<string> _abbreviations;

    public SentenceSplitter(IEnumerable<string>? extraAbbreviations = null)
    {
        _abbreviations = new HashSet<string>(DefaultAbbreviations, StringComparer.Ordinal);
        if (extraAbbreviations is not null)
            foreach (var a in extraAbbreviations) _abbreviations.Add(a.TrimEnd('.').ToLowerInvariant());
    }

    /// <summary>Splits <paramref name="text"/> into trimmed, non-empty sentences.</summary>
    public List<string> Split(string text)
    {
        var result = new List<string>();
        foreach (var paragraph in Paragraphs(text)) SplitParagraph(paragraph, result);
        return result;
    }

    /// <summary>Blank-line separated paragraphs with whitespace collapsed to single spaces.</summary>
    static IEnumerable<string> Paragraphs(string text)
    {
        var sb = new StringBuilder();
        int newlines = 0;
        bool pendingSpace = false;
        foreach (char c in text)
        {
            if (c == '\n') { newlines++; pendingSpace = true; continue; }
            if (char.IsWhiteSpace(c)) { pendingSpace = true; continue; }
            if (newlines >= 2 && sb.Length > 0) { yield return sb.ToString(); sb.Clear(); }
            else if (pendingSpace && sb.Length > 0) sb.Append(' ');
            newlines = 0;
            pendingSpace = false;
            sb.Append(c);
        }
        if (sb.Length > 0) yield return sb.ToString();
    }

    static bool IsTerminator(char c) => c is '.' or '!' or '?' or '…';
    static bool IsCloser(char c) => c is '"' or '\'' or ')' or ']' or '}' or '’' or '”' or '»';
    static bool IsOpener(char c) => c is '"' or '\'' or '(' or '[' or '“' or '‘' or '«';

    void SplitParagraph(string s, List<string> output)
    {
        int n = s.Length;
        int sentenceStart = 0;
        int quotes = 0;
        int i = 0;
        while (i < n)
        {
            char c = s[i];
            if (c == '"') { quotes++; i++; continue; }
            if (!IsTerminator(c)) { i++; continue; }

            int j = i;
            int dots = 0;
            bool hasEllipsisChar = false;
            while (j < n && IsTerminator(s[j]))
            {
                if (s[j] == '.') dots++;
                if (s[j] == '…') hasEllipsisChar = true;
                j++;
            }
            int k = j;
            while (k < n && IsCloser(s[k]))
            {
                if (s[k] == '"') quotes++;
                k++;
            }
            if (k >= n) { i = k; continue; }            // end of text: the final flush takes it
            if (s[k] != ' ') { i = k; continue; }       // 3.14, e.g., U.S.A: no whitespace after
            int boundaryEnd = k;
            int next = k + 1;
            if (next < n && s[next] == '"' && quotes % 2 == 1 && (next + 1 == n || s[next + 1] == ' '))
            {
                // WikiText-style detached closing quote: ` . " Next`
                quotes++;
                boundaryEnd = next + 1;
                next = boundaryEnd + 1;
            }
            bool ellipsis = hasEllipsisChar || dots >= 2;
            bool abbreviation = !ellipsis && dots == 1 && j - i == 1 && IsAbbreviation(s, i);
            bool boundary = !ellipsis && !abbreviation &&
                            (next >= n || char.IsUpper(s[next]) || char.IsDigit(s[next]) || IsOpener(s[next]));
            if (boundary)
            {
                var sentence = s[sentenceStart..boundaryEnd].Trim();
                if (sentence.Length > 0) output.Add(sentence);
                sentenceStart = Math.Min(next, n);
                quotes = 0;
                i = sentenceStart;
            }
            else i = k;
        }
        if (sentenceStart < n)
        {
            var last = s[sentenceStart..].Trim();
            if (last.Length > 0) output.Add(last);
        }
    }

    /// <summary>Is the period at <paramref name="dot"/> the end of an abbreviation, initial or dotted acronym?</summary>
    bool IsAbbreviation(string s, int dot)
    {
        int start = dot;
        while (start > 0 && s[start - 1] != ' ') start--;
        while (start < dot && IsOpener(s[start])) start++;
        int length = dot - start;
        if (length == 0) return false;                          // ` . ` (WikiText): a real period
        var word = s.AsSpan(start, length);
        if (length == 1) return char.IsLetter(word[0]) && word[0] != 'I';  // initials, but not the pronoun "I"
        var lower = word.ToString().ToLowerInvariant();
        if (_abbreviations.Contains(lower)) return true;
        // dotted acronym: letters separated by single periods (a.m, u.s.a)
        bool dotted = lower.Contains('.');
        for (int p = 0; p < lower.Length && dotted; p++)
            dotted = p % 2 == 0 ? char.IsLetter(lower[p]) : lower[p] == '.';
        return dotted && lower.Length % 2 == 1;
    }
}
