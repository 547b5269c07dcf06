using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>Output of the pre-training heads.</summary>
/// <param name="PredictionLogits">[B, L, V], or [N, V] when scored at N given positions</param>
/// <param name="SeqRelationshipLogits">[B, 2]: index 0 = "B follows A", 1 = "B is random"</param>
public sealed record BertPreTrainingOutput(Tensor PredictionLogits, Tensor SeqRelationshipLogits, BertModelOutput Encoder);

/// <summary>BERT with the MLM and NSP heads, as pretrained by Google.</summary>
public sealed class BertForPreTraining : nn.Module, IBertWithEncoder
{
    public readonly BertModel bert;
    public readonly BertPreTrainingHeads cls;

    public BertForPreTraining(BertConfig config) : base(nameof(BertForPreTraining))
    {
        bert = new BertModel(config);
        cls = new BertPreTrainingHeads(config, bert.embeddings.word_embeddings.weight!);
        RegisterComponents();
    }

    public BertModel Bert => bert;

    /// <param name="mlmPositions">flat indices b·L + l of the positions to score (the masked ones), or null for all</param>
    public BertPreTrainingOutput forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null,
        Tensor? mlmPositions = null, bool outputHiddenStates = false)
    {
        var enc = bert.forward(inputIds, tokenTypeIds, attentionMask, outputHiddenStates);
        var mlm = cls.predictions.forward(Rows.Select(enc.LastHiddenState, mlmPositions));
        var nsp = cls.seq_relationship.forward(enc.PooledOutput!);
        return new BertPreTrainingOutput(mlm, nsp, enc);
    }
}
