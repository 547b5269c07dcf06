using System.Diagnostics;
using System.Threading.Channels;

namespace BertSharp.Serving;

/// <summary>The queue was full: the caller answers 429.</summary>
public sealed class QueueFullException(string model, int capacity)
    : Exception($"model '{model}' has {capacity} requests waiting; try again later")
{
    public string Model { get; } = model;
}

/// <summary>One request waiting for the model's worker.</summary>
sealed class Job(string kind, object input, int size, CancellationToken cancellation)
{
    public string Kind { get; } = kind;
    public object Input { get; } = input;
    /// <summary>Texts this request brings to a batch.</summary>
    public int Size { get; } = size;
    public CancellationToken Cancellation { get; } = cancellation;
    public TaskCompletionSource<object> Done { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);
}

/// <summary>
/// Dynamic batching for one model: a bounded channel of requests and one dedicated worker thread that owns the
/// model (every libtorch call happens there). The worker takes the first waiting request and, for batchable kinds,
/// keeps taking requests of the same kind until <c>maxBatch</c> texts are collected or <c>maxWait</c> has passed
/// since the first; then it runs them as one call of <c>execute</c>. Cancelled requests are dropped before they
/// reach the model; a full queue is refused at once (<see cref="QueueFullException"/>), so memory stays bounded.
/// </summary>
sealed class BatchQueue : IDisposable
{
    readonly Channel<Job> _channel;
    readonly Thread _worker;
    readonly string _model;
    readonly int _capacity, _maxBatch;
    readonly TimeSpan _maxWait;
    readonly Func<string, IReadOnlyList<Job>, object[]> _execute;
    readonly Func<string, bool> _batchable;
    readonly Action<string, int> _onBatch;
    int _depth;

    public BatchQueue(string model, int capacity, int maxBatch, TimeSpan maxWait, Func<string, bool> batchable,
        Func<string, IReadOnlyList<Job>, object[]> execute, Action<string, int> onBatch)
    {
        _model = model;
        _capacity = capacity;
        _maxBatch = maxBatch;
        _maxWait = maxWait;
        _batchable = batchable;
        _execute = execute;
        _onBatch = onBatch;
        _channel = Channel.CreateBounded<Job>(new BoundedChannelOptions(capacity) { SingleReader = true, FullMode = BoundedChannelFullMode.Wait });
        _worker = new Thread(Run) { IsBackground = true, Name = $"bert-serve-{model}" };
        _worker.Start();
    }

    /// <summary>Requests waiting (not yet taken by the worker).</summary>
    public int Depth => Volatile.Read(ref _depth);

    /// <summary>Queues a request and waits for its result; throws <see cref="QueueFullException"/> when the queue is full.</summary>
    public Task<object> Submit(string kind, object input, int size, CancellationToken cancellation)
    {
        var job = new Job(kind, input, size, cancellation);
        Interlocked.Increment(ref _depth);
        if (!_channel.Writer.TryWrite(job))
        {
            Interlocked.Decrement(ref _depth);
            throw new QueueFullException(_model, _capacity);
        }
        return job.Done.Task.WaitAsync(cancellation);
    }

    bool TryTake(out Job job)
    {
        if (!_channel.Reader.TryRead(out job!)) return false;
        Interlocked.Decrement(ref _depth);
        return true;
    }

    void Run()
    {
        var reader = _channel.Reader;
        var group = new List<Job>();
        while (reader.WaitToReadAsync().AsTask().GetAwaiter().GetResult())
        {
            if (!TryTake(out var first)) continue;
            if (Skip(first)) continue;
            group.Clear();
            group.Add(first);
            int texts = first.Size;
            if (_batchable(first.Kind))
            {
                var clock = Stopwatch.StartNew();
                while (texts < _maxBatch)
                {
                    if (reader.TryPeek(out var next))
                    {
                        if (next.Kind != first.Kind || texts + next.Size > _maxBatch) break;
                        TryTake(out next);
                        if (Skip(next)) continue;
                        group.Add(next);
                        texts += next.Size;
                        continue;
                    }
                    var left = _maxWait - clock.Elapsed;
                    if (left <= TimeSpan.Zero) break;
                    using var timeout = new CancellationTokenSource(left);
                    try
                    {
                        if (!reader.WaitToReadAsync(timeout.Token).AsTask().GetAwaiter().GetResult()) break;
                    }
                    catch (OperationCanceledException)
                    {
                        break;
                    }
                }
            }
            Execute(group);
        }
    }

    static bool Skip(Job job)
    {
        if (!job.Cancellation.IsCancellationRequested) return false;
        job.Done.TrySetCanceled(job.Cancellation);
        return true;
    }

    void Execute(List<Job> group)
    {
        // A request cancelled while the batch was being collected is left out.
        var live = group.Where(j => !Skip(j)).ToList();
        if (live.Count == 0) return;
        try
        {
            _onBatch(live[0].Kind, live.Sum(j => j.Size));
            var results = _execute(live[0].Kind, live);
            for (int i = 0; i < live.Count; i++) live[i].Done.TrySetResult(results[i]);
        }
        catch (Exception e) when (live.Count > 1 && e is not OutOfMemoryException)
        {
            // One bad request must not fail the others: run each alone to find out whose error it is.
            foreach (var job in live)
            {
                try { job.Done.TrySetResult(_execute(job.Kind, [job])[0]); }
                catch (Exception single) { job.Done.TrySetException(single); }
            }
        }
        catch (Exception e)
        {
            foreach (var job in live) job.Done.TrySetException(e);
        }
    }

    /// <summary>Stops taking requests, lets the worker finish what is queued, and waits for it.</summary>
    public void Dispose()
    {
        _channel.Writer.TryComplete();
        _worker.Join(TimeSpan.FromSeconds(30));
    }
}
