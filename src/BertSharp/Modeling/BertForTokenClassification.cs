using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>Output of <see cref="BertForTokenClassification"/> (HF <c>TokenClassifierOutput</c>).</summary>
/// <param name="Logits">[B, L, num_labels]</param>
/// <param name="Loss">scalar, when labels were given</param>
public sealed record TokenClassifierOutput(Tensor Logits, Tensor? Loss, BertModelOutput Encoder);

/// <summary>
/// HF <c>BertForTokenClassification</c>: every position's hidden state → dropout → <c>classifier</c>
/// [num_labels, H]; no pooler. Loss: mean cross-entropy over positions whose label is not −100 and whose
/// attention_mask is 1 (HF v4.5.1).
/// </summary>
public sealed class BertForTokenClassification : nn.Module, IBertTaskModel
{
    /// <summary>Label value that is not scored (HF / PyTorch CrossEntropyLoss ignore_index).</summary>
    public const long IgnoreIndex = -100;

    public readonly BertModel bert;
    readonly Dropout dropout;
    public readonly Linear classifier;

    public BertForTokenClassification(BertConfig config) : base(nameof(BertForTokenClassification))
    {
        NumLabels = config.NumLabels;
        bert = new BertModel(config, addPoolingLayer: false);
        dropout = nn.Dropout(BertTaskModels.ClassifierDropout(config));
        classifier = nn.Linear(config.HiddenSize, NumLabels);
        RegisterComponents();
    }

    public BertModel Bert => bert;
    public int NumLabels { get; }
    public string Architecture => nameof(BertForTokenClassification);
    public BertConfig Describe(BertConfig config) => BertTaskModels.WithArchitecture(config, Architecture, NumLabels);

    /// <param name="labels">[B, L] int64 class ids, −100 where not scored (padding, special tokens, later sub-tokens)</param>
    public TokenClassifierOutput forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null, Tensor? labels = null)
    {
        var enc = bert.forward(inputIds, tokenTypeIds, attentionMask);
        var logits = classifier.forward(dropout.forward(enc.LastHiddenState));
        Tensor? loss = null;
        if (labels is not null)
        {
            var flat = labels.reshape(-1).to(ScalarType.Int64);
            if (attentionMask is not null)
                flat = where(attentionMask.reshape(-1) == 1, flat, full_like(flat, IgnoreIndex));
            loss = nn.functional.cross_entropy(ModelUtils.Float32(logits).reshape(-1, NumLabels), flat, ignore_index: IgnoreIndex);
        }
        return new TokenClassifierOutput(logits, loss, enc);
    }
}
