using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>Output of <see cref="BertForMultipleChoice"/> (HF <c>MultipleChoiceModelOutput</c>).</summary>
/// <param name="Logits">[B, C]: one score per choice</param>
/// <param name="Loss">scalar, when labels were given</param>
/// <param name="Encoder">the encoder run over the flattened [B·C, L] choices</param>
public sealed record MultipleChoiceModelOutput(Tensor Logits, Tensor? Loss, BertModelOutput Encoder);

/// <summary>
/// HF <c>BertForMultipleChoice</c>: the C choices of each example are flattened to B·C sequences, each pooler
/// output → dropout → <c>classifier</c> [1, H], and the scores reshaped to [B, C]; loss = cross-entropy over the
/// choices.
/// </summary>
public sealed class BertForMultipleChoice : nn.Module, IBertTaskModel
{
    public readonly BertModel bert;
    readonly Dropout dropout;
    public readonly Linear classifier;

    public BertForMultipleChoice(BertConfig config) : base(nameof(BertForMultipleChoice))
    {
        bert = new BertModel(config);
        dropout = nn.Dropout(BertTaskModels.ClassifierDropout(config));
        classifier = nn.Linear(config.HiddenSize, 1);
        RegisterComponents();
    }

    public BertModel Bert => bert;
    public string Architecture => nameof(BertForMultipleChoice);
    public BertConfig Describe(BertConfig config) => BertTaskModels.WithArchitecture(config, Architecture);

    /// <param name="inputIds">[B, C, L] int64</param>
    /// <param name="tokenTypeIds">[B, C, L] or null</param>
    /// <param name="attentionMask">[B, C, L] or null</param>
    /// <param name="labels">[B] int64: the index of the right choice</param>
    public MultipleChoiceModelOutput forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null, Tensor? labels = null)
    {
        if (inputIds.dim() != 3) throw new ArgumentException($"multiple-choice input_ids must be [batch, choices, length] (got {inputIds.dim()} dimensions)");
        long choices = inputIds.shape[1], length = inputIds.shape[2];
        var enc = bert.forward(inputIds.reshape(-1, length), tokenTypeIds?.reshape(-1, length), attentionMask?.reshape(-1, length));
        var logits = classifier.forward(dropout.forward(enc.PooledOutput!)).reshape(-1, choices);
        var loss = labels is null ? null : nn.functional.cross_entropy(ModelUtils.Float32(logits), labels.reshape(-1).to(ScalarType.Int64));
        return new MultipleChoiceModelOutput(logits, loss, enc);
    }
}
