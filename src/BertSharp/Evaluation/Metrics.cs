namespace BertSharp.Evaluation;

/// <summary>
/// Classification and correlation metrics with scikit-learn / SciPy semantics (values in [0, 1] or [−1, 1], not
/// percentages). A zero denominator gives 0 (scikit-learn's <c>zero_division=0</c>), except correlations of a
/// constant series, which are NaN (SciPy).
/// </summary>
public static class Metrics
{
    static void SameLength(int a, int b)
    {
        if (a != b) throw new ArgumentException($"{a} predictions but {b} references");
        if (a == 0) throw new ArgumentException("no examples to score");
    }

    /// <summary>Fraction of equal pairs.</summary>
    public static double Accuracy(IReadOnlyList<int> predictions, IReadOnlyList<int> references)
    {
        SameLength(predictions.Count, references.Count);
        int ok = 0;
        for (int i = 0; i < predictions.Count; i++) if (predictions[i] == references[i]) ok++;
        return (double)ok / predictions.Count;
    }

    /// <summary>Precision, recall and F1 of class <paramref name="positive"/> (sklearn <c>average='binary'</c>).</summary>
    public static (double Precision, double Recall, double F1) BinaryPrf(IReadOnlyList<int> predictions, IReadOnlyList<int> references, int positive = 1)
    {
        SameLength(predictions.Count, references.Count);
        int tp = 0, fp = 0, fn = 0;
        for (int i = 0; i < predictions.Count; i++)
        {
            bool p = predictions[i] == positive, r = references[i] == positive;
            if (p && r) tp++;
            else if (p) fp++;
            else if (r) fn++;
        }
        return Prf(tp, fp, fn);
    }

    /// <summary>F1 of class <paramref name="positive"/>.</summary>
    public static double F1Binary(IReadOnlyList<int> predictions, IReadOnlyList<int> references, int positive = 1) =>
        BinaryPrf(predictions, references, positive).F1;

    /// <summary>Unweighted mean of the per-class F1 over every class that occurs in the predictions or the references
    /// (sklearn <c>average='macro'</c>).</summary>
    public static double F1Macro(IReadOnlyList<int> predictions, IReadOnlyList<int> references)
    {
        SameLength(predictions.Count, references.Count);
        var classes = predictions.Concat(references).Distinct().Order().ToArray();
        return classes.Average(c => BinaryPrf(predictions, references, c).F1);
    }

    internal static (double Precision, double Recall, double F1) Prf(long tp, long fp, long fn)
    {
        double p = tp + fp == 0 ? 0 : (double)tp / (tp + fp);
        double r = tp + fn == 0 ? 0 : (double)tp / (tp + fn);
        double f = p + r == 0 ? 0 : 2 * p * r / (p + r);
        return (p, r, f);
    }

    /// <summary>
    /// Matthews correlation coefficient, multi-class form (sklearn <c>matthews_corrcoef</c>): with the confusion
    /// matrix C, c = trace, s = n, t_k = true count, p_k = predicted count:
    /// (c·s − Σ t_k p_k) / √((s² − Σ p_k²)(s² − Σ t_k²)); 0 when the denominator is 0. For two classes this is
    /// (tp·tn − fp·fn) / √((tp+fp)(tp+fn)(tn+fp)(tn+fn)).
    /// </summary>
    public static double Matthews(IReadOnlyList<int> predictions, IReadOnlyList<int> references)
    {
        SameLength(predictions.Count, references.Count);
        var t = new Dictionary<int, long>();
        var p = new Dictionary<int, long>();
        long c = 0, s = predictions.Count;
        for (int i = 0; i < predictions.Count; i++)
        {
            t[references[i]] = t.GetValueOrDefault(references[i]) + 1;
            p[predictions[i]] = p.GetValueOrDefault(predictions[i]) + 1;
            if (predictions[i] == references[i]) c++;
        }
        double tp = 0, pp = 0, tt = 0;
        foreach (var k in t.Keys.Union(p.Keys))
        {
            double tk = t.GetValueOrDefault(k), pk = p.GetValueOrDefault(k);
            tp += tk * pk; pp += pk * pk; tt += tk * tk;
        }
        double num = (double)c * s - tp;
        double den = Math.Sqrt(((double)s * s - pp) * ((double)s * s - tt));
        return den == 0 ? 0 : num / den;
    }

    /// <summary>Pearson's r (SciPy <c>pearsonr</c>); NaN when either series is constant.</summary>
    public static double Pearson(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        SameLength(x.Count, y.Count);
        double mx = x.Average(), my = y.Average();
        double sxy = 0, sxx = 0, syy = 0;
        for (int i = 0; i < x.Count; i++)
        {
            double dx = x[i] - mx, dy = y[i] - my;
            sxy += dx * dy; sxx += dx * dx; syy += dy * dy;
        }
        if (sxx == 0 || syy == 0) return double.NaN;
        return Math.Clamp(sxy / Math.Sqrt(sxx * syy), -1, 1);
    }

    /// <summary>Spearman's ρ: Pearson's r of the ranks, ties getting the average of their ranks (SciPy <c>spearmanr</c>).</summary>
    public static double Spearman(IReadOnlyList<double> x, IReadOnlyList<double> y)
    {
        SameLength(x.Count, y.Count);
        return Pearson(Ranks(x), Ranks(y));
    }

    /// <summary>1-based ranks, ties averaged (SciPy <c>rankdata(method='average')</c>).</summary>
    public static double[] Ranks(IReadOnlyList<double> values)
    {
        var order = Enumerable.Range(0, values.Count).OrderBy(i => values[i]).ToArray();
        var ranks = new double[values.Count];
        for (int i = 0; i < order.Length;)
        {
            int j = i;
            while (j + 1 < order.Length && values[order[j + 1]] == values[order[i]]) j++;
            double rank = (i + j) / 2.0 + 1;
            for (int k = i; k <= j; k++) ranks[order[k]] = rank;
            i = j + 1;
        }
        return ranks;
    }

    /// <summary>
    /// Token (word) accuracy over sequences: the fraction of positions whose prediction equals the reference,
    /// positions whose reference is <paramref name="ignoreIndex"/> excluded.
    /// </summary>
    public static double TokenAccuracy(IReadOnlyList<IReadOnlyList<int>> predictions, IReadOnlyList<IReadOnlyList<int>> references, int ignoreIndex = -100)
    {
        if (predictions.Count != references.Count) throw new ArgumentException($"{predictions.Count} predicted sequences but {references.Count} reference sequences");
        long ok = 0, n = 0;
        for (int s = 0; s < predictions.Count; s++)
        {
            if (predictions[s].Count != references[s].Count)
                throw new ArgumentException($"sequence {s}: {predictions[s].Count} predictions but {references[s].Count} references");
            for (int i = 0; i < references[s].Count; i++)
            {
                if (references[s][i] == ignoreIndex) continue;
                n++;
                if (predictions[s][i] == references[s][i]) ok++;
            }
        }
        if (n == 0) throw new ArgumentException("no tokens to score");
        return (double)ok / n;
    }

    /// <summary>Mean and sample standard deviation (n − 1; 0 for a single value) — for <c>--seeds</c> reports.</summary>
    public static (double Mean, double Std) MeanStd(IReadOnlyList<double> values)
    {
        if (values.Count == 0) throw new ArgumentException("no values");
        double m = values.Average();
        if (values.Count == 1) return (m, 0);
        double v = values.Sum(x => (x - m) * (x - m)) / (values.Count - 1);
        return (m, Math.Sqrt(v));
    }
}
