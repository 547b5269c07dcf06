using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>
/// A fine-tuning model (HF <c>BertFor…</c> task class): it knows its HF class name, so a saved directory's
/// config.json names it in <c>architectures</c> and HF transformers loads it as the same task model.
/// </summary>
public interface IBertTaskModel : IBertWithEncoder
{
    /// <summary>The HF class name, e.g. <c>BertForSequenceClassification</c>.</summary>
    string Architecture { get; }

    /// <summary>
    /// <paramref name="config"/> as this model's config.json: <c>architectures</c> = [<see cref="Architecture"/>]
    /// and, for sequence classification, the problem_type the loss settled on (HF writes it back the same way).
    /// </summary>
    BertConfig Describe(BertConfig config);
}

/// <summary>Builds a BERT model by its HF class name (config.json <c>architectures</c>).</summary>
public static class BertTaskModels
{
    public static readonly string[] Architectures =
    [
        nameof(BertForSequenceClassification), nameof(BertForTokenClassification), nameof(BertForQuestionAnswering),
        nameof(BertForMultipleChoice), nameof(BertForPreTraining), nameof(BertForMaskedLM), nameof(BertForNextSentencePrediction),
    ];

    /// <summary>A freshly built (not initialised) model of the named class.</summary>
    public static nn.Module Create(string architecture, BertConfig config) => architecture switch
    {
        nameof(BertForSequenceClassification) => new BertForSequenceClassification(config),
        nameof(BertForTokenClassification) => new BertForTokenClassification(config),
        nameof(BertForQuestionAnswering) => new BertForQuestionAnswering(config),
        nameof(BertForMultipleChoice) => new BertForMultipleChoice(config),
        nameof(BertForPreTraining) => new BertForPreTraining(config),
        nameof(BertForMaskedLM) => new BertForMaskedLM(config),
        nameof(BertForNextSentencePrediction) => new BertForNextSentencePrediction(config),
        _ => throw new ArgumentException($"unknown BERT architecture '{architecture}' (expected one of: {string.Join(", ", Architectures)})"),
    };

    /// <summary>Dropout before a classifier: <c>classifier_dropout</c>, else <c>hidden_dropout_prob</c> (HF).</summary>
    internal static double ClassifierDropout(BertConfig c) => c.ClassifierDropout ?? c.HiddenDropoutProb;

    /// <summary>The config with <c>architectures</c> = [<paramref name="architecture"/>] and, when the model's class
    /// count differs from the config's, id2label for that count.</summary>
    internal static BertConfig WithArchitecture(BertConfig config, string architecture, int? numLabels = null) =>
        (numLabels is int n && n != config.NumLabels ? config.WithNumLabels(n) : config) with { Architectures = [architecture] };
}
