using System.Collections.Concurrent;
using System.Globalization;
using System.Text;

namespace BertSharp.Serving;

/// <summary>
/// The counters behind <c>GET /metrics</c>, written in the Prometheus text exposition format (version 0.0.4):
/// requests by route and status, request latency by route, batch sizes by model and task, rejected requests,
/// and the queue depth of every model.
/// </summary>
public sealed class ServeMetrics
{
    /// <summary>Latency bucket bounds in seconds.</summary>
    public static readonly double[] LatencyBuckets = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];

    /// <summary>Batch-size bucket bounds in texts.</summary>
    public static readonly double[] BatchBuckets = [1, 2, 4, 8, 16, 32, 64, 128, 256];

    readonly ConcurrentDictionary<(string Route, int Status), long> _requests = new();
    readonly ConcurrentDictionary<string, Histogram> _latency = new();
    readonly ConcurrentDictionary<(string Model, string Task), Histogram> _batches = new();
    readonly ConcurrentDictionary<string, long> _rejected = new();
    Func<IEnumerable<(string Model, int Depth)>> _queues = () => [];

    sealed class Histogram(double[] bounds)
    {
        readonly long[] _counts = new long[bounds.Length + 1];
        double _sum;
        long _count;
        readonly object _gate = new();

        public void Observe(double v)
        {
            lock (_gate)
            {
                int i = 0;
                while (i < bounds.Length && v > bounds[i]) i++;
                _counts[i]++;
                _sum += v;
                _count++;
            }
        }

        public void Write(StringBuilder sb, string name, string labels)
        {
            lock (_gate)
            {
                long cumulative = 0;
                for (int i = 0; i < bounds.Length; i++)
                {
                    cumulative += _counts[i];
                    sb.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labels},le=\"{bounds[i].ToString(CultureInfo.InvariantCulture)}\"}} {cumulative}\n");
                }
                sb.Append(CultureInfo.InvariantCulture, $"{name}_bucket{{{labels},le=\"+Inf\"}} {_count}\n");
                sb.Append(CultureInfo.InvariantCulture, $"{name}_sum{{{labels}}} {_sum.ToString("R", CultureInfo.InvariantCulture)}\n");
                sb.Append(CultureInfo.InvariantCulture, $"{name}_count{{{labels}}} {_count}\n");
            }
        }
    }

    internal void SetQueues(Func<IEnumerable<(string Model, int Depth)>> queues) => _queues = queues;

    public void ObserveRequest(string route, int status, double seconds)
    {
        _requests.AddOrUpdate((route, status), 1, (_, n) => n + 1);
        _latency.GetOrAdd(route, _ => new Histogram(LatencyBuckets)).Observe(seconds);
    }

    public void ObserveBatch(string model, string task, int size) =>
        _batches.GetOrAdd((model, task), _ => new Histogram(BatchBuckets)).Observe(size);

    public void ObserveRejected(string model) => _rejected.AddOrUpdate(model, 1, (_, n) => n + 1);

    static string Esc(string s) => s.Replace("\\", "\\\\").Replace("\"", "\\\"").Replace("\n", "\\n");

    public string Render()
    {
        var sb = new StringBuilder();
        sb.Append("# HELP bert_requests_total HTTP requests by route and status code.\n# TYPE bert_requests_total counter\n");
        foreach (var ((route, status), n) in _requests.OrderBy(kv => kv.Key.Route, StringComparer.Ordinal).ThenBy(kv => kv.Key.Status))
            sb.Append(CultureInfo.InvariantCulture, $"bert_requests_total{{route=\"{Esc(route)}\",status=\"{status}\"}} {n}\n");
        sb.Append("# HELP bert_request_duration_seconds Request latency by route.\n# TYPE bert_request_duration_seconds histogram\n");
        foreach (var (route, h) in _latency.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            h.Write(sb, "bert_request_duration_seconds", $"route=\"{Esc(route)}\"");
        sb.Append("# HELP bert_batch_size Texts per model call (dynamic batching) by model and task.\n# TYPE bert_batch_size histogram\n");
        foreach (var ((model, task), h) in _batches.OrderBy(kv => kv.Key.Model, StringComparer.Ordinal).ThenBy(kv => kv.Key.Task, StringComparer.Ordinal))
            h.Write(sb, "bert_batch_size", $"model=\"{Esc(model)}\",task=\"{Esc(task)}\"");
        sb.Append("# HELP bert_rejected_total Requests refused with 429 because the model's queue was full.\n# TYPE bert_rejected_total counter\n");
        foreach (var (model, n) in _rejected.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            sb.Append(CultureInfo.InvariantCulture, $"bert_rejected_total{{model=\"{Esc(model)}\"}} {n}\n");
        sb.Append("# HELP bert_queue_depth Requests waiting for the model's worker.\n# TYPE bert_queue_depth gauge\n");
        foreach (var (model, depth) in _queues())
            sb.Append(CultureInfo.InvariantCulture, $"bert_queue_depth{{model=\"{Esc(model)}\"}} {depth}\n");
        return sb.ToString();
    }
}
