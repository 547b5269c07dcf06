using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using Spectre.Console;

namespace BertSharp.Data;

/// <summary>Options for building/opening the on-disk caches.</summary>
public sealed record CacheOptions
{
    /// <summary>Tokens per shard (a shard is written when it reaches this size; documents never span shards).</summary>
    public long ShardTokens { get; init; } = 32L << 20;
    /// <summary>Hash every shard on open (slower start, catches bit rot); sizes and headers are always checked.</summary>
    public bool VerifyChecksums { get; init; }
    /// <summary>Show a Spectre.Console progress bar while building (default: when stdout is a terminal).</summary>
    public bool ShowProgress { get; init; } = !Console.IsOutputRedirected;
    /// <summary>Receives one-line notes (cache hit/miss/rebuild reasons).</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>
/// The pre-tokenized corpus on disk: <c>&lt;root&gt;/tokens-&lt;key&gt;/shard-NNNNN.bin</c> + <c>manifest.json</c>, one record
/// per sentence (metadata 1 marks a document's first sentence), memory-mapped. The key hashes the corpus files'
/// paths, sizes and modification times, the reader options, the tokenizer fingerprint and the format versions.
/// </summary>
public sealed class TokenCache : ITokenizedCorpus, IDisposable
{
    public const string Kind = "tokens";
    /// <summary>Bump when reading, sentence splitting or tokenization semantics change, to invalidate old caches.</summary>
    public const int PipelineVersion = 1;

    readonly RecordStore _store;
    readonly long[] _docStarts;

    TokenCache(RecordStore store, bool hit)
    {
        _store = store;
        WasCacheHit = hit;
        var starts = new List<long>();
        for (long r = 0; r < store.Records; r++)
            if (store.Meta(r) == 1) starts.Add(r);
        starts.Add(store.Records);
        _docStarts = starts.ToArray();
    }

    /// <summary>True when an existing cache was opened, false when it was (re)built now.</summary>
    public bool WasCacheHit { get; }
    public string Key => _store.Manifest.Key;
    public string Directory => _store.Directory;
    public int ShardCount => _store.ShardCount;
    public int DocumentCount => _docStarts.Length - 1;
    public long SentenceTotal => _store.Records;
    public long TokenTotal => _store.Manifest.Tokens;
    public int SentenceCount(int document) => (int)(_docStarts[document + 1] - _docStarts[document]);
    public int SentenceLength(int document, int sentence) => _store.Length(Record(document, sentence));
    public void AppendSentence(int document, int sentence, List<int> destination) => _store.Append(Record(document, sentence), destination);

    long Record(int document, int sentence)
    {
        long r = _docStarts[document] + sentence;
        if ((uint)sentence >= (uint)SentenceCount(document))
            throw new ArgumentOutOfRangeException(nameof(sentence), sentence, $"document {document} has {SentenceCount(document)} sentences");
        return r;
    }

    /// <summary>The cache key for a corpus + encoder (hash of files, sizes, mtimes, options, tokenizer fingerprint).</summary>
    public static string ComputeKey(CorpusSpec corpus, ITextEncoder encoder)
    {
        var sb = new StringBuilder();
        sb.Append("shard=").Append(ShardFormat.Version).Append(";pipeline=").Append(PipelineVersion).Append('\n');
        sb.Append(corpus.DescribeOptions()).Append('\n');
        foreach (var f in corpus.ResolveFiles())
        {
            var info = new FileInfo(f);
            sb.Append(f).Append('|').Append(info.Length).Append('|').Append(info.LastWriteTimeUtc.Ticks).Append('\n');
        }
        sb.Append(encoder.Fingerprint);
        return Convert.ToHexString(SHA256.HashData(Encoding.UTF8.GetBytes(sb.ToString())))[..32].ToLowerInvariant();
    }

    /// <summary>Opens the cache for this corpus + encoder under <paramref name="cacheRoot"/>, building it if it is
    /// missing, incomplete or corrupt.</summary>
    public static TokenCache OpenOrBuild(CorpusSpec corpus, ITextEncoder encoder, string cacheRoot, CacheOptions? options = null)
    {
        options ??= new CacheOptions();
        var key = ComputeKey(corpus, encoder);
        var dir = Path.Combine(Path.GetFullPath(cacheRoot), "tokens-" + key);
        var store = RecordStore.TryOpen(dir, Kind, key, options.VerifyChecksums, out var why);
        if (store is not null)
        {
            options.Log?.Invoke($"token cache hit: {dir}");
            return new TokenCache(store, hit: true);
        }
        options.Log?.Invoke($"building token cache {dir} ({why})");
        if (System.IO.Directory.Exists(dir)) System.IO.Directory.Delete(dir, recursive: true);

        var files = corpus.ResolveFiles();
        long totalBytes = files.Sum(f => new FileInfo(f).Length);
        int width = encoder.Vocab.Size <= ushort.MaxValue + 1 ? 2 : 4;
        var description = $"{corpus.DescribeOptions()}; files={string.Join(", ", files)}";
        var sw = Stopwatch.StartNew();
        long documents = 0, sentences = 0;
        using (var writer = new RecordStoreWriter(dir, Kind, key, description, width, options.ShardTokens))
        {
            BuildProgress.Run("tokenizing corpus", totalBytes, options.ShowProgress, report =>
            {
                foreach (var doc in CorpusReader.Read(corpus, report))
                {
                    bool first = true;
                    foreach (var sentence in doc.Sentences)
                    {
                        var ids = encoder.Encode(sentence);
                        if (ids.Length == 0) continue;
                        writer.Add(ids, first ? 1 : 0);
                        first = false;
                        sentences++;
                    }
                    if (!first) { documents++; writer.MaybeRoll(); }
                }
            });
            writer.Complete();
        }
        store = RecordStore.TryOpen(dir, Kind, key, verifyChecksums: false, out why)
                ?? throw new IOException($"{dir}: the token cache just written cannot be opened: {why}");
        options.Log?.Invoke($"token cache built: {documents} documents, {sentences} sentences, {store.Manifest.Tokens} tokens in {sw.Elapsed.TotalSeconds:F1} s");
        return new TokenCache(store, hit: false);
    }

    public void Dispose() => _store.Dispose();
}

/// <summary>Spectre.Console progress (bytes, rate, ETA) around a build step, or nothing when disabled.</summary>
internal static class BuildProgress
{
    public static void Run(string description, long total, bool show, Action<Action<long>> body, bool bytes = true)
    {
        if (!show)
        {
            body(_ => { });
            return;
        }
        AnsiConsole.Progress()
            .AutoClear(false)
            .Columns(bytes
                ? [new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                   new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn()]
                : [new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(),
                   new ElapsedTimeColumn(), new RemainingTimeColumn()])
            .Start(ctx =>
            {
                var task = ctx.AddTask(description, maxValue: Math.Max(1, total));
                body(n => task.Increment(n));
                task.Value = task.MaxValue;
            });
    }
}
