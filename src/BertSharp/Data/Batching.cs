using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Data;

/// <summary>
/// A collated batch of int64 tensors (CPU). Dispose it when done (it owns its tensors). MLM labels are stored in
/// one encoding, the one the trainer uses: the flat indices of the masked positions and their labels
/// (<see cref="MaskedFlatPositions"/>, <see cref="MaskedFlatLabels"/>); <see cref="DenseLabels"/> derives HF's [B, L].
/// </summary>
public sealed class PretrainingBatch : IDisposable
{
    /// <summary>[B, L] masked input ids, padded with the pad id to the longest example of the batch.</summary>
    public required Tensor InputIds { get; init; }
    /// <summary>[B, L] segment ids (0 for [CLS] A [SEP], 1 for B [SEP], 0 on padding).</summary>
    public required Tensor TokenTypeIds { get; init; }
    /// <summary>[B, L] 1 on real tokens, 0 on padding.</summary>
    public required Tensor AttentionMask { get; init; }
    /// <summary>[N] flat indices b·L + pos of every real masked position (row-major), for gathering rows of a [B·L, H] view.</summary>
    public required Tensor MaskedFlatPositions { get; init; }
    /// <summary>[N] labels matching <see cref="MaskedFlatPositions"/>.</summary>
    public required Tensor MaskedFlatLabels { get; init; }
    /// <summary>[B] 0 = is next, 1 = random; null in MLM-only modes.</summary>
    public Tensor? NextSentenceLabels { get; init; }

    public int BatchSize { get; init; }
    public int SequenceLength { get; init; }
    /// <summary>Total real masked positions (N).</summary>
    public int MaskedCount { get; init; }
    /// <summary>Dataset indices of the rows (when produced by <see cref="PretrainingDataset"/>).</summary>
    public int[] Indices { get; init; } = [];

    /// <summary>[B, L] Hugging Face–style MLM labels derived from the flat encoding: the original id at masked positions,
    /// −100 elsewhere (for a loss over every position). The tensor goes to the current dispose scope.</summary>
    public Tensor DenseLabels() =>
        torch.full([(long)BatchSize * SequenceLength], PretrainingCollator.IgnoreIndex, ScalarType.Int64)
            .index_put_(MaskedFlatLabels, MaskedFlatPositions).view(BatchSize, SequenceLength);

    public void Dispose()
    {
        InputIds.Dispose(); TokenTypeIds.Dispose(); AttentionMask.Dispose();
        MaskedFlatPositions.Dispose(); MaskedFlatLabels.Dispose(); NextSentenceLabels?.Dispose();
    }
}

/// <summary>Pads and stacks examples into a <see cref="PretrainingBatch"/>.</summary>
public static class PretrainingCollator
{
    public const long IgnoreIndex = -100;

    /// <param name="padToMultipleOf">Round the padded length up to a multiple of this (1 = longest example exactly).</param>
    public static PretrainingBatch Collate(IReadOnlyList<PretrainingExample> examples, int padId, int padToMultipleOf = 1, int[]? indices = null)
    {
        if (examples.Count == 0) throw new ArgumentException("cannot collate an empty batch", nameof(examples));
        if (padToMultipleOf < 1) throw new ArgumentOutOfRangeException(nameof(padToMultipleOf));
        int b = examples.Count;
        int l = examples.Max(e => e.Length);
        l = (l + padToMultipleOf - 1) / padToMultipleOf * padToMultipleOf;
        bool hasNsp = examples[0].NextSentenceLabel is not null;
        if (examples.Any(e => (e.NextSentenceLabel is not null) != hasNsp))
            throw new ArgumentException("a batch mixes examples with and without next-sentence labels", nameof(examples));

        var ids = new long[b * l];
        var types = new long[b * l];
        var mask = new long[b * l];
        Array.Fill(ids, padId);
        int n = examples.Sum(e => e.MaskedPositions.Length);
        var flatPositions = new long[n];
        var flatLabels = new long[n];
        var nsp = hasNsp ? new long[b] : null;
        int f = 0;
        for (int r = 0; r < b; r++)
        {
            var e = examples[r];
            if (e.TokenTypeIds.Length != e.Length) throw new ArgumentException($"example {r}: token types and ids differ in length");
            if (e.MaskedLabels.Length != e.MaskedPositions.Length) throw new ArgumentException($"example {r}: masked positions and labels differ in length");
            for (int i = 0; i < e.Length; i++)
            {
                ids[r * l + i] = e.InputIds[i];
                types[r * l + i] = e.TokenTypeIds[i];
                mask[r * l + i] = 1;
            }
            for (int k = 0; k < e.MaskedPositions.Length; k++)
            {
                int pos = e.MaskedPositions[k];
                if ((uint)pos >= (uint)e.Length) throw new ArgumentException($"example {r}: masked position {pos} outside its {e.Length} tokens");
                flatPositions[f] = (long)r * l + pos;
                flatLabels[f] = e.MaskedLabels[k];
                f++;
            }
            if (nsp is not null) nsp[r] = e.NextSentenceLabel!.Value;
        }

        using var scope = torch.NewDisposeScope();
        var batch = new PretrainingBatch
        {
            InputIds = torch.tensor(ids, [b, l], ScalarType.Int64).MoveToOuterDisposeScope(),
            TokenTypeIds = torch.tensor(types, [b, l], ScalarType.Int64).MoveToOuterDisposeScope(),
            AttentionMask = torch.tensor(mask, [b, l], ScalarType.Int64).MoveToOuterDisposeScope(),
            MaskedFlatPositions = torch.tensor(flatPositions, [n], ScalarType.Int64).MoveToOuterDisposeScope(),
            MaskedFlatLabels = torch.tensor(flatLabels, [n], ScalarType.Int64).MoveToOuterDisposeScope(),
            NextSentenceLabels = nsp is null ? null : torch.tensor(nsp, [b], ScalarType.Int64).MoveToOuterDisposeScope(),
            BatchSize = b, SequenceLength = l, MaskedCount = n, Indices = indices ?? [],
        };
        return batch;
    }
}

/// <summary>How a dataset's epoch is cut into batches.</summary>
public sealed record BatchingOptions
{
    public int BatchSize { get; init; } = 32;
    /// <summary>Drop the last incomplete batch of an epoch.</summary>
    public bool DropLast { get; init; }
    /// <summary>Shuffle the order per (seed, epoch); false = dataset order.</summary>
    public bool Shuffle { get; init; } = true;
    /// <summary>0 = no bucketing. Otherwise the shuffled order is cut into windows of this many batches, each window is
    /// sorted by length and cut into batches, and the batches are shuffled (less padding, still random).</summary>
    public int BucketWindowBatches { get; init; }
    /// <summary>Round each batch's padded length up to a multiple of this.</summary>
    public int PadToMultipleOf { get; init; } = 1;
}
