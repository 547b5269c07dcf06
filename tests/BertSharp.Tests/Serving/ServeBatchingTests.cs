using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using BertSharp.Inference;
using BertSharp.Serving;
using Xunit;

namespace BertSharp.Tests.Serving;

/// <summary>Dynamic batching, the bounded queue, cancellation and authentication.</summary>
public class ServeBatchingTests
{
    static readonly string[] Sentences = Enumerable.Range(0, 24)
        .Select(i => string.Join(' ', Enumerable.Repeat("word", 1 + i % 7)) + $" number {i} " + (i % 3 == 0 ? "with some extra tokens at the end" : ""))
        .ToArray();

    /// <summary>(count of batches of exactly one text, count of all batches) for a model/task, from /metrics.</summary>
    static (long Ones, long All) Batches(string metrics, string model, string task)
    {
        long Read(string le) =>
            long.Parse(Regex.Match(metrics, $@"bert_batch_size_bucket\{{model=""{model}"",task=""{task}"",le=""{Regex.Escape(le)}""\}} (\d+)").Groups[1].Value);
        return (Read("1"), Read("+Inf"));
    }

    [AssetFact(ServeModels.Heads)]
    public async Task ConcurrentRequestsAreBatchedAndEqualSingleRequests()
    {
        await using var host = await ServeTestHost.Start(ServeModels.TinyAll(o => o with { MaxBatch = 8, MaxWaitMs = 30 }));

        // one at a time: every request is its own batch
        var single = new List<float[]>();
        foreach (var s in Sentences)
        {
            var (status, body) = await host.Post("/v1/embeddings", new { input = s, model = "tiny" });
            Assert.Equal(200, status);
            single.Add(body!["data"]![0]!["embedding"]!.AsArray().Select(x => (float)x!).ToArray());
        }
        var singleClassify = new List<double[]>();
        foreach (var s in Sentences)
        {
            var (status, body) = await host.Post("/classify", new { input = s, text_pair = "a second sentence", model = "nli" });
            Assert.Equal(200, status);
            singleClassify.Add(body!["data"]![0]!["scores"]!.AsArray().OrderBy(x => (string)x!["label"]!).Select(x => (double)x!["score"]!).ToArray());
        }
        var before = await host.Metrics();
        Assert.Equal(Batches(before, "tiny", "embeddings").All, Batches(before, "tiny", "embeddings").Ones);

        // all at once
        var embedTasks = Sentences.Select(s => host.Post("/v1/embeddings", new { input = s, model = "tiny" })).ToArray();
        var classifyTasks = Sentences.Select(s => host.Post("/classify", new { input = s, text_pair = "a second sentence", model = "nli" })).ToArray();
        var embeds = await Task.WhenAll(embedTasks);
        var classes = await Task.WhenAll(classifyTasks);
        double worst = 0;
        for (int i = 0; i < Sentences.Length; i++)
        {
            Assert.Equal(200, embeds[i].Status);
            var v = embeds[i].Body!["data"]![0]!["embedding"]!.AsArray().Select(x => (float)x!).ToArray();
            worst = Math.Max(worst, v.Zip(single[i]).Max(p => Math.Abs(p.First - p.Second)));
            Assert.Equal(200, classes[i].Status);
            var c = classes[i].Body!["data"]![0]!["scores"]!.AsArray().OrderBy(x => (string)x!["label"]!).Select(x => (double)x!["score"]!).ToArray();
            worst = Math.Max(worst, c.Zip(singleClassify[i]).Max(p => Math.Abs(p.First - p.Second)));
        }
        Assert.True(worst <= 1e-5, $"batched vs single max |Δ| = {worst:E2}");

        var after = await host.Metrics();
        foreach (var (model, task) in new[] { ("tiny", "embeddings"), ("nli", "classify") })
        {
            var (b1, a1) = Batches(before, model, task);
            var (b2, a2) = Batches(after, model, task);
            long batches = a2 - a1, ones = b2 - b1;
            Assert.True(batches < Sentences.Length, $"{model}/{task}: {Sentences.Length} concurrent requests ran as {batches} batches (no coalescing)");
            Assert.True(batches > ones, $"{model}/{task}: no batch held more than one request");
            var sum = double.Parse(Regex.Match(after, $@"bert_batch_size_sum\{{model=""{model}"",task=""{task}""\}} ([0-9.eE+]+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
            Assert.Equal(2 * Sentences.Length, sum);   // every text counted once, single and batched runs
        }
    }

    [AssetFact(ServeModels.Heads)]
    public async Task ARequestLargerThanMaxBatchIsSplitByLengthAndKeepsItsOrder()
    {
        await using var host = await ServeTestHost.Start(ServeModels.TinyAll(o => o with { MaxBatch = 2, MaxWaitMs = 0 }));
        var texts = new[] { "short", "a much longer sentence with quite a few more words in it", "mid length text here", "x", "another fairly long one, with a comma" };
        var (status, body) = await host.Post("/ner", new { model = "conll", input = texts });
        Assert.Equal(200, status);
        var (cs, cls) = await host.Post("/classify", new { model = "nli", input = texts });
        Assert.Equal(200, cs);
        for (int i = 0; i < texts.Length; i++)
        {
            var (_, one) = await host.Post("/ner", new { model = "conll", input = texts[i] });
            var w1 = one!["data"]![0]!["words"]!.AsArray();
            var wb = body!["data"]![i]!["words"]!.AsArray();
            Assert.Equal(w1.Select(w => $"{w!["word"]}/{w["label"]}/{w["start"]}"), wb.Select(w => $"{w!["word"]}/{w["label"]}/{w["start"]}"));
            Assert.True(w1.Zip(wb).All(p => Math.Abs((double)p.First!["score"]! - (double)p.Second!["score"]!) <= 1e-5), $"ner text {i}");
            var (_, c1) = await host.Post("/classify", new { model = "nli", input = texts[i] });
            var a = c1!["data"]![0]!["scores"]!.AsArray().Select(x => (double)x!["score"]!).ToArray();
            var b = cls!["data"]![i]!["scores"]!.AsArray().Select(x => (double)x!["score"]!).ToArray();
            Assert.True(a.Zip(b).All(p => Math.Abs(p.First - p.Second) <= 1e-5), $"text {i}");
        }
        var (ones, all) = Batches(await host.Metrics(), "nli", "classify");
        Assert.True(all > ones, "the 5-text request was not run");
    }

    [AssetFact(ServeModels.Heads)]
    public async Task AFullQueueAnswers429AndTheRestSucceed()
    {
        await using var host = await ServeTestHost.Start(new ServeOptions
        {
            Models = [new ServedModelSpec("tiny", TestAssets.Path(TestAssets.TinyRandom))],
            MaxQueue = 1, MaxBatch = 1, MaxWaitMs = 0,
        });
        var longText = string.Join(' ', Enumerable.Repeat("tokens", 400));
        var results = await Task.WhenAll(Enumerable.Range(0, 48).Select(_ => Task.Run(() => host.Post("/v1/embeddings", new { input = new[] { longText, longText } }))));
        Assert.All(results, r => Assert.True(r.Status is 200 or 429, $"status {r.Status}"));
        var rejected = results.Where(r => r.Status == 429).ToList();
        Assert.NotEmpty(rejected);
        Assert.Contains(results, r => r.Status == 200);
        Assert.Equal("rate_limit_error", (string)rejected[0].Body!["error"]!["type"]!);
        var metrics = await host.Metrics();
        Assert.Contains($"bert_rejected_total{{model=\"tiny\"}} {rejected.Count}", metrics);
        Assert.Contains("bert_queue_depth{model=\"tiny\"} 0", metrics);
    }

    [AssetFact(ServeModels.Heads)]
    public async Task ApiKeyIsRequiredExceptForHealthAndThePage()
    {
        var keyFile = Path.GetTempFileName();
        try
        {
            File.WriteAllText(keyFile, "\n  s3cret-key  \n");
            var key = ServeOptions.ReadApiKey(keyFile);
            Assert.Equal("s3cret-key", key);
            await using var host = await ServeTestHost.Start(new ServeOptions { Models = [new ServedModelSpec("tiny", TestAssets.Path(TestAssets.TinyRandom))], ApiKey = key });
            var (s0, b0) = await host.Post("/tokenize", new { input = "x" });
            Assert.Equal(401, s0);
            Assert.Equal("authentication_error", (string)b0!["error"]!["type"]!);
            Assert.DoesNotContain("s3cret", b0.ToJsonString());
            Assert.Equal(401, (await host.Post("/tokenize", new { input = "x" }, key: "s3cret-kez")).Status);
            Assert.Equal(401, (await host.Post("/tokenize", new { input = "x" }, key: "s3cret-key-and-more")).Status);
            Assert.Equal(401, (await host.Get("/metrics")).Status);
            Assert.Equal(200, (await host.Post("/tokenize", new { input = "x" }, key: key)).Status);
            Assert.Equal(200, (await host.Get("/v1/models", key: key)).Status);
            Assert.Equal(200, (await host.Get("/health")).Status);
            Assert.Equal(System.Net.HttpStatusCode.OK, (await host.Client.GetAsync("/")).StatusCode);
        }
        finally
        {
            File.Delete(keyFile);
        }
    }

    [Fact]
    public async Task QueueCoalescesSkipsCancelledRequestsAndRefusesWhenFull()
    {
        using var gate = new ManualResetEventSlim(false);
        var seen = new List<List<int>>();
        var batches = new List<int>();
        using var queue = new BatchQueue("m", capacity: 3, maxBatch: 4, TimeSpan.FromMilliseconds(200), kind => kind == "b",
            (kind, jobs) =>
            {
                if (kind == "block") gate.Wait();
                lock (seen) seen.Add(jobs.Select(j => (int)j.Input).ToList());
                return jobs.Select(j => (object)((int)j.Input * 10)).ToArray();
            },
            (_, size) => { lock (batches) batches.Add(size); });

        var blocker = queue.Submit("block", 0, 1, default);          // the worker is now busy
        await Task.Delay(100);
        using var cts = new CancellationTokenSource();
        var a = queue.Submit("b", 1, 1, default);
        var cancelled = queue.Submit("b", 2, 1, cts.Token);
        var c = queue.Submit("b", 3, 1, default);
        Assert.Equal(3, queue.Depth);
        Assert.Throws<QueueFullException>(() => { _ = queue.Submit("b", 4, 1, default); });
        cts.Cancel();
        await Assert.ThrowsAnyAsync<OperationCanceledException>(() => cancelled);
        gate.Set();
        Assert.Equal(0, await blocker);
        Assert.Equal(10, await a);
        Assert.Equal(30, await c);
        Assert.Equal(0, queue.Depth);
        lock (seen)
        {
            Assert.Equal([0], seen[0]);
            Assert.Equal([1, 3], seen[1]);   // coalesced, without the cancelled request
        }
        Assert.Equal([1, 2], batches);
    }

    [Fact]
    public async Task OneFailingRequestDoesNotFailItsBatch()
    {
        using var queue = new BatchQueue("m", capacity: 8, maxBatch: 8, TimeSpan.FromMilliseconds(100), _ => true,
            (_, jobs) => jobs.Any(j => (int)j.Input < 0) ? throw new ArgumentException("negative input") : jobs.Select(j => (object)(int)j.Input).ToArray(),
            (_, _) => { });
        var good = queue.Submit("b", 5, 1, default);
        var bad = queue.Submit("b", -1, 1, default);
        Assert.Equal(5, await good);
        var e = await Assert.ThrowsAsync<ArgumentException>(() => bad);
        Assert.Equal("negative input", e.Message);
    }

    [Theory]
    [InlineData("path/to/all-MiniLM-L6-v2", "all-MiniLM-L6-v2", "path/to/all-MiniLM-L6-v2")]
    [InlineData("clf=out/sst2/", "clf", "out/sst2/")]
    [InlineData("org/name@main", "name", "org/name@main")]
    [InlineData("dir/with=sign", "with=sign", "dir/with=sign")]
    public void ModelSpecsParse(string value, string name, string path)
    {
        var spec = ServedModelSpec.Parse(value);
        Assert.Equal(name, spec.Name);
        Assert.Equal(path, spec.Path);
    }

    [Fact]
    public void OptionsAreValidated()
    {
        var ok = new ServeOptions { Models = [new ServedModelSpec("a", "x")] };
        ok.Validate();
        Assert.Contains("--max-batch", Assert.Throws<ArgumentException>(() => (ok with { MaxBatch = 0 }).Validate()).Message);
        Assert.Contains("given twice", Assert.Throws<ArgumentException>(() => (ok with { Models = [new("a", "x"), new("a", "y")] }).Validate()).Message);
        Assert.Contains("--port", Assert.Throws<ArgumentException>(() => (ok with { Port = 70000 }).Validate()).Message);
    }
}
