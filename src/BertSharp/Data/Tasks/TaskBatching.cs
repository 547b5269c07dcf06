using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Data.Tasks;

/// <summary>
/// Length-bucketed batches with dynamic padding: the feature indices are shuffled per (seed, epoch), cut into pools
/// of <c>poolBatches</c> batches, each pool is sorted by length (ties by index) and cut into batches, and the batches
/// are shuffled again. Batches hold rows of similar length, so padding to the batch's longest row wastes little, and
/// the order is still random and a pure function of (seed, epoch).
/// </summary>
public static class LengthBucketBatcher
{
    /// <param name="lengths">Row lengths (e.g. <see cref="TaskFeature.Length"/>).</param>
    /// <param name="shuffle">False: dataset order, no bucketing (evaluation).</param>
    /// <param name="poolBatches">Batches per sorted pool; 0 = no bucketing (plain shuffle).</param>
    public static List<int[]> Batches(IReadOnlyList<int> lengths, int batchSize, ulong seed, int epoch, bool shuffle = true,
        int poolBatches = 50, bool dropLast = false)
    {
        if (batchSize < 1) throw new ArgumentOutOfRangeException(nameof(batchSize), batchSize, "the batch size must be positive");
        if (poolBatches < 0) throw new ArgumentOutOfRangeException(nameof(poolBatches), poolBatches, "must be non-negative");
        var order = Enumerable.Range(0, lengths.Count).ToArray();
        var batches = new List<int[]>();
        if (!shuffle)
        {
            Cut(order, batchSize, dropLast, batches);
            return batches;
        }
        DataRng.For(seed, TaskRngPurpose.Order, (ulong)epoch).Shuffle<int>(order.AsSpan());
        if (poolBatches > 0)
        {
            int pool = poolBatches * batchSize;
            for (int p = 0; p < order.Length; p += pool)
            {
                int n = Math.Min(pool, order.Length - p);
                Array.Sort(order, p, n, Comparer<int>.Create((a, b) => lengths[a] != lengths[b] ? lengths[a].CompareTo(lengths[b]) : a.CompareTo(b)));
            }
        }
        Cut(order, batchSize, dropLast, batches);
        DataRng.For(seed, TaskRngPurpose.BatchOrder, (ulong)epoch).Shuffle<int[]>(batches);
        return batches;
    }

    static void Cut(int[] order, int batchSize, bool dropLast, List<int[]> batches)
    {
        for (int i = 0; i < order.Length; i += batchSize)
        {
            int n = Math.Min(batchSize, order.Length - i);
            if (n < batchSize && dropLast) break;
            batches.Add(order.AsSpan(i, n).ToArray());
        }
    }
}

internal static class TaskRngPurpose
{
    public const ulong Order = 101;
    public const ulong BatchOrder = 102;
}

/// <summary>
/// A padded batch of task features as CPU tensors (dispose it). Padding: [PAD] ids, token type 0, attention 0,
/// token labels −100. <see cref="Labels"/> is [B] int64 (classification), [B] float32 (regression) or [B, L] int64
/// (token classification); null when the features have no labels.
/// </summary>
public sealed class TaskBatch : IDisposable
{
    public required Tensor InputIds { get; init; }
    public required Tensor TokenTypeIds { get; init; }
    public required Tensor AttentionMask { get; init; }
    public Tensor? Labels { get; init; }
    /// <summary>QA: [B] int64 answer start/end positions.</summary>
    public Tensor? StartPositions { get; init; }
    public Tensor? EndPositions { get; init; }
    /// <summary>Indices of the rows in the feature list.</summary>
    public required int[] Indices { get; init; }
    public int BatchSize => Indices.Length;
    public int SequenceLength { get; init; }

    public void Dispose()
    {
        InputIds.Dispose(); TokenTypeIds.Dispose(); AttentionMask.Dispose();
        Labels?.Dispose(); StartPositions?.Dispose(); EndPositions?.Dispose();
    }

