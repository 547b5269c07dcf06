using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training;

/// <summary>
/// One named metric of a batch as a (sum, count) pair, so that batches of different sizes average correctly:
/// the reported value is <c>Sum / Count</c> over every batch of a logging interval or an evaluation.
/// </summary>
public readonly record struct Metric(string Name, double Sum, double Count)
{
    /// <summary>A mean over <paramref name="count"/> items (a loss averaged over tokens, an accuracy …).</summary>
    public static Metric Mean(string name, double mean, double count) => new(name, mean * count, count);
}

/// <summary>What a task computes for one batch.</summary>
/// <param name="Loss">scalar loss to minimise (attached to the graph when training)</param>
/// <param name="Metrics">named metrics, already on the host; by convention "loss" is the total loss</param>
public sealed record TaskOutput(Tensor Loss, IReadOnlyList<Metric> Metrics);

/// <summary>
/// A training objective: the trainer is generic over it. Pretraining (MLM + NSP) is one; fine-tuning tasks
/// (classification, tagging, QA) implement the same interface with their own batch type.
/// </summary>
public interface ITrainingTask<in TBatch>
{
    /// <summary>The module whose parameters are trained.</summary>
    nn.Module Model { get; }

    /// <summary>Forward pass and loss for one batch. Called inside a dispose scope; the trainer calls backward.</summary>
    TaskOutput Forward(TBatch batch, bool training);

    /// <summary>Number of tokens in a batch (for tokens/s).</summary>
    long TokenCount(TBatch batch);

    /// <summary>Adds metrics derived from the averaged ones (e.g. perplexity = exp(mlm_loss)).</summary>
    void AddDerivedMetrics(IDictionary<string, double> means) { }

    /// <summary>Writes the model (and whatever a user needs to load it) into <paramref name="dir"/>.</summary>
    void SaveModel(string dir, IReadOnlyDictionary<string, string> metadata);

    /// <summary>Loads the weights that <see cref="SaveModel"/> wrote in <paramref name="dir"/> into <see cref="Model"/>.</summary>
    void LoadModel(string dir);
}

/// <summary>
/// Deterministic random access to the batches of an epoch: the same (epoch, index) always yields the same batch,
/// so a data position of two integers is all a checkpoint needs to resume exactly.
/// </summary>
public interface IBatchSource<out TBatch>
{
    /// <summary>Number of (micro-)batches in an epoch.</summary>
    long BatchesPerEpoch { get; }

    /// <summary>Number of sequences a batch holds (before padding), for reporting.</summary>
    int BatchSize { get; }

    /// <summary>Builds batch <paramref name="index"/> of <paramref name="epoch"/> (tensors go to the current dispose scope).</summary>
    TBatch GetBatch(int epoch, long index);
}

/// <summary>Position in the training data: the next batch to read.</summary>
public readonly record struct DataPosition(int Epoch, long Index)
{
    public DataPosition Next(long batchesPerEpoch) => Index + 1 >= batchesPerEpoch ? new(Epoch + 1, 0) : this with { Index = Index + 1 };
}

/// <summary>Accumulates (sum, count) metrics and reports their means.</summary>
public sealed class MetricAccumulator
{
    readonly Dictionary<string, (double Sum, double Count)> _values = new(StringComparer.Ordinal);
    readonly List<string> _order = new();

    public void Add(IEnumerable<Metric> metrics)
    {
        foreach (var m in metrics)
        {
            if (_values.TryGetValue(m.Name, out var v)) _values[m.Name] = (v.Sum + m.Sum, v.Count + m.Count);
            else { _values[m.Name] = (m.Sum, m.Count); _order.Add(m.Name); }
        }
    }

    public bool IsEmpty => _values.Count == 0;

    /// <summary>Means in first-seen order (metrics with a zero count are left out).</summary>
    public Dictionary<string, double> Means()
    {
        var d = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var k in _order)
        {
            var (sum, count) = _values[k];
            if (count > 0) d[k] = sum / count;
        }
        return d;
    }

    public void Clear() { _values.Clear(); _order.Clear(); }
}
