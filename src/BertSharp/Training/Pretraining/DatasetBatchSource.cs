using BertSharp.Data;

namespace BertSharp.Training.Pretraining;

/// <summary>
/// Adapts a <see cref="PretrainingDataset"/> to the trainer: batch <c>index</c> of <c>epoch</c> is the dataset's
/// deterministic (seed, epoch)-ordered batch, masked for that epoch (static or dynamic masking).
/// </summary>
public sealed class DatasetBatchSource : IBatchSource<PretrainingBatch>
{
    readonly PretrainingDataset _data;
    readonly BatchingOptions _batching;

    public DatasetBatchSource(PretrainingDataset data, BatchingOptions batching)
    {
        _data = data;
        _batching = batching;
        BatchesPerEpoch = data.EpochBatches(0, batching).Length;
    }

    public long BatchesPerEpoch { get; }
    public int BatchSize => _batching.BatchSize;

    public PretrainingBatch GetBatch(int epoch, long index) => _data.GetBatch(epoch, checked((int)index), _batching);
}
