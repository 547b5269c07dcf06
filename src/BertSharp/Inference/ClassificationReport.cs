using System.Globalization;
using System.Text;

namespace BertSharp.Inference;

/// <summary>Precision, recall, F1 and support of one class (or of an average row).</summary>
public sealed record ClassScores(string Label, double Precision, double Recall, double F1, int Support);

/// <summary>
/// scikit-learn's <c>classification_report</c> and <c>confusion_matrix</c> for string labels: per class precision
/// = TP/(TP+FP), recall = TP/(TP+FN), F1 = 2PR/(P+R) (each 0 when its denominator is 0, sklearn's
/// <c>zero_division</c> default after its warning), support = true count; accuracy; macro avg (unweighted mean over the
/// classes) and weighted avg (weighted by support). Classes are every label in either list, sorted ordinally (numbers
/// that are integers sort numerically), as sklearn's <c>unique_labels</c>.
/// </summary>
public sealed class ClassificationReport
{
    public IReadOnlyList<string> Labels { get; }
    public IReadOnlyList<ClassScores> Classes { get; }
    public double Accuracy { get; }
    public ClassScores MacroAvg { get; }
    public ClassScores WeightedAvg { get; }

    /// <summary>Confusion[i][j]: examples of true class Labels[i] predicted as Labels[j].</summary>
    public int[][] Confusion { get; }

    public int Total { get; }

    public ClassificationReport(IReadOnlyList<string> truth, IReadOnlyList<string> predicted)
    {
        if (truth.Count != predicted.Count) throw new ArgumentException($"{truth.Count} true labels but {predicted.Count} predictions");
        if (truth.Count == 0) throw new ArgumentException("no examples to report on");
        var labels = truth.Concat(predicted).Distinct().ToList();
        labels.Sort(CompareLabels);
        Labels = labels;
        var at = labels.Select((l, i) => (l, i)).ToDictionary(x => x.l, x => x.i, StringComparer.Ordinal);
        int k = labels.Count;
        Confusion = Enumerable.Range(0, k).Select(_ => new int[k]).ToArray();
        for (int n = 0; n < truth.Count; n++) Confusion[at[truth[n]]][at[predicted[n]]]++;
        Total = truth.Count;
        var classes = new List<ClassScores>();
        int correct = 0;
        for (int c = 0; c < k; c++)
        {
            int tp = Confusion[c][c], support = Confusion[c].Sum(), predictedC = Confusion.Sum(row => row[c]);
            correct += tp;
            double p = predictedC == 0 ? 0 : (double)tp / predictedC;
            double r = support == 0 ? 0 : (double)tp / support;
            double f = p + r == 0 ? 0 : 2 * p * r / (p + r);
            classes.Add(new ClassScores(labels[c], p, r, f, support));
        }
        Classes = classes;
        Accuracy = (double)correct / Total;
        MacroAvg = new ClassScores("macro avg", classes.Average(c => c.Precision), classes.Average(c => c.Recall), classes.Average(c => c.F1), Total);
        double W(Func<ClassScores, double> f) => classes.Sum(c => f(c) * c.Support) / Total;
        WeightedAvg = new ClassScores("weighted avg", W(c => c.Precision), W(c => c.Recall), W(c => c.F1), Total);
    }

    static int CompareLabels(string a, string b)
    {
        bool na = long.TryParse(a, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var x);
        bool nb = long.TryParse(b, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var y);
        if (na && nb) return x.CompareTo(y);
        if (na != nb) return na ? -1 : 1;
        return string.CompareOrdinal(a, b);
    }

    /// <summary>The text layout of sklearn's <c>classification_report(digits=2)</c>.</summary>
    public string Format(int digits = 2)
    {
        int width = Math.Max(Math.Max(Labels.Max(l => l.Length), "weighted avg".Length), digits);
        string F(double v) => v.ToString("F" + digits, CultureInfo.InvariantCulture).PadLeft(9);
        var sb = new StringBuilder();
        sb.Append(new string(' ', width)).Append(' ');
        foreach (var h in new[] { "precision", "recall", "f1-score", "support" }) sb.Append(' ').Append(h.PadLeft(9));
        sb.Append("\n\n");
        void Row(ClassScores c) => sb.Append(c.Label.PadLeft(width)).Append(' ').Append(' ').Append(F(c.Precision)).Append(' ').Append(F(c.Recall))
            .Append(' ').Append(F(c.F1)).Append(' ').Append(c.Support.ToString(CultureInfo.InvariantCulture).PadLeft(9)).Append('\n');
        foreach (var c in Classes) Row(c);
        sb.Append('\n');
        sb.Append("accuracy".PadLeft(width)).Append(' ').Append(' ').Append(new string(' ', 9)).Append(' ').Append(new string(' ', 9))
            .Append(' ').Append(F(Accuracy)).Append(' ').Append(Total.ToString(CultureInfo.InvariantCulture).PadLeft(9)).Append('\n');
        Row(MacroAvg);
        Row(WeightedAvg);
        return sb.ToString();
    }

    /// <summary>The confusion matrix with a header row of predicted labels and one row per true label.</summary>
    public string FormatConfusion()
    {
        int w = Math.Max(Labels.Max(l => l.Length), Confusion.SelectMany(r => r).Max().ToString(CultureInfo.InvariantCulture).Length) + 2;
        int first = Math.Max(Labels.Max(l => l.Length), "true\\pred".Length);
        var sb = new StringBuilder();
        sb.Append("true\\pred".PadRight(first));
        foreach (var l in Labels) sb.Append(l.PadLeft(w));
        sb.Append('\n');
        for (int i = 0; i < Labels.Count; i++)
        {
            sb.Append(Labels[i].PadRight(first));
            foreach (var v in Confusion[i]) sb.Append(v.ToString(CultureInfo.InvariantCulture).PadLeft(w));
            sb.Append('\n');
        }
        return sb.ToString();
    }
}
