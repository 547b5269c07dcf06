using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>What <see cref="BertModel.forward"/> returns.</summary>
/// <param name="LastHiddenState">[B, L, H]</param>
/// <param name="PooledOutput">[B, H] tanh(dense([CLS])), or null when the model has no pooler</param>
/// <param name="HiddenStates">embeddings output followed by every layer's output, when requested</param>
public sealed record BertModelOutput(Tensor LastHiddenState, Tensor? PooledOutput, IReadOnlyList<Tensor>? HiddenStates);

/// <summary>tanh(dense(hidden state of the first token)).</summary>
public sealed class BertPooler : nn.Module
{
    public readonly Linear dense;

    public BertPooler(BertConfig c) : base(nameof(BertPooler))
    {
        dense = nn.Linear(c.HiddenSize, c.HiddenSize);
        RegisterComponents();
    }

    public Tensor forward(Tensor hidden) => tanh(dense.forward(hidden[.., 0]));
}

/// <summary>The BERT encoder: embeddings → transformer layers → (optional) pooler.</summary>
public sealed class BertModel : nn.Module
{
    public readonly BertEmbeddings embeddings;
    public readonly BertEncoder encoder;
    public readonly BertPooler? pooler;

    public BertModel(BertConfig config, bool addPoolingLayer = true) : base(nameof(BertModel))
    {
        // MKL caches its CPU check at its first GEMM, so its AVX-512 dispatch must be in place before any model runs
        // (measured: `bench mkl-late`); Runtime.Initialize does it too, this covers library users who do not call it.
        Inference.Runtime.EnsureMklDispatch();
        Config = config;
        embeddings = new BertEmbeddings(config);
        encoder = new BertEncoder(config);
        pooler = addPoolingLayer ? new BertPooler(config) : null;
        RegisterComponents();
    }

    public BertConfig Config { get; }

    /// <param name="inputIds">[B, L] int64</param>
    /// <param name="tokenTypeIds">[B, L] int64 or null (all segment A)</param>
    /// <param name="attentionMask">[B, L] with 1 for real tokens and 0 for padding, or null (no padding)</param>
    /// <param name="outputHiddenStates">also return the embeddings output and every layer's output</param>
    public BertModelOutput forward(Tensor inputIds, Tensor? tokenTypeIds = null, Tensor? attentionMask = null, bool outputHiddenStates = false)
    {
        var hidden = embeddings.forward(inputIds, tokenTypeIds);
        var all = outputHiddenStates ? new List<Tensor> { hidden } : null;
        using var mask = AdditiveMask(attentionMask, hidden.dtype);
        var last = encoder.forward(hidden, mask, all);
        return new BertModelOutput(last, pooler?.forward(last), all);
    }

    /// <summary>
    /// [B, L] keep-mask → additive [B, 1, 1, L] mask (0 keep, −10000 drop, as HF v4.5.1), or null when nothing is
    /// padded: SDPA then runs without a mask, which is measurably faster.
    /// </summary>
    public static Tensor? AdditiveMask(Tensor? attentionMask, ScalarType dtype)
    {
        if (attentionMask is null) return null;
        using (no_grad())
            if (attentionMask.min().item<long>() != 0) return null;
        using var keep = attentionMask.to(dtype).unsqueeze(1).unsqueeze(2);
        return (1.0 - keep) * -10000.0;
    }
}
