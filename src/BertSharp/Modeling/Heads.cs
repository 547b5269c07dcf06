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

/// <summary>A model that wraps a <see cref="BertModel"/> under the HF prefix <c>bert.</c>.</summary>
public interface IBertWithEncoder
{
    BertModel Bert { get; }
}
