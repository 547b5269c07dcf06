using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>Multi-head self-attention on <c>scaled_dot_product_attention</c>.</summary>
public sealed class BertSelfAttention : nn.Module
{
    public readonly Linear query, key, value;
    readonly int _heads, _headDim;
    readonly double _dropout;

    public BertSelfAttention(BertConfig c) : base(nameof(BertSelfAttention))
    {
        query = nn.Linear(c.HiddenSize, c.HiddenSize);
        key = nn.Linear(c.HiddenSize, c.HiddenSize);
        value = nn.Linear(c.HiddenSize, c.HiddenSize);
        _heads = c.NumAttentionHeads;
        _headDim = c.HeadDim;
        _dropout = c.AttentionProbsDropoutProb;
        RegisterComponents();
    }

    /// <param name="hidden">[B, L, H]</param>
    /// <param name="mask">additive mask broadcastable to [B, heads, L, L], or null when nothing is padded</param>
    public Tensor forward(Tensor hidden, Tensor? mask)
    {
        long b = hidden.shape[0], l = hidden.shape[1];
        Tensor Split(Linear proj) => proj.Apply(hidden).view(b, l, _heads, _headDim).transpose(1, 2);
        var context = nn.functional.scaled_dot_product_attention(
            Split(query), Split(key), Split(value), mask, training ? _dropout : 0.0);
        return context.transpose(1, 2).reshape(b, l, (long)_heads * _headDim);
    }
}

/// <summary>Attention output projection, dropout, residual + LayerNorm.</summary>
public sealed class BertSelfOutput : nn.Module
{
    public readonly Linear dense;
    public readonly LayerNorm LayerNorm;
    readonly Dropout dropout;

    public BertSelfOutput(BertConfig c) : base(nameof(BertSelfOutput))
    {
        dense = nn.Linear(c.HiddenSize, c.HiddenSize);
        LayerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        dropout = nn.Dropout(c.HiddenDropoutProb);
        RegisterComponents();
    }

    public Tensor forward(Tensor hidden, Tensor residual) => LayerNorm.forward(dropout.forward(dense.Apply(hidden)) + residual);
}

/// <summary>Self-attention followed by its output block (HF <c>BertAttention</c>).</summary>
public sealed class BertAttention : nn.Module
{
    public readonly BertSelfAttention self;
    public readonly BertSelfOutput output;

    public BertAttention(BertConfig c) : base(nameof(BertAttention))
    {
        self = new BertSelfAttention(c);
        output = new BertSelfOutput(c);
        RegisterComponents();
    }

    public Tensor forward(Tensor hidden, Tensor? mask) => output.forward(self.forward(hidden, mask), hidden);
}
