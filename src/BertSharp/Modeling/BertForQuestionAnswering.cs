using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>Output of <see cref="BertForQuestionAnswering"/> (HF <c>QuestionAnsweringModelOutput</c>).</summary>
/// <param name="StartLogits">[B, L]</param>
/// <param name="EndLogits">[B, L]</param>
/// <param name="Loss">scalar, when start and end positions were given</param>
public sealed record QuestionAnsweringModelOutput(Tensor StartLogits, Tensor EndLogits, Tensor? Loss, BertModelOutput Encoder);

/// <summary>
/// HF <c>BertForQuestionAnswering</c>: every position's hidden state → <c>qa_outputs</c> [2, H] → start and end
/// logits; no pooler, no dropout. Loss as HF: positions clamped to [0, L], where L (outside the sequence) is the
/// ignored index, and the mean of the start and end cross-entropies.
/// </summary>
public sealed class BertForQuestionAnswering : nn.Module, IBertTaskModel
{
    public readonly BertModel bert;
    public readonly Linear qa_outputs;

    public BertForQuestionAnswering(BertConfig config) : base(nameof(BertForQuestionAnswering))
    {
        if (config.NumLabels != 2)
            throw new ArgumentException($"BertForQuestionAnswering needs num_labels 2 (start, end); the config has {config.NumLabels}");
        bert = new BertModel(config, addPoolingLayer: false);
        qa_outputs = nn.Linear(config.HiddenSize, 2);
        RegisterComponents();
    }

    public BertModel Bert => bert;
    public string Architecture => nameof(BertForQuestionAnswering);
    public BertConfig Describe(BertConfig config) => BertTaskModels.WithArchitecture(config, Architecture);

    /// <param name="startPositions">[B] int64 token index of the answer start (out of range = not scored)</param>
    /// <param name="endPositions">[B] int64 token index of the answer end</param>
    public QuestionAnsweringModelOutput forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null,
        Tensor? startPositions = null, Tensor? endPositions = null)
    {
        var enc = bert.forward(inputIds, tokenTypeIds, attentionMask);
        var logits = qa_outputs.forward(enc.LastHiddenState);           // [B, L, 2]
        var start = logits[.., .., 0].contiguous();
        var end = logits[.., .., 1].contiguous();
        Tensor? loss = null;
        if (startPositions is not null && endPositions is not null)
        {
            long ignored = start.shape[1];
            var s = startPositions.reshape(-1).to(ScalarType.Int64).clamp(0, ignored);
            var e = endPositions.reshape(-1).to(ScalarType.Int64).clamp(0, ignored);
            loss = (nn.functional.cross_entropy(ModelUtils.Float32(start), s, ignore_index: ignored) +
                    nn.functional.cross_entropy(ModelUtils.Float32(end), e, ignore_index: ignored)) / 2;
        }
        return new QuestionAnsweringModelOutput(start, end, loss, enc);
    }
}
