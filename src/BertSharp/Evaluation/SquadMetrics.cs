using System.Text;
using System.Text.RegularExpressions;

namespace BertSharp.Evaluation;

/// <summary>SQuAD exact match and F1 as percentages (the official script's scale).</summary>
public readonly record struct SquadScore(double ExactMatch, double F1, int Count);

/// <summary>
/// The official SQuAD evaluation (evaluate-v1.1.py; v2.0's rules for empty answers): answers are normalised by
/// lower-casing, removing ASCII punctuation (Python's <c>string.punctuation</c>), removing the words a/an/the and
/// collapsing whitespace; EM = normalised strings equal; F1 = harmonic mean of token precision and recall over the
/// multiset of shared tokens; each question takes the maximum over its gold answers; totals are 100 × the mean.
/// An empty normalised answer (a v2 no-answer) scores F1 1 against an empty gold answer and 0 otherwise.
/// </summary>
public static partial class SquadMetrics
{
    const string Punctuation = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";

    [GeneratedRegex(@"\b(a|an|the)\b")]
    private static partial Regex Articles();

    /// <summary>The official <c>normalize_answer</c>.</summary>
    public static string Normalize(string s)
    {
        s = s.ToLowerInvariant();
        var sb = new StringBuilder(s.Length);
        foreach (var c in s) if (Punctuation.IndexOf(c) < 0) sb.Append(c);
        s = Articles().Replace(sb.ToString(), " ");
        return string.Join(' ', s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
    }

    public static bool ExactMatch(string prediction, string groundTruth) => Normalize(prediction) == Normalize(groundTruth);

    /// <summary>Token F1 of normalised answers (0–1).</summary>
    public static double F1(string prediction, string groundTruth)
    {
        var p = Normalize(prediction).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        var g = Normalize(groundTruth).Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (p.Length == 0 || g.Length == 0) return p.Length == g.Length ? 1 : 0;
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        foreach (var t in g) counts[t] = counts.GetValueOrDefault(t) + 1;
        int same = 0;
        foreach (var t in p)
            if (counts.TryGetValue(t, out var c) && c > 0) { same++; counts[t] = c - 1; }
        if (same == 0) return 0;
        double precision = (double)same / p.Length, recall = (double)same / g.Length;
        return 2 * precision * recall / (precision + recall);
    }

    /// <summary>EM and F1 (percent) of predictions keyed by question id against gold answers keyed by id
    /// (an unanswerable question's gold list is empty and means the single gold answer ""). A question without a
    /// prediction scores 0 (the official script's "Unanswered question … will receive score 0").</summary>
    public static SquadScore Evaluate(IReadOnlyDictionary<string, string> predictions, IReadOnlyDictionary<string, IReadOnlyList<string>> goldAnswers)
    {
        if (goldAnswers.Count == 0) throw new ArgumentException("no questions to score");
        double em = 0, f1 = 0;
        foreach (var (id, golds) in goldAnswers)
        {
            if (!predictions.TryGetValue(id, out var pred)) continue;
            IReadOnlyList<string> g = golds.Count == 0 ? [""] : golds;
            em += g.Max(x => ExactMatch(pred, x) ? 1.0 : 0.0);
            f1 += g.Max(x => F1(pred, x));
        }
        return new SquadScore(100 * em / goldAnswers.Count, 100 * f1 / goldAnswers.Count, goldAnswers.Count);
    }
}
