using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training.Pretraining;

/// <summary>
/// One MLM/NSP training example (Google's <c>TrainingInstance</c> after masking): [CLS] A [SEP] B [SEP] ids with the
/// masked positions already replaced (by [MASK], a random token or themselves) and the original ids as labels.
/// </summary>
/// <param name="InputIds">token ids, unpadded</param>
/// <param name="SegmentIds">0 for [CLS] A [SEP], 1 for B [SEP]</param>
/// <param name="MaskedPositions">positions (ascending) whose original ids are to be predicted</param>
/// <param name="MaskedLabels">the original ids at <paramref name="MaskedPositions"/></param>
/// <param name="IsRandomNext">NSP label: true when B is a random segment (class 1), false when B follows A (class 0)</param>
public sealed record PretrainingExample(int[] InputIds, int[] SegmentIds, int[] MaskedPositions, int[] MaskedLabels, bool IsRandomNext);

/// <summary>
/// A collated batch of <see cref="PretrainingExample"/>s, padded to its longest sequence. The attention mask is null
/// when nothing is padded (faster attention), and the MLM targets are given as flat positions b·L + l so that the
/// model scores only the masked rows.
/// </summary>
public sealed class PretrainingBatch
{
    public required Tensor InputIds { get; init; }
    public required Tensor TokenTypeIds { get; init; }
    public Tensor? AttentionMask { get; init; }
    /// <summary>[N] int64 flat indices b·L + l of the masked positions.</summary>
    public required Tensor MlmPositions { get; init; }
    /// <summary>[N] int64 original ids at <see cref="MlmPositions"/>.</summary>
    public required Tensor MlmLabels { get; init; }
    /// <summary>[B] int64: 0 = B follows A, 1 = random.</summary>
    public required Tensor NspLabels { get; init; }
    public int Sequences { get; init; }
    /// <summary>Non-padding tokens.</summary>
    public long Tokens { get; init; }

    /// <summary>Pads and stacks examples (the tensors belong to the current dispose scope).</summary>
    public static PretrainingBatch Collate(IReadOnlyList<PretrainingExample> examples, int padId = 0)
    {
        if (examples.Count == 0) throw new ArgumentException("cannot collate an empty batch");
        int b = examples.Count;
        int len = examples.Max(e => e.InputIds.Length);
        int masked = examples.Sum(e => e.MaskedPositions.Length);
        var ids = new long[b * len];
        var types = new long[b * len];
        long[]? mask = null;
        var positions = new long[masked];
        var labels = new long[masked];
        var nsp = new long[b];
        long tokens = 0;
        int k = 0;
        for (int i = 0; i < b; i++)
        {
            var e = examples[i];
            int n = e.InputIds.Length;
            if (e.SegmentIds.Length != n) throw new ArgumentException($"example {i}: {n} ids but {e.SegmentIds.Length} segment ids");
            if (e.MaskedLabels.Length != e.MaskedPositions.Length) throw new ArgumentException($"example {i}: masked positions and labels differ in length");
            for (int t = 0; t < len; t++)
            {
                ids[i * len + t] = t < n ? e.InputIds[t] : padId;
                types[i * len + t] = t < n ? e.SegmentIds[t] : 0;
            }
            if (n < len)
            {
                mask ??= Enumerable.Repeat(1L, b * len).ToArray();
                for (int t = n; t < len; t++) mask[i * len + t] = 0;
            }
            for (int j = 0; j < e.MaskedPositions.Length; j++)
            {
                int p = e.MaskedPositions[j];
                if ((uint)p >= (uint)n) throw new ArgumentException($"example {i}: masked position {p} is outside the sequence (length {n})");
                positions[k] = (long)i * len + p;
                labels[k] = e.MaskedLabels[j];
                k++;
            }
            nsp[i] = e.IsRandomNext ? 1 : 0;
            tokens += n;
        }
        var shape = new long[] { b, len };
        return new PretrainingBatch
        {
            InputIds = tensor(ids, shape),
            TokenTypeIds = tensor(types, shape),
            AttentionMask = mask is null ? null : tensor(mask, shape),
            MlmPositions = tensor(positions),
            MlmLabels = tensor(labels),
            NspLabels = tensor(nsp),
            Sequences = b,
            Tokens = tokens,
        };
    }
}
