using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>BERT with only the NSP head.</summary>
public sealed class BertForNextSentencePrediction : nn.Module, IBertWithEncoder
{
    public readonly BertModel bert;
    public readonly BertOnlyNSPHead cls;

    public BertForNextSentencePrediction(BertConfig config) : base(nameof(BertForNextSentencePrediction))
    {
        bert = new BertModel(config);
        cls = new BertOnlyNSPHead(config);
        RegisterComponents();
    }

    public BertModel Bert => bert;

    /// <returns>[B, 2] logits: index 0 = "B follows A"</returns>
    public Tensor forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null) =>
        cls.seq_relationship.forward(bert.forward(inputIds, tokenTypeIds, attentionMask).PooledOutput!);
}
