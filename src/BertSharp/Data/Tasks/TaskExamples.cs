namespace BertSharp.Data.Tasks;

/// <summary>What a fine-tuning task predicts.</summary>
public enum TaskKind
{
    /// <summary>One label per text or text pair (cross-entropy).</summary>
    SequenceClassification,
    /// <summary>One float per text or text pair (MSE; STS-B).</summary>
    Regression,
    /// <summary>One label per word (NER, POS).</summary>
    TokenClassification,
    /// <summary>Extractive question answering (a span of the context).</summary>
    QuestionAnswering,
}

/// <summary>The metric(s) a task reports (GLUE's choice for GLUE tasks).</summary>
public enum TaskMetric
{
    /// <summary>Accuracy.</summary>
    Accuracy,
    /// <summary>Accuracy and binary F1 of label 1 (MRPC).</summary>
    AccuracyAndF1,
    /// <summary>Pearson and Spearman correlation (STS-B).</summary>
    PearsonSpearman,
    /// <summary>Matthews correlation (CoLA).</summary>
    Matthews,
    /// <summary>Entity-level micro precision/recall/F1 with seqeval semantics (NER).</summary>
    EntityF1,
    /// <summary>Word-level accuracy (POS).</summary>
    TokenAccuracy,
    /// <summary>SQuAD exact match and token F1 with the official answer normalisation.</summary>
    SquadEmF1,
}

/// <summary>
/// A text or text pair with its label: <see cref="Label"/> (index into the dataset's label list) for classification,
/// <see cref="Score"/> for regression; both null when the file has no labels (GLUE test files).
/// </summary>
/// <param name="Id">An id from the file (its index/id columns) or <c>line-N</c>.</param>
/// <param name="Line">1-based line of the file where the example starts (for error messages).</param>
public sealed record TextExample(string Id, string Text, string? TextPair, int? Label, float? Score, int Line);

/// <summary>Examples read from one file, with the label list their <see cref="TextExample.Label"/> indexes.</summary>
/// <param name="Labels">Label names in id order (config.json id2label); null for regression.</param>
/// <param name="HasLabels">False for unlabelled files (every example's Label and Score are null).</param>
public sealed record TextDataset(string Source, IReadOnlyList<string>? Labels, bool IsRegression, bool HasLabels,
    IReadOnlyList<TextExample> Examples)
{
    public int Count => Examples.Count;
}

/// <summary>A sentence as words with one tag per word (null when the file has none).</summary>
public sealed record TokenExample(string Id, string[] Words, string[]? Tags, int Line);

/// <summary>Sentences read from one file.</summary>
public sealed record TokenDataset(string Source, IReadOnlyList<TokenExample> Examples)
{
    public int Count => Examples.Count;

    /// <summary>The distinct tags of the file, ordinal-sorted.</summary>
    public IReadOnlyList<string> DistinctTags() =>
        Examples.Where(e => e.Tags is not null).SelectMany(e => e.Tags!).Distinct().Order(StringComparer.Ordinal).ToArray();

    /// <summary>
    /// Tag → id with <paramref name="labels"/>; a tag outside the list is an error naming the sentence's line.
    /// </summary>
    public int[][] TagIds(IReadOnlyList<string> labels)
    {
        var map = new Dictionary<string, int>(StringComparer.Ordinal);
        for (int i = 0; i < labels.Count; i++) map[labels[i]] = i;
        var result = new int[Examples.Count][];
        for (int s = 0; s < Examples.Count; s++)
        {
            var e = Examples[s];
            if (e.Tags is null) throw new FormatException($"{Source}:{e.Line}: the sentence has no tags");
            result[s] = new int[e.Tags.Length];
            for (int w = 0; w < e.Tags.Length; w++)
                result[s][w] = map.TryGetValue(e.Tags[w], out var id)
                    ? id
                    : throw new FormatException($"{Source}:{e.Line}: tag '{e.Tags[w]}' (word {w + 1}, '{e.Words[w]}') is not one of the {labels.Count} labels");
        }
        return result;
    }
}

/// <summary>One gold answer: its text and where it starts in the context (a UTF-16 index into the C# string).</summary>
public sealed record SquadAnswer(string Text, int Start)
{
    public int End => Start + Text.Length;
}

/// <summary>
/// A SQuAD question with its context. <see cref="SquadAnswer.Start"/> values are converted from the file's code-point
/// indices (Python string indices) to UTF-16 indices. <see cref="Answers"/> is empty for unanswerable v2 questions.
/// </summary>
public sealed record SquadExample(string Id, string Title, int ArticleIndex, string Context, string Question,
    IReadOnlyList<SquadAnswer> Answers, bool IsImpossible);

/// <summary>A SQuAD file: its version string and its questions in file order.</summary>
public sealed record SquadDataset(string Source, string Version, IReadOnlyList<string> Titles, IReadOnlyList<SquadExample> Examples)
{
    public int Count => Examples.Count;
    /// <summary>True when any question is unanswerable (SQuAD v2.0 semantics: null answers are predicted).</summary>
    public bool HasImpossible => Examples.Any(e => e.IsImpossible);
}
