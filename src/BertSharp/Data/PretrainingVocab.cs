using System.Security.Cryptography;
using System.Text;
using BertSharp.Tokenization;

namespace BertSharp.Data;

/// <summary>What example creation and masking need to know about the vocabulary.</summary>
public sealed class PretrainingVocab
{
    readonly bool[] _continuation;

    /// <param name="size">Vocabulary size; random replacement tokens are drawn uniformly from [0, size).</param>
    /// <param name="isContinuation">Per id: is it a WordPiece continuation piece (<c>##…</c>)? Used by whole-word masking.</param>
    public PretrainingVocab(int size, int padId, int clsId, int sepId, int maskId, bool[] isContinuation)
    {
        if (size <= 0) throw new ArgumentOutOfRangeException(nameof(size), size, "vocabulary size must be positive");
        if (isContinuation.Length != size) throw new ArgumentException($"isContinuation has {isContinuation.Length} entries, expected {size}");
        foreach (var (name, id) in new[] { ("pad", padId), ("cls", clsId), ("sep", sepId), ("mask", maskId) })
            if ((uint)id >= (uint)size) throw new ArgumentOutOfRangeException(name + "Id", id, $"outside the vocabulary (size {size})");
        Size = size; PadId = padId; ClsId = clsId; SepId = sepId; MaskId = maskId;
        _continuation = isContinuation;
    }

    public int Size { get; }
    public int PadId { get; }
    public int ClsId { get; }
    public int SepId { get; }
    public int MaskId { get; }

    public bool IsContinuation(int id) => (uint)id < (uint)_continuation.Length && _continuation[id];

    /// <summary>From a tokenizer vocabulary and its special-token ids; continuation = token starts with "##".</summary>
    public static PretrainingVocab From(Vocabulary vocab, int padId, int clsId, int sepId, int maskId)
    {
        var cont = new bool[vocab.Count];
        for (int i = 0; i < cont.Length; i++) cont[i] = vocab[i].StartsWith("##", StringComparison.Ordinal);
        return new PretrainingVocab(vocab.Count, padId, clsId, sepId, maskId, cont);
    }

    public static PretrainingVocab From(BertTokenizer tokenizer) =>
        From(tokenizer.Vocab, tokenizer.PadId, tokenizer.ClsId, tokenizer.SepId, tokenizer.MaskId);
}

/// <summary>Turns one sentence into WordPiece ids (no special tokens). Lets tests plug in synthetic tokenizers.</summary>
public interface ITextEncoder
{
    PretrainingVocab Vocab { get; }

    int[] Encode(string text);

    /// <summary>Identifies the vocabulary and tokenization options: part of the token-cache key.</summary>
    string Fingerprint { get; }
}

/// <summary><see cref="ITextEncoder"/> over <see cref="BertTokenizer"/>.</summary>
public sealed class BertTokenizerEncoder : ITextEncoder
{
    readonly BertTokenizer _tokenizer;

    public BertTokenizerEncoder(BertTokenizer tokenizer)
    {
        _tokenizer = tokenizer;
        Vocab = PretrainingVocab.From(tokenizer);
        var o = tokenizer.Options;
        var sb = new StringBuilder();
        sb.Append("bert-wordpiece;lower=").Append(o.DoLowerCase).Append(";strip=").Append(o.EffectiveStripAccents)
          .Append(";cjk=").Append(o.TokenizeChineseChars).Append(";maxchars=").Append(o.MaxInputCharsPerWord)
          .Append(";never=").Append(string.Join('\u0001', o.NeverSplit.OrderBy(x => x, StringComparer.Ordinal)))
          .Append(";specials=").Append(string.Join('\u0001', o.SpecialTokens)).Append(";vocab=");
        foreach (var t in tokenizer.Vocab.Tokens) sb.Append(t).Append('\n');
        Fingerprint = Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())));
    }

    public PretrainingVocab Vocab { get; }
    public string Fingerprint { get; }

    public int[] Encode(string text) => _tokenizer.ConvertTokensToIds(_tokenizer.Tokenize(text));
}
