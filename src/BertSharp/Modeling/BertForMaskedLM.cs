using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>BERT with only the MLM head (no pooler), as HF's BertForMaskedLM.</summary>
public sealed class BertForMaskedLM : nn.Module, IBertWithEncoder
{
    public readonly BertModel bert;
    public readonly BertOnlyMLMHead cls;

    public BertForMaskedLM(BertConfig config) : base(nameof(BertForMaskedLM))
    {
        bert = new BertModel(config, addPoolingLayer: false);
        cls = new BertOnlyMLMHead(config, bert.embeddings.word_embeddings.weight!);
        RegisterComponents();
    }

    public BertModel Bert => bert;

    /// <returns>[B, L, V] logits, or [N, V] at the given flat positions</returns>
    public Tensor forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null, Tensor? mlmPositions = null)
    {
        var enc = bert.forward(inputIds, tokenTypeIds, attentionMask);
        return cls.predictions.forward(Rows.Select(enc.LastHiddenState, mlmPositions));
    }
}
