// Load test of `bert serve` on loopback: requests/s and p50/p95/p99 latency of one-text /v1/embeddings requests at
// several concurrencies, with dynamic batching (--max-batch 32 --max-wait-ms 5) and without (--max-batch 1
// --max-wait-ms 0), then the process RSS before and after a long run (flat = no leak). Bounded in count and time.
//
//   dotnet run -c Release --project bench/ServeLoad -- [--model DIR] [--requests 400] [--concurrency 1,8,32]
//                                                      [--rss-requests 10000] [--seconds 120] [--threads N]
//   --direct 1: no server; time one Embedder batch of 30 texts against 30 single calls (is batching itself faster here?)
using System.Diagnostics;
using System.Globalization;
using System.Net.Http.Json;
using BertSharp;
using BertSharp.Inference;
using BertSharp.Serving;
using Microsoft.AspNetCore.Builder;

var opts = new Dictionary<string, string>();
for (int i = 0; i + 1 < args.Length; i += 2) opts[args[i].TrimStart('-')] = args[i + 1];
string Opt(string k, string d) => opts.TryGetValue(k, out var v) ? v : d;
var model = Opt("model", SharedAssets.Root is { } root ? Path.Combine(root, "assets/models/all-MiniLM-L6-v2") : "");
int requests = int.Parse(Opt("requests", "400"), CultureInfo.InvariantCulture);
var concurrencies = Opt("concurrency", "1,8,32").Split(',').Select(int.Parse).ToArray();
int rssRequests = int.Parse(Opt("rss-requests", "10000"), CultureInfo.InvariantCulture);
var limit = TimeSpan.FromSeconds(double.Parse(Opt("seconds", "120"), CultureInfo.InvariantCulture));
Runtime.Initialize(opts.TryGetValue("threads", out var t) ? int.Parse(t, CultureInfo.InvariantCulture) : null);

string[] sentences =
[
    "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.", "A man is riding a horse.",
    "A woman is playing violin.", "Two men pushed carts through the woods.", "A man is riding a white horse on an enclosed ground.",
    "A monkey is playing drums.", "Someone in a gorilla costume is playing a set of drums.", "The quick brown fox jumps over the lazy dog.",
];

if (opts.ContainsKey("direct"))
{
    using var e = Embedder.Load(model, new EmbedderOptions { BatchSize = 32 });
    var texts = Enumerable.Range(0, 30).Select(i => sentences[i % sentences.Length]).ToList();
    for (int rep = 0; rep < 3; rep++)
    {
        var sw = Stopwatch.StartNew();
        e.Embed(texts);
        double batched = sw.Elapsed.TotalMilliseconds;
        sw.Restart();
        foreach (var x in texts) e.Embed(x);
        Console.WriteLine($"30 texts: one batch {batched:F0} ms, one at a time {sw.Elapsed.TotalMilliseconds:F0} ms");
    }
    return;
}
Console.WriteLine($"model {model}, {Environment.ProcessorCount} cores, libtorch threads {Runtime.Threads}, {requests} requests per row (one text each)");
Console.WriteLine();
Console.WriteLine("| batching | concurrency | requests/s | p50 ms | p95 ms | p99 ms | mean batch |");
Console.WriteLine("|---|---|---|---|---|---|---|");
foreach (var batching in new[] { true, false })
{
    var (app, http) = await Start(batching);
    await Run(http, 8, 40);   // warm-up
    foreach (var c in concurrencies)
    {
        var before = BatchStats(await http.GetStringAsync("/metrics"));
        var (rps, lat) = await Run(http, c, requests);
        var after = BatchStats(await http.GetStringAsync("/metrics"));
        double meanBatch = (after.Sum - before.Sum) / Math.Max(1, after.Count - before.Count);
        Console.WriteLine($"| {(batching ? "on (32, 5 ms)" : "off")} | {c} | {rps:F1} | {P(lat, 50):F1} | {P(lat, 95):F1} | {P(lat, 99):F1} | {meanBatch:F2} |");
    }
    if (batching && rssRequests > 0)
    {
        long Rss() { using var p = Process.GetCurrentProcess(); p.Refresh(); return p.WorkingSet64; }
        GC.Collect();
        long rss0 = Rss();
        var (rps, _) = await Run(http, 8, rssRequests);
        GC.Collect();
        long rss1 = Rss();
        Console.WriteLine();
        Console.WriteLine($"RSS (server and client in one process): {rss0 / 1048576.0:F0} MiB before, {rss1 / 1048576.0:F0} MiB after {rssRequests} more requests at concurrency 8 ({rps:F1} requests/s)");
        Console.WriteLine();
    }
    http.Dispose();
    await app.StopAsync();
    await app.DisposeAsync();
}

async Task<(WebApplication, HttpClient)> Start(bool batching)
{
    var app = ServeApp.Build(new ServeOptions
    {
        Models = [new ServedModelSpec("m", model)],
        Port = 0,
        MaxBatch = batching ? 32 : 1,
        MaxWaitMs = batching ? 5 : 0,
        MaxQueue = 1024,
    });
    await app.StartAsync();
    return (app, new HttpClient { BaseAddress = new Uri(app.Urls.Single()) });
}

async Task<(double Rps, List<double> Latency)> Run(HttpClient http, int concurrency, int count)
{
    var latencies = new List<double>(count);
    int next = -1;
    var clock = Stopwatch.StartNew();
    async Task Worker()
    {
        while (clock.Elapsed < limit)
        {
            int i = Interlocked.Increment(ref next);
            if (i >= count) return;
            var sw = Stopwatch.StartNew();
            using var resp = await http.PostAsJsonAsync("/v1/embeddings", new { input = sentences[i % sentences.Length] });
            resp.EnsureSuccessStatusCode();
            await resp.Content.ReadAsByteArrayAsync();
            lock (latencies) latencies.Add(sw.Elapsed.TotalMilliseconds);
        }
    }
    await Task.WhenAll(Enumerable.Range(0, concurrency).Select(_ => Task.Run(Worker)));
    return (latencies.Count / clock.Elapsed.TotalSeconds, latencies);
}

static double P(List<double> xs, double p)
{
    var s = xs.Order().ToArray();
    return s.Length == 0 ? double.NaN : s[Math.Min(s.Length - 1, (int)Math.Ceiling(p / 100 * s.Length) - 1)];
}

static (double Sum, long Count) BatchStats(string metrics)
{
    double sum = 0;
    long count = 0;
    foreach (var line in metrics.Split('\n'))
    {
        if (line.StartsWith("bert_batch_size_sum{", StringComparison.Ordinal)) sum += double.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
        if (line.StartsWith("bert_batch_size_count{", StringComparison.Ordinal)) count += long.Parse(line[(line.LastIndexOf(' ') + 1)..], CultureInfo.InvariantCulture);
    }
    return (sum, count);
}
