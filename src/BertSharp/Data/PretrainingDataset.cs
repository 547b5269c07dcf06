using System.Security.Cryptography;
using System.Text;
using BertSharp.Tokenization;

namespace BertSharp.Data;

/// <summary>Where unmasked examples live: memory or a memory-mapped example store.</summary>
internal interface IExampleSource : IDisposable
{
    int Count { get; }
    int Length(int index);
    RawExample Get(int index);
}

internal sealed class MemoryExamples(List<RawExample> examples) : IExampleSource
{
    public int Count => examples.Count;
    public int Length(int index) => examples[index].Length;
    public RawExample Get(int index) => examples[index];
    public void Dispose() { }
}

internal sealed class StoredExamples : IExampleSource
{
    readonly RecordStore _store;

    public StoredExamples(RecordStore store)
    {
        if (store.Records > int.MaxValue) throw new NotSupportedException($"{store.Directory}: more than {int.MaxValue} examples");
        _store = store;
    }

    public int Count => (int)_store.Records;
    public int Length(int index) => _store.Length(index);
    public RawExample Get(int index) => RawExample.Unpack(_store.Get(index), _store.Meta(index));
    public void Dispose() => _store.Dispose();
}

/// <summary>
/// The pretraining dataset the trainer reads: unmasked examples (from the on-disk example store or memory),
/// masking applied in <see cref="Get"/>, a deterministic order per (seed, epoch) and batches.
/// Everything is a pure function of (options, seed, epoch, index), so training resumes exactly from (epoch, step).
/// Thread-safe for concurrent reads.
/// </summary>
public sealed class PretrainingDataset : IDisposable
{
    public const string ExampleKind = "examples";
    /// <summary>Bump when example creation semantics change, to invalidate stored examples.</summary>
    public const int ExampleVersion = 1;

    readonly IExampleSource _examples;
    readonly object _planLock = new();
    (int Epoch, BatchingOptions Options, int[][] Batches)? _plan;

    PretrainingDataset(IExampleSource examples, PretrainingVocab vocab, PretrainingDataOptions options)
    {
        _examples = examples;
        Vocab = vocab;
        Options = options;
        if (examples.Count == 0) throw new InvalidDataException("the corpus produced no examples (it is smaller than one example: fewer tokens than one packed block, or no document with two sentences?)");
    }

    public PretrainingDataOptions Options { get; }
    public PretrainingVocab Vocab { get; }
    public int Count => _examples.Count;
    public bool HasNextSentenceLabels => Options.Mode == ExampleMode.NextSentencePrediction;
    /// <summary>Whether the token cache / example store already existed (null when not applicable).</summary>
    public bool? TokenCacheHit { get; private init; }
    public bool? ExampleCacheHit { get; private init; }
    /// <summary>The example store folder (null for in-memory datasets).</summary>
    public string? ExampleStoreDirectory { get; private init; }

    /// <summary>Tokenizes <paramref name="corpus"/> once into the token cache under <paramref name="cacheRoot"/>, creates
    /// the examples once into an example store beside it, and opens them memory-mapped (later runs are cache hits).</summary>
    public static PretrainingDataset Create(CorpusSpec corpus, BertTokenizer tokenizer, PretrainingDataOptions options, string cacheRoot, CacheOptions? cache = null) =>
        Create(corpus, new BertTokenizerEncoder(tokenizer), options, cacheRoot, cache);

    public static PretrainingDataset Create(CorpusSpec corpus, ITextEncoder encoder, PretrainingDataOptions options, string cacheRoot, CacheOptions? cache = null)
    {
        options.Validate();
        cache ??= new CacheOptions();
        var tokenKey = TokenCache.ComputeKey(corpus, encoder);
        var vocab = encoder.Vocab;
        var key = ExampleKey(tokenKey, vocab, options);
        var dir = Path.Combine(Path.GetFullPath(cacheRoot), "examples-" + key);
        var store = RecordStore.TryOpen(dir, ExampleKind, key, cache.VerifyChecksums, out var why);
        bool? tokenHit = null;
        bool exampleHit = store is not null;
        if (store is null)
        {
            using var tokens = TokenCache.OpenOrBuild(corpus, encoder, cacheRoot, cache);
            tokenHit = tokens.WasCacheHit;
            cache.Log?.Invoke($"building example store {dir} ({why})");
            if (Directory.Exists(dir)) Directory.Delete(dir, recursive: true);
            int width = vocab.Size <= ushort.MaxValue + 1 ? 2 : 4;
            using (var writer = new RecordStoreWriter(dir, ExampleKind, key, $"{options.DescribeCreation()}; tokens={tokens.Key}", width, cache.ShardTokens))
            {
                BuildProgress.Run("creating examples", (long)tokens.DocumentCount * options.DupeFactor, cache.ShowProgress, report =>
                {
                    foreach (var e in ExampleFactory.Create(tokens, vocab, options, report))
                    {
                        writer.Add(e.InputIds, e.PackMeta());
                        writer.MaybeRoll();
                    }
                }, bytes: false);
                writer.Complete();
            }
            store = RecordStore.TryOpen(dir, ExampleKind, key, verifyChecksums: false, out why)
                    ?? throw new IOException($"{dir}: the example store just written cannot be opened: {why}");
        }
        else cache.Log?.Invoke($"example store hit: {dir}");
        return new PretrainingDataset(new StoredExamples(store), vocab, options)
        {
            TokenCacheHit = tokenHit, ExampleCacheHit = exampleHit, ExampleStoreDirectory = dir,
        };
    }

