namespace BertSharp.Data.Tasks;

/// <summary>
/// A named fine-tuning task: what it predicts, the metric it reports and its fixed label set.
/// </summary>
/// <param name="Name">The <c>--task</c> name (lower case).</param>
/// <param name="Labels">Label names in id order (config.json id2label), or null when the labels come from the data
/// (generic CSV, XPOS) or the task is regression/QA.</param>
/// <param name="FileLabels">How each label is written in the task's files, same order as <paramref name="Labels"/>
/// (GLUE writes MRPC/SST-2/CoLA/WNLI labels as 0/1, RTE/QNLI as strings).</param>
/// <param name="IsPair">True when examples are text pairs.</param>
public sealed record TaskSpec(string Name, TaskKind Kind, TaskMetric Metric, IReadOnlyList<string>? Labels,
    IReadOnlyList<string>? FileLabels, bool IsPair, string Description)
{
    public int? NumLabels => Kind == TaskKind.Regression ? 1 : Labels?.Count;
}

/// <summary>The tasks <c>bert finetune --task</c> knows, by name.</summary>
public static class FineTuneTasks
{
    /// <summary>CoNLL-2003 NER tags in the order of the Hugging Face <c>conll2003</c> dataset.</summary>
    public static readonly IReadOnlyList<string> ConllNerLabels = ["O", "B-PER", "I-PER", "B-ORG", "I-ORG", "B-LOC", "I-LOC", "B-MISC", "I-MISC"];

    /// <summary>CoNLL-2003 PTB POS tags in the order of the Hugging Face <c>conll2003</c> dataset (47 tags).</summary>
    public static readonly IReadOnlyList<string> ConllPosLabels =
    [
        "\"", "''", "#", "$", "(", ")", ",", ".", ":", "``", "CC", "CD", "DT", "EX", "FW", "IN", "JJ", "JJR", "JJS", "LS", "MD",
        "NN", "NNP", "NNPS", "NNS", "NN|SYM", "PDT", "POS", "PRP", "PRP$", "RB", "RBR", "RBS", "RP", "SYM", "TO", "UH", "VB",
        "VBD", "VBG", "VBN", "VBP", "VBZ", "WDT", "WP", "WP$", "WRB",
    ];

    /// <summary>The 17 Universal Dependencies UPOS tags (UD v2 order).</summary>
    public static readonly IReadOnlyList<string> UposLabels =
        ["ADJ", "ADP", "ADV", "AUX", "CCONJ", "DET", "INTJ", "NOUN", "NUM", "PART", "PRON", "PROPN", "PUNCT", "SCONJ", "SYM", "VERB", "X"];

    static readonly string[] Binary01 = ["0", "1"];
    static readonly string[] Entailment2 = ["entailment", "not_entailment"];

    static readonly TaskSpec[] Specs =
    [
        new("mrpc", TaskKind.SequenceClassification, TaskMetric.AccuracyAndF1, ["not_equivalent", "equivalent"], Binary01, true,
            "GLUE MRPC paraphrase (TSV with BOM; Quality, #1 String, #2 String)"),
        new("sst2", TaskKind.SequenceClassification, TaskMetric.Accuracy, ["negative", "positive"], Binary01, false,
            "GLUE SST-2 sentiment (sentence, label)"),
        new("stsb", TaskKind.Regression, TaskMetric.PearsonSpearman, null, null, true,
            "GLUE STS-B similarity, regression 0-5 (sentence1, sentence2, score)"),
        new("cola", TaskKind.SequenceClassification, TaskMetric.Matthews, ["unacceptable", "acceptable"], Binary01, false,
            "GLUE CoLA acceptability (no header: source, label, original label, sentence)"),
        new("rte", TaskKind.SequenceClassification, TaskMetric.Accuracy, Entailment2, Entailment2, true,
            "GLUE RTE entailment (sentence1, sentence2, label)"),
        new("wnli", TaskKind.SequenceClassification, TaskMetric.Accuracy, ["not_entailment", "entailment"], Binary01, true,
            "GLUE WNLI (sentence1, sentence2, label 0/1)"),
        new("qnli", TaskKind.SequenceClassification, TaskMetric.Accuracy, Entailment2, Entailment2, true,
            "GLUE QNLI (question, sentence, label)"),
        new("snli", TaskKind.SequenceClassification, TaskMetric.Accuracy, ["entailment", "neutral", "contradiction"], ["0", "1", "2"], true,
            "SNLI, premise<TAB>hypothesis<TAB>label 0/1/2, no header"),
        new("imdb", TaskKind.SequenceClassification, TaskMetric.Accuracy, ["neg", "pos"], Binary01, false,
            "IMDB reviews, JSONL {\"label\": 0|1, \"text\"}"),
        new("conll-ner", TaskKind.TokenClassification, TaskMetric.EntityF1, ConllNerLabels, null, false,
            "CoNLL-2003 NER column (IOB2), 'token POS chunk NER' lines"),
        new("conll-pos", TaskKind.TokenClassification, TaskMetric.TokenAccuracy, ConllPosLabels, null, false,
            "CoNLL-2003 PTB POS column"),
        new("ud-pos", TaskKind.TokenClassification, TaskMetric.TokenAccuracy, UposLabels, null, false,
            "CoNLL-U UPOS column"),
        new("ud-xpos", TaskKind.TokenClassification, TaskMetric.TokenAccuracy, null, null, false,
            "CoNLL-U XPOS column (labels from the data)"),
        new("squad", TaskKind.QuestionAnswering, TaskMetric.SquadEmF1, null, null, true,
            "SQuAD v1.1/v2.0 JSON"),
        new("csv", TaskKind.SequenceClassification, TaskMetric.Accuracy, null, null, false,
            "generic CSV/TSV/JSONL with text, optional text-pair and label columns"),
    ];

    /// <summary>All task names, in the order above.</summary>
    public static IReadOnlyList<string> Names { get; } = Specs.Select(s => s.Name).ToArray();

    public static IReadOnlyList<TaskSpec> All => Specs;

    /// <summary>The task called <paramref name="name"/> (case-insensitive; "sst-2", "sts-b" are accepted too).</summary>
    /// <exception cref="ArgumentException">an unknown name (the message lists the known ones).</exception>
    public static TaskSpec Get(string name)
    {
        var key = name.Trim().ToLowerInvariant() switch { "sst-2" => "sst2", "sts-b" => "stsb", var k => k };
        return Specs.FirstOrDefault(s => s.Name == key)
            ?? throw new ArgumentException($"unknown task '{name}' (expected one of {string.Join(", ", Names)})");
    }

    /// <summary>True for the GLUE tasks read by <see cref="GlueReader"/>.</summary>
    public static bool IsGlue(TaskSpec task) => task.Name is "mrpc" or "sst2" or "stsb" or "cola" or "rte" or "wnli" or "qnli";
}
