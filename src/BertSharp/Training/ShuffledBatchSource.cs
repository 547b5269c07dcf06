namespace BertSharp.Training;

/// <summary>
/// Batches over an in-memory list of examples: each epoch visits the examples in a permutation that depends only
/// on (seed, epoch), cut into batches of <see cref="BatchSize"/> (the incomplete last batch is dropped when
/// <c>dropLast</c>). Deterministic random access, as <see cref="IBatchSource{TBatch}"/> requires.
/// </summary>
public sealed class ShuffledBatchSource<TExample, TBatch> : IBatchSource<TBatch>
{
    readonly IReadOnlyList<TExample> _examples;
    readonly Func<IReadOnlyList<TExample>, TBatch> _collate;
    readonly long _seed;
    readonly bool _shuffle;
    int _cachedEpoch = -1;
    int[]? _order;

    public ShuffledBatchSource(IReadOnlyList<TExample> examples, int batchSize, Func<IReadOnlyList<TExample>, TBatch> collate,
        long seed, bool shuffle = true, bool dropLast = true)
    {
        if (batchSize <= 0) throw new ArgumentException($"batch size must be positive (got {batchSize})");
        _examples = examples;
        _collate = collate;
        _seed = seed;
        _shuffle = shuffle;
        BatchSize = batchSize;
        BatchesPerEpoch = dropLast ? examples.Count / batchSize : (examples.Count + batchSize - 1) / batchSize;
    }

    public long BatchesPerEpoch { get; }
    public int BatchSize { get; }

    public TBatch GetBatch(int epoch, long index)
    {
        if (index < 0 || index >= BatchesPerEpoch) throw new ArgumentOutOfRangeException(nameof(index));
        var order = Order(epoch);
        int start = checked((int)(index * BatchSize));
        int end = Math.Min(start + BatchSize, _examples.Count);
        var items = new TExample[end - start];
        for (int i = start; i < end; i++) items[i - start] = _examples[order is null ? i : order[i]];
        return _collate(items);
    }

    int[]? Order(int epoch)
    {
        if (!_shuffle) return null;
        if (_cachedEpoch == epoch && _order is not null) return _order;
        var order = new int[_examples.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        // Fisher–Yates with a splitmix64 stream keyed by (seed, epoch).
        ulong state = (ulong)_seed * 0x9E3779B97F4A7C15UL ^ ((ulong)epoch + 0x632BE59BD9B4E019UL);
        for (int i = order.Length - 1; i > 0; i--)
        {
            int j = (int)(Data.DataRng.SplitMix(ref state) % (ulong)(i + 1));
            (order[i], order[j]) = (order[j], order[i]);
        }
        _order = order;
        _cachedEpoch = epoch;
        return order;
    }
}