    /// <summary>An in-memory dataset (no files): creates the examples from <paramref name="corpus"/> now.</summary>
    public static PretrainingDataset InMemory(ITokenizedCorpus corpus, PretrainingVocab vocab, PretrainingDataOptions options) =>
        new(new MemoryExamples(ExampleFactory.Create(corpus, vocab, options).ToList()), vocab, options);

    static string ExampleKey(string tokenKey, PretrainingVocab vocab, PretrainingDataOptions options)
    {
        var s = $"examples;v{ExampleVersion};shard{ShardFormat.Version};tokens={tokenKey};{options.DescribeCreation()};" +
                $"vocab={vocab.Size},{vocab.ClsId},{vocab.SepId},{vocab.PadId},{vocab.MaskId}";
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(s)))[..32].ToLowerInvariant();
    }

    /// <summary>Length (tokens, specials included) of example <paramref name="index"/>.</summary>
    public int Length(int index) => _examples.Length(index);

    /// <summary>The unmasked example.</summary>
    public RawExample GetRaw(int index) => _examples.Get(index);

    /// <summary>Example <paramref name="index"/> masked for <paramref name="epoch"/>: static masking draws from
    /// (seed, index) and ignores the epoch; dynamic masking draws from (seed, epoch, index).</summary>
    public PretrainingExample Get(int index, int epoch)
    {
        var raw = _examples.Get(index);
        var rng = Options.Masking == MaskingMode.Static
            ? DataRng.For(Options.Seed, RngPurpose.StaticMask, (ulong)index)
            : DataRng.For(Options.Seed, RngPurpose.DynamicMask, (ulong)epoch, (ulong)index);
        return MlmMasking.Apply(raw, Vocab, Options.MaskedLmProb, Options.MaxPredictionsPerSeq, Options.WholeWordMask, rng);
    }

    /// <summary>The example order of <paramref name="epoch"/>: a permutation that is a pure function of (seed, epoch).</summary>
    public int[] EpochOrder(int epoch, bool shuffle = true)
    {
        var order = new int[Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        if (shuffle) DataRng.For(Options.Seed, RngPurpose.EpochOrder, (ulong)epoch).Shuffle(order.AsSpan());
        return order;
    }

    /// <summary>The batches (dataset indices) of <paramref name="epoch"/>, in training order.</summary>
    public int[][] EpochBatches(int epoch, BatchingOptions batching)
    {
        lock (_planLock)
        {
            if (_plan is { } p && p.Epoch == epoch && p.Options == batching) return p.Batches;
        }
        var batches = PlanBatches(epoch, batching);
        lock (_planLock) _plan = (epoch, batching, batches);
        return batches;
    }

    int[][] PlanBatches(int epoch, BatchingOptions o)
    {
        if (o.BatchSize < 1) throw new ArgumentOutOfRangeException(nameof(o), o.BatchSize, "BatchSize must be positive");
        var order = EpochOrder(epoch, o.Shuffle);
        var batches = new List<int[]>();
        if (o.BucketWindowBatches <= 0)
        {
            for (int at = 0; at < order.Length; at += o.BatchSize)
                batches.Add(order.AsSpan(at, Math.Min(o.BatchSize, order.Length - at)).ToArray());
        }
        else
        {
            int window = checked(o.BucketWindowBatches * o.BatchSize);
            for (int w = 0; w < order.Length; w += window)
            {
                var sorted = order.AsSpan(w, Math.Min(window, order.Length - w)).ToArray().OrderBy(Length).ToArray();
                for (int at = 0; at < sorted.Length; at += o.BatchSize)
                    batches.Add(sorted.AsSpan(at, Math.Min(o.BatchSize, sorted.Length - at)).ToArray());
            }
        }
        if (o.DropLast) batches.RemoveAll(b => b.Length < o.BatchSize);
        if (o.Shuffle && o.BucketWindowBatches > 0)
            DataRng.For(Options.Seed, RngPurpose.BatchOrder, (ulong)epoch).Shuffle(batches);
        return batches.ToArray();
    }

    public int StepsPerEpoch(BatchingOptions batching) =>
        batching.DropLast ? Count / batching.BatchSize : (Count + batching.BatchSize - 1) / batching.BatchSize;

    /// <summary>Batch number <paramref name="step"/> of <paramref name="epoch"/> (masked for that epoch, collated).</summary>
    public PretrainingBatch GetBatch(int epoch, int step, BatchingOptions batching)
    {
        var batches = EpochBatches(epoch, batching);
        if ((uint)step >= (uint)batches.Length) throw new ArgumentOutOfRangeException(nameof(step), step, $"epoch {epoch} has {batches.Length} steps");
        var indices = batches[step];
        var examples = new PretrainingExample[indices.Length];
        for (int i = 0; i < indices.Length; i++) examples[i] = Get(indices[i], epoch);
        return PretrainingCollator.Collate(examples, Vocab.PadId, batching.PadToMultipleOf, indices);
    }

    /// <summary>The batches of <paramref name="epoch"/> from <paramref name="startStep"/> on (resume = pass the next step).
    /// The caller disposes each batch.</summary>
    public IEnumerable<PretrainingBatch> Batches(int epoch, BatchingOptions batching, int startStep = 0)
    {
        int steps = EpochBatches(epoch, batching).Length;
        for (int step = startStep; step < steps; step++) yield return GetBatch(epoch, step, batching);
    }

    public void Dispose() => _examples.Dispose();
}
