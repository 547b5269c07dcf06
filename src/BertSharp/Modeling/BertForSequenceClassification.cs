using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>Output of <see cref="BertForSequenceClassification"/> (HF <c>SequenceClassifierOutput</c>).</summary>
/// <param name="Logits">[B, num_labels] (num_labels 1: the regression score)</param>
/// <param name="Loss">scalar, when labels were given</param>
public sealed record SequenceClassifierOutput(Tensor Logits, Tensor? Loss, BertModelOutput Encoder);

/// <summary>
/// HF <c>BertForSequenceClassification</c>: pooler output → dropout → <c>classifier</c> [num_labels, H].
/// Loss as HF: problem_type from the config, else regression (MSE) for num_labels 1, single-label cross-entropy
/// for integer labels, multi-label BCE-with-logits for float labels; the decided type sticks (HF writes it into
/// the config) and goes into a saved config.json.
/// </summary>
public sealed class BertForSequenceClassification : nn.Module, IBertTaskModel
{
    public readonly BertModel bert;
    readonly Dropout dropout;
    public readonly Linear classifier;

    public BertForSequenceClassification(BertConfig config) : base(nameof(BertForSequenceClassification))
    {
        NumLabels = config.NumLabels;
        ProblemType = config.ProblemType;
        bert = new BertModel(config);
        dropout = nn.Dropout(BertTaskModels.ClassifierDropout(config));
        classifier = nn.Linear(config.HiddenSize, NumLabels);
        RegisterComponents();
    }

    public BertModel Bert => bert;
    public int NumLabels { get; }

    /// <summary>The config's problem_type, or the one the first loss decided (null before).</summary>
    public string? ProblemType { get; private set; }

    public string Architecture => nameof(BertForSequenceClassification);

    public BertConfig Describe(BertConfig config) =>
        BertTaskModels.WithArchitecture(config, Architecture, NumLabels) with { ProblemType = ProblemType ?? config.ProblemType };

    /// <param name="labels">[B] int64 class ids (single-label), [B] float scores (regression), or [B, num_labels] float 0/1 (multi-label)</param>
    public SequenceClassifierOutput forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null, Tensor? labels = null)
    {
        var enc = bert.forward(inputIds, tokenTypeIds, attentionMask);
        var logits = classifier.forward(dropout.forward(enc.PooledOutput!));
        return new SequenceClassifierOutput(logits, labels is null ? null : Loss(logits, labels), enc);
    }

    Tensor Loss(Tensor logits, Tensor labels)
    {
        logits = ModelUtils.Float32(logits);
        ProblemType ??= NumLabels == 1 ? "regression"
            : labels.dtype is ScalarType.Int64 or ScalarType.Int32 ? "single_label_classification"
            : "multi_label_classification";
        return ProblemType switch
        {
            "regression" when NumLabels == 1 => nn.functional.mse_loss(logits.reshape(-1), labels.reshape(-1).to(logits.dtype)),
            "regression" => nn.functional.mse_loss(logits, labels.to(logits.dtype)),
            "single_label_classification" => nn.functional.cross_entropy(logits.view(-1, NumLabels), labels.view(-1).to(ScalarType.Int64)),
            _ => nn.functional.binary_cross_entropy_with_logits(logits, labels.to(logits.dtype)),
        };
    }
}
