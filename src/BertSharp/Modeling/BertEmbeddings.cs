using TorchSharp;
using TorchSharp.Modules;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>word + position + token-type embeddings, then LayerNorm and dropout.</summary>
public sealed class BertEmbeddings : nn.Module
{
    // Field names are Hugging Face state-dict keys.
    public readonly Embedding word_embeddings;
    public readonly Embedding position_embeddings;
    public readonly Embedding token_type_embeddings;
    public readonly LayerNorm LayerNorm;
    readonly Dropout dropout;

    public BertEmbeddings(BertConfig c) : base(nameof(BertEmbeddings))
    {
        word_embeddings = nn.Embedding(c.VocabSize, c.HiddenSize, padding_idx: c.PadTokenId);
        position_embeddings = nn.Embedding(c.MaxPositionEmbeddings, c.HiddenSize);
        token_type_embeddings = nn.Embedding(c.TypeVocabSize, c.HiddenSize);
        LayerNorm = nn.LayerNorm(c.HiddenSize, c.LayerNormEps);
        dropout = nn.Dropout(c.HiddenDropoutProb);
        RegisterComponents();
    }

    /// <param name="inputIds">[B, L] int64</param>
    /// <param name="tokenTypeIds">[B, L] int64, or null for all zeros</param>
    public Tensor forward(Tensor inputIds, Tensor? tokenTypeIds)
    {
        long length = inputIds.shape[1];
        if (length > position_embeddings.weight!.shape[0])
            throw new ArgumentException($"sequence length {length} exceeds max_position_embeddings {position_embeddings.weight.shape[0]}");
        using var positions = arange(length, dtype: ScalarType.Int64, device: inputIds.device).unsqueeze(0);
        var x = word_embeddings.forward(inputIds) + position_embeddings.forward(positions);
        if (tokenTypeIds is null) x = x + token_type_embeddings.weight![0];
        else x = x + token_type_embeddings.forward(tokenTypeIds);
        return dropout.forward(LayerNorm.forward(x));
    }
}
