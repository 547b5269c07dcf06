using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>dense → activation → LayerNorm before the vocabulary projection.</summary>
public sealed class BertPredictionHeadTransform : nn.Module
{
    public readonly Linear dense;
    public readonly LayerNorm LayerNorm;
    readonly string _act;

    public BertPredictionHeadTransform(BertConfig c) : base(nameof(BertPredictionHeadTransform))
    {
        dense = nn.Linear(c.HiddenSize, c.HiddenSize);
        LayerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        _act = c.HiddenAct;
        RegisterComponents();
    }

    public Tensor forward(Tensor x) => LayerNorm.forward(Activations.Apply(_act, dense.forward(x)));
}

/// <summary>MLM head: transform, then a decoder whose weight is tied to the word embeddings, plus an output bias.</summary>
public sealed class BertLMPredictionHead : nn.Module
{
    public readonly BertPredictionHeadTransform transform;
    public readonly Linear decoder;
    public readonly Parameter bias;

    public BertLMPredictionHead(BertConfig c, Parameter wordEmbeddings) : base(nameof(BertLMPredictionHead))
    {
        transform = new BertPredictionHeadTransform(c);
        decoder = nn.Linear(c.HiddenSize, c.VocabSize, hasBias: false);
        bias = new Parameter(zeros(c.VocabSize));
        RegisterComponents();
        // Tie like HF: decoder.weight IS the word-embedding matrix and decoder.bias IS `bias`.
        decoder.weight = wordEmbeddings;
        decoder.bias = bias;
    }

    public Tensor forward(Tensor hidden) => decoder.forward(transform.forward(hidden));
}

/// <summary>HF <c>BertOnlyMLMHead</c> (the <c>cls</c> module of BertForMaskedLM).</summary>
public sealed class BertOnlyMLMHead : nn.Module
{
    public readonly BertLMPredictionHead predictions;

    public BertOnlyMLMHead(BertConfig c, Parameter wordEmbeddings) : base(nameof(BertOnlyMLMHead))
    {
        predictions = new BertLMPredictionHead(c, wordEmbeddings);
        RegisterComponents();
    }
}

/// <summary>HF <c>BertOnlyNSPHead</c> (the <c>cls</c> module of BertForNextSentencePrediction).</summary>
public sealed class BertOnlyNSPHead : nn.Module
{
    public readonly Linear seq_relationship;

    public BertOnlyNSPHead(BertConfig c) : base(nameof(BertOnlyNSPHead))
    {
        seq_relationship = nn.Linear(c.HiddenSize, 2);
        RegisterComponents();
    }
}

/// <summary>HF <c>BertPreTrainingHeads</c>: MLM predictions + NSP classifier.</summary>
public sealed class BertPreTrainingHeads : nn.Module
{
    public readonly BertLMPredictionHead predictions;
    public readonly Linear seq_relationship;

    public BertPreTrainingHeads(BertConfig c, Parameter wordEmbeddings) : base(nameof(BertPreTrainingHeads))
    {
        predictions = new BertLMPredictionHead(c, wordEmbeddings);
        seq_relationship = nn.Linear(c.HiddenSize, 2);
        RegisterComponents();
    }
}

/// <summary>Rows of [B, L, H] at flat positions (b·L + l); all rows when <c>flatPositions</c> is null.</summary>
static class Rows
{
    public static Tensor Select(Tensor hidden, Tensor? flatPositions) =>
        flatPositions is null ? hidden : hidden.reshape(-1, hidden.shape[^1]).index_select(0, flatPositions);
}

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

/// <summary>A model that wraps a <see cref="BertModel"/> under the HF prefix <c>bert.</c>.</summary>
public interface IBertWithEncoder
{
    BertModel Bert { get; }
}