    /// <summary>Pads <paramref name="features"/>[<paramref name="indices"/>] to the longest row (rounded up to <paramref name="padToMultipleOf"/>).</summary>
    /// <param name="kind">Which labels to build; QA builds start/end positions.</param>
    public static TaskBatch Collate(IReadOnlyList<TaskFeature> features, int[] indices, int padId, TaskKind kind, int padToMultipleOf = 1)
    {
        if (indices.Length == 0) throw new ArgumentException("cannot collate an empty batch", nameof(indices));
        if (padToMultipleOf < 1) throw new ArgumentOutOfRangeException(nameof(padToMultipleOf));
        int b = indices.Length;
        int l = indices.Max(i => features[i].Length);
        l = (l + padToMultipleOf - 1) / padToMultipleOf * padToMultipleOf;
        var ids = new long[b * l];
        var types = new long[b * l];
        var mask = new long[b * l];
        Array.Fill(ids, padId);
        for (int r = 0; r < b; r++)
        {
            var f = features[indices[r]];
            if (f.TokenTypeIds.Length != f.Length) throw new ArgumentException($"feature {indices[r]}: token types and ids differ in length");
            for (int t = 0; t < f.Length; t++)
            {
                ids[r * l + t] = f.InputIds[t];
                types[r * l + t] = f.TokenTypeIds[t];
                mask[r * l + t] = 1;
            }
        }
        Tensor? labels = null, starts = null, ends = null;
        using var scope = torch.NewDisposeScope();
        switch (kind)
        {
            case TaskKind.SequenceClassification when indices.All(i => features[i].Label is not null):
                labels = torch.tensor(indices.Select(i => (long)features[i].Label!.Value).ToArray(), [b], ScalarType.Int64);
                break;
            case TaskKind.Regression when indices.All(i => features[i].Score is not null):
                labels = torch.tensor(indices.Select(i => features[i].Score!.Value).ToArray(), [b], ScalarType.Float32);
                break;
            case TaskKind.TokenClassification when indices.All(i => features[i].TokenLabels is not null):
                var tl = new long[b * l];
                Array.Fill(tl, TokenFeaturizer.IgnoreIndex);
                for (int r = 0; r < b; r++)
                {
                    var f = features[indices[r]];
                    for (int t = 0; t < f.Length; t++) tl[r * l + t] = f.TokenLabels![t];
                }
                labels = torch.tensor(tl, [b, l], ScalarType.Int64);
                break;
            case TaskKind.QuestionAnswering:
                starts = torch.tensor(indices.Select(i => (long)features[i].StartPosition).ToArray(), [b], ScalarType.Int64);
                ends = torch.tensor(indices.Select(i => (long)features[i].EndPosition).ToArray(), [b], ScalarType.Int64);
                break;
        }
        return new TaskBatch
        {
            InputIds = torch.tensor(ids, [b, l], ScalarType.Int64).MoveToOuterDisposeScope(),
            TokenTypeIds = torch.tensor(types, [b, l], ScalarType.Int64).MoveToOuterDisposeScope(),
            AttentionMask = torch.tensor(mask, [b, l], ScalarType.Int64).MoveToOuterDisposeScope(),
            Labels = labels?.MoveToOuterDisposeScope(),
            StartPositions = starts?.MoveToOuterDisposeScope(),
            EndPositions = ends?.MoveToOuterDisposeScope(),
            Indices = indices,
            SequenceLength = l,
        };
    }
}

/// <summary>
/// <see cref="BertSharp.Training.IBatchSource{TBatch}"/> over task features: batch <c>index</c> of <c>epoch</c> is
/// the <see cref="LengthBucketBatcher"/> plan for (seed, epoch), collated with dynamic padding — the same (epoch,
/// index) always gives the same batch, so the Trainer's exact resume works.
/// </summary>
public sealed class TaskBatchSource : BertSharp.Training.IBatchSource<TaskBatch>
{
    readonly IReadOnlyList<TaskFeature> _features;
    readonly int[] _lengths;
    readonly int _padId, _poolBatches, _padToMultipleOf;
    readonly TaskKind _kind;
    readonly ulong _seed;
    readonly bool _shuffle;
    int _planEpoch = -1;
    List<int[]> _plan = [];

    /// <param name="shuffle">False for evaluation: dataset order, no bucketing.</param>
    public TaskBatchSource(IReadOnlyList<TaskFeature> features, int batchSize, int padId, TaskKind kind, ulong seed,
        bool shuffle = true, int poolBatches = 50, int padToMultipleOf = 1)
    {
        if (features.Count == 0) throw new ArgumentException("no features to batch", nameof(features));
        _features = features;
        _lengths = features.Select(f => f.Length).ToArray();
        BatchSize = batchSize;
        _padId = padId;
        _kind = kind;
        _seed = seed;
        _shuffle = shuffle;
        _poolBatches = poolBatches;
        _padToMultipleOf = padToMultipleOf;
        BatchesPerEpoch = (features.Count + batchSize - 1) / batchSize;
    }

    public long BatchesPerEpoch { get; }
    public int BatchSize { get; }

    /// <summary>The feature indices of every batch of <paramref name="epoch"/>.</summary>
    public IReadOnlyList<int[]> Plan(int epoch)
    {
        lock (_lengths)
        {
            if (_planEpoch != epoch)
            {
                _plan = LengthBucketBatcher.Batches(_lengths, BatchSize, _seed, epoch, _shuffle, _poolBatches);
                _planEpoch = epoch;
            }
            return _plan;
        }
    }

    public TaskBatch GetBatch(int epoch, long index)
    {
        var plan = Plan(epoch);
        if (index < 0 || index >= plan.Count) throw new ArgumentOutOfRangeException(nameof(index), index, $"epoch {epoch} has {plan.Count} batches");
        return TaskBatch.Collate(_features, plan[(int)index], _padId, _kind, _padToMultipleOf);
    }
}
