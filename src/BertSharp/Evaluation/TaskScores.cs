using BertSharp.Data.Tasks;

namespace BertSharp.Evaluation;

/// <summary>
/// The metrics each task reports, by name (HF's keys: <c>accuracy</c>, <c>f1</c>, <c>pearson</c>, <c>spearmanr</c>,
/// <c>matthews_correlation</c>, <c>precision</c>, <c>recall</c>, <c>exact_match</c>). Classification, correlation and
/// entity metrics are fractions (0–1, as HF's glue/seqeval metrics); SQuAD EM/F1 are percentages (as the official
/// script). <see cref="Primary"/> names the one that selects the best checkpoint.
/// </summary>
public static class TaskScores
{
    /// <summary>The metric that ranks checkpoints: MRPC f1, STS-B spearmanr, CoLA matthews_correlation, NER f1,
    /// POS accuracy, SQuAD f1, else accuracy. Higher is better for all of them.</summary>
    public static string Primary(TaskSpec task) => task.Metric switch
    {
        TaskMetric.AccuracyAndF1 => "f1",
        TaskMetric.PearsonSpearman => "spearmanr",
        TaskMetric.Matthews => "matthews_correlation",
        TaskMetric.EntityF1 => "f1",
        TaskMetric.SquadEmF1 => "f1",
        _ => "accuracy",
    };

    /// <summary>Sequence classification: accuracy, plus f1 (binary, label 1) for MRPC, matthews_correlation for CoLA,
    /// and macro f1 (<c>f1_macro</c>) for every task.</summary>
    public static Dictionary<string, double> Classification(TaskSpec task, IReadOnlyList<int> predictions, IReadOnlyList<int> references)
    {
        var r = new Dictionary<string, double> { ["accuracy"] = Metrics.Accuracy(predictions, references) };
        if (task.Metric == TaskMetric.AccuracyAndF1) r["f1"] = Metrics.F1Binary(predictions, references, 1);
        if (task.Metric == TaskMetric.Matthews) r["matthews_correlation"] = Metrics.Matthews(predictions, references);
        r["f1_macro"] = Metrics.F1Macro(predictions, references);
        return r;
    }

    /// <summary>Regression (STS-B): pearson, spearmanr and their mean (<c>combined_score</c>, as HF).</summary>
    public static Dictionary<string, double> Regression(IReadOnlyList<double> predictions, IReadOnlyList<double> references)
    {
        double p = Metrics.Pearson(predictions, references), s = Metrics.Spearman(predictions, references);
        return new() { ["pearson"] = p, ["spearmanr"] = s, ["combined_score"] = (p + s) / 2 };
    }

    /// <summary>
    /// Token classification on word-level label ids: NER → seqeval micro precision/recall/f1 (default mode) and word
    /// accuracy; POS → word accuracy.
    /// </summary>
    public static Dictionary<string, double> Tokens(TaskSpec task, IReadOnlyList<int[]> predictions, IReadOnlyList<int[]> references, IReadOnlyList<string> labels)
    {
        var r = new Dictionary<string, double> { ["accuracy"] = Metrics.TokenAccuracy(predictions, references) };
        if (task.Metric == TaskMetric.EntityF1)
        {
            string[][] Tags(IReadOnlyList<int[]> ids) => ids.Select(s => s.Select(i => labels[i]).ToArray()).ToArray();
            var s = SeqEval.Score(Tags(predictions), Tags(references));
            r["precision"] = s.Precision;
            r["recall"] = s.Recall;
            r["f1"] = s.F1;
        }
        return r;
    }

    /// <summary>SQuAD: exact_match and f1 (percent).</summary>
    public static Dictionary<string, double> Squad(IEnumerable<SquadPrediction> predictions, IEnumerable<SquadExample> examples)
    {
        var s = SquadMetrics.Evaluate(predictions.ToDictionary(p => p.Id, p => p.Text),
            examples.ToDictionary(e => e.Id, e => (IReadOnlyList<string>)e.Answers.Select(a => a.Text).ToArray()));
        return new() { ["exact_match"] = s.ExactMatch, ["f1"] = s.F1 };
    }
}
