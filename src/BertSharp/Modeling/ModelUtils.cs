using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>Initialisation, parameter counting and dtype helpers shared by every BERT module.</summary>
public static class ModelUtils
{
    /// <summary>
    /// HF <c>_init_weights</c>: Linear and Embedding weights ~ N(0, initializer_range), biases 0, the padding row 0,
    /// LayerNorm weight 1 and bias 0. Deterministic for a given <paramref name="seed"/>.
    /// </summary>
    public static void InitWeights(nn.Module model, BertConfig config, long seed = 42)
    {
        // The scope owns the temporary wrappers (a native Embedding hands out a new one per `.weight`), so none is
        // left to the finalizer thread, which could free it while libtorch still uses it (docs/native.md).
        using var scope = NewDisposeScope();
        using var gen = new Generator((ulong)seed);
        using var _ = no_grad();
        foreach (var (_, m) in model.named_modules())
        {
            switch (m)
            {
                case Linear lin:
                    lin.weight!.normal_(0, config.InitializerRange, generator: gen);
                    lin.bias?.zero_();
                    break;
                case Embedding emb:
                    emb.weight!.normal_(0, config.InitializerRange, generator: gen);
                    break;
                case LayerNorm ln:
                    ln.weight!.fill_(1.0);
                    ln.bias!.zero_();
                    break;
            }
        }
        // Padding row of the word embeddings and the MLM output bias start at zero.
        foreach (var (name, p) in model.named_parameters())
        {
            if (name.EndsWith("word_embeddings.weight", StringComparison.Ordinal)) p[config.PadTokenId].zero_();
            if (name.EndsWith("predictions.bias", StringComparison.Ordinal)) p.zero_();
        }
    }

    /// <summary>
    /// State-dict keys that alias another parameter (HF <c>_tied_weights_keys</c>): the MLM decoder's weight is the
    /// word-embedding matrix and its bias is <c>cls.predictions.bias</c>. Counted once, saved once, never "missing".
    /// </summary>
    public static bool IsTiedAlias(string key) =>
        key.EndsWith("predictions.decoder.weight", StringComparison.Ordinal) ||
        key.EndsWith("predictions.decoder.bias", StringComparison.Ordinal);

    /// <summary>Number of distinct parameters (tied tensors counted once, like HF's num_parameters()).</summary>
    public static long CountParameters(nn.Module model) =>
        model.named_parameters().Where(p => !IsTiedAlias(p.name)).Sum(p => p.parameter.numel());

    /// <summary>
    /// <paramref name="t"/> as float32 (itself when it already is). Losses are computed on float32 logits, so a bf16
    /// model (mixed-precision training) gets a float32 loss as in autocast; float32 models are unchanged.
    /// </summary>
    public static Tensor Float32(Tensor t) => t.dtype == ScalarType.Float32 ? t : t.to(ScalarType.Float32);

    /// <summary>
    /// Inference precision, autocast-style: the weights of every Linear inside the transformer layers (where nearly
    /// all FLOPs are) become <paramref name="dtype"/>; embeddings, LayerNorms, the residual stream, attention
    /// softmax, pooler and heads stay float32 (see <see cref="LinearExtensions.Apply"/>). Logits are therefore
    /// computed in float32: a bf16 residual stream or MLM decoder would round every value to 8 mantissa bits.
    /// Meant for inference; train with float32 master weights.
    /// </summary>
    public static void ToInferenceDType(nn.Module model, ScalarType dtype)
    {
        if (dtype == ScalarType.Float32) return;
        using var scope = NewDisposeScope();  // the converted parameters detach themselves; temporaries die here
        var bert = model as BertModel ?? (model as IBertWithEncoder)?.Bert
            ?? throw new ArgumentException($"{model.GetType().Name} has no BERT encoder to convert");
        foreach (var (_, m) in bert.encoder.named_modules())
            if (m is Linear lin) lin.to(dtype);
    }
}

/// <summary>Runs a Linear whose weights may be in a lower precision than its input (mixed-precision inference).</summary>
public static class LinearExtensions
{
    /// <summary>y = linear(x) computed in the weight's dtype and returned in x's dtype.</summary>
    public static Tensor Apply(this Linear linear, Tensor x)
    {
        var w = linear.weight!.dtype;
        return w == x.dtype ? linear.forward(x) : linear.forward(x.to(w)).to(x.dtype);
    }
}
