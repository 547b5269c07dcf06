using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>Feed-forward up-projection with the configured activation.</summary>
public sealed class BertIntermediate : nn.Module
{
    public readonly Linear dense;
    readonly string _act;

    public BertIntermediate(BertConfig c) : base(nameof(BertIntermediate))
    {
        dense = nn.Linear(c.HiddenSize, c.IntermediateSize);
        _act = c.HiddenAct;
        RegisterComponents();
    }

    public Tensor forward(Tensor hidden) => Activations.Apply(_act, dense.Apply(hidden));
}

/// <summary>Feed-forward down-projection, dropout, residual + LayerNorm (HF <c>BertOutput</c>).</summary>
public sealed class BertOutput : nn.Module
{
    public readonly Linear dense;
    public readonly LayerNorm LayerNorm;
    readonly Dropout dropout;

    public BertOutput(BertConfig c) : base(nameof(BertOutput))
    {
        dense = nn.Linear(c.IntermediateSize, c.HiddenSize);
        LayerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        dropout = nn.Dropout(c.HiddenDropoutProb);
        RegisterComponents();
    }

    public Tensor forward(Tensor hidden, Tensor residual) => LayerNorm.forward(dropout.forward(dense.Apply(hidden)) + residual);
}

/// <summary>One transformer block: attention then feed-forward.</summary>
public sealed class BertLayer : nn.Module
{
    public readonly BertAttention attention;
    public readonly BertIntermediate intermediate;
    public readonly BertOutput output;

    public BertLayer(BertConfig c) : base(nameof(BertLayer))
    {
        attention = new BertAttention(c);
        intermediate = new BertIntermediate(c);
        output = new BertOutput(c);
        RegisterComponents();
    }

    public Tensor forward(Tensor hidden, Tensor? mask)
    {
        var attended = attention.forward(hidden, mask);
        return output.forward(intermediate.forward(attended), attended);
    }
}

/// <summary>The stack of <see cref="BertLayer"/>s.</summary>
public sealed class BertEncoder : nn.Module
{
    public readonly ModuleList<BertLayer> layer;

    public BertEncoder(BertConfig c) : base(nameof(BertEncoder))
    {
        layer = nn.ModuleList(Enumerable.Range(0, c.NumHiddenLayers).Select(_ => new BertLayer(c)).ToArray());
        RegisterComponents();
    }

    /// <summary>Runs every layer; when <paramref name="allHidden"/> is given, appends each layer's output to it.</summary>
    public Tensor forward(Tensor hidden, Tensor? mask, List<Tensor>? allHidden)
    {
        foreach (var block in layer)
        {
            hidden = block.forward(hidden, mask);
            allHidden?.Add(hidden);
        }
        return hidden;
    }
}
