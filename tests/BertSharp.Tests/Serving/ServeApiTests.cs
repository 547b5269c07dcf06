using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Inference;
using BertSharp.Serving;
using Xunit;

namespace BertSharp.Tests.Serving;

/// <summary>One in-memory server with tiny-random (pretraining heads) and the three golden task heads, shared by the class.</summary>
public sealed class TinyServeFixture : IAsyncLifetime
{
    internal ServeTestHost Host { get; private set; } = null!;
    public bool Available => TestAssets.MissingReason(ServeModels.Heads) is null || TestAssets.Required;

    public async Task InitializeAsync()
    {
        if (!Available) return;
        Host = await ServeTestHost.Start(ServeModels.TinyAll(o => o with { MaxTexts = 8, MaxChars = 2000, MaxBodyBytes = 64 * 1024, MaxWaitMs = 20, MaxBatch = 8 }));
    }

    public async Task DisposeAsync()
    {
        if (Host is not null) await Host.DisposeAsync();
    }
}

/// <summary>
/// Every route of <c>bert serve</c> against an independent reference: HF transformers' logits for the golden task
/// heads (classification scores, NER labels, QA spans), the library's <see cref="Embedder"/> and
/// <see cref="BertPipeline"/> for embeddings, fill-mask and NSP.
/// </summary>
public class ServeApiTests(TinyServeFixture fixture) : IClassFixture<TinyServeFixture>
{
    ServeTestHost Host => fixture.Host;

    static double[] Softmax(IEnumerable<double> logits)
    {
        var l = logits.ToArray();
        var max = l.Max();
        var e = l.Select(x => Math.Exp(x - max)).ToArray();
        var s = e.Sum();
        return e.Select(x => x / s).ToArray();
    }

    [AssetFact(ServeModels.Heads)]
    public async Task ModelsListsEachModelWithItsTasks()
    {
        var (status, body) = await Host.Get("/v1/models");
        Assert.Equal(200, status);
        var data = body!["data"]!.AsArray().ToDictionary(m => (string)m!["id"]!, m => m!);
        Assert.Equal(["tiny", "nli", "conll", "squad"], data.Keys);
        Assert.Equal(["embeddings", "fill-mask", "nsp", "tokenize"], data["tiny"]["tasks"]!.AsArray().Select(t => (string)t!));
        Assert.Equal(["classify", "tokenize"], data["nli"]["tasks"]!.AsArray().Select(t => (string)t!));
        Assert.Equal(["entailment", "neutral", "contradiction"], data["nli"]["labels"]!.AsArray().Select(t => (string)t!));
        Assert.Equal(["ner", "tokenize"], data["conll"]["tasks"]!.AsArray().Select(t => (string)t!));
        Assert.Equal(["qa", "tokenize"], data["squad"]["tasks"]!.AsArray().Select(t => (string)t!));
        Assert.Equal(128, (int)data["tiny"]["dimensions"]!);
        var (hs, health) = await Host.Get("/health");
        Assert.Equal(200, hs);
        Assert.Equal("ok", (string)health!["status"]!);
    }

    [AssetFact(ServeModels.Heads)]
    public async Task ClassifyMatchesHuggingFaceLogits()
    {
        var manifest = ServeModels.Manifest("seq-classification-3");
        var labels = manifest.GetProperty("id2label").EnumerateArray().Select(l => l.GetString()!).ToArray();
        double worst = 0;
        foreach (var c in manifest.GetProperty("cases").EnumerateArray())
        {
            var items = c.GetProperty("items").EnumerateArray().ToArray();
            var texts = items.Select(i => i.GetProperty("text_a").GetString()!).ToArray();
            var pairs = items.Select(i => i.GetProperty("text_b").ValueKind == JsonValueKind.String ? i.GetProperty("text_b").GetString() : null).ToArray();
            object request = pairs.All(p => p is null) ? new { model = "nli", input = texts } : new { model = "nli", input = texts, text_pair = pairs };
            var (status, body) = await Host.Post("/classify", request);
            Assert.True(status == 200, body?.ToJsonString());
            var data = body!["data"]!.AsArray();
            var logits = c.GetProperty("logits").EnumerateArray().ToArray();
            Assert.Equal(items.Length, data.Count);
            for (int r = 0; r < items.Length; r++)
            {
                var expected = Softmax(logits[r].EnumerateArray().Select(v => v.GetDouble()));
                var scores = data[r]!["scores"]!.AsArray().ToDictionary(s => (string)s!["label"]!, s => (double)s!["score"]!);
                for (int k = 0; k < labels.Length; k++) worst = Math.Max(worst, Math.Abs(scores[labels[k]] - expected[k]));
                Assert.Equal(labels[Array.IndexOf(expected, expected.Max())], (string)data[r]!["label"]!);
            }
        }
        Assert.True(worst <= 1e-4, $"max |Δ| of label scores vs HF softmax(logits) = {worst:E2}");
    }

    [AssetFact(ServeModels.Heads)]
    public async Task NerLabelsEveryWordByItsFirstSubTokenAsHuggingFace()
    {
        var manifest = ServeModels.Manifest("token-classification-9");
        var labels = manifest.GetProperty("id2label").EnumerateArray().Select(l => l.GetString()!).ToArray();
        int checkedWords = 0;
        foreach (var c in manifest.GetProperty("cases").EnumerateArray())
        {
            var items = c.GetProperty("items").EnumerateArray().ToArray();
            var argmax = c.GetProperty("argmax").EnumerateArray().ToArray();
            for (int r = 0; r < items.Length; r++)
            {
                var text = string.Join(' ', items[r].GetProperty("words").EnumerateArray().Select(w => w.GetString()));
                var (ts, tok) = await Host.Post("/tokenize", new { model = "conll", input = text });
                Assert.Equal(200, ts);
                var tokens = tok!["data"]![0]!["tokens"]!.AsArray().Select(t => (string)t!).ToArray();
                Assert.Equal(items[r].GetProperty("tokens").EnumerateArray().Select(t => t.GetString()), tokens);
                var offsets = tok["data"]![0]!["offsets"]!.AsArray().Select(o => ((int)o![0]!, (int)o[1]!)).ToArray();
                var (status, body) = await Host.Post("/ner", new { model = "conll", input = text });
                Assert.Equal(200, status);
                var words = body!["data"]![0]!["words"]!.AsArray();
                var rowArgmax = argmax[r].EnumerateArray().Select(v => v.GetInt32()).ToArray();
                foreach (var w in words)
                {
                    int start = (int)w!["start"]!, end = (int)w["end"]!;
                    int t = Array.FindIndex(offsets, o => o.Item1 == start && o.Item2 > o.Item1);
                    Assert.True(t > 0, $"no token starts at {start}");
                    Assert.Equal(labels[rowArgmax[t]], (string)w["label"]!);
                    Assert.Equal(text[start..end], (string)w["word"]!);
                    checkedWords++;
                }
                // entities are runs of B-/I- words of one type
                foreach (var e in body["data"]![0]!["entities"]!.AsArray())
                    Assert.Equal(text[(int)e!["start"]!..(int)e["end"]!], (string)e["word"]!);
            }
        }
        Assert.True(checkedWords >= 20, $"only {checkedWords} words checked");
    }

    [AssetFact(ServeModels.Heads)]
    public async Task QaPicksTheBestSpanOfHuggingFaceLogits()
    {
        var manifest = ServeModels.Manifest("question-answering");
        foreach (var c in manifest.GetProperty("cases").EnumerateArray())
        {
            var items = c.GetProperty("items").EnumerateArray().ToArray();
            var name = c.GetProperty("name").GetString()!;
            var start = ServeModels.Npy("question-answering", name, "start_logits");
            var end = ServeModels.Npy("question-answering", name, "end_logits");
            var mask = c.GetProperty("attention_mask").EnumerateArray().ToArray();
            var types = c.GetProperty("token_type_ids").EnumerateArray().ToArray();
            var ids = c.GetProperty("input_ids").EnumerateArray().ToArray();
            int len = mask[0].GetArrayLength();
            var questions = items.Select(i => i.GetProperty("question").GetString()!).ToArray();
            var contexts = items.Select(i => i.GetProperty("context").GetString()!).ToArray();
            var (status, body) = await Host.Post("/qa", new { model = "squad", question = questions, context = contexts });
            Assert.Equal(200, status);
            for (int r = 0; r < items.Length; r++)
            {
                var valid = Enumerable.Range(0, len).Where(t => mask[r][t].GetInt32() == 1).ToArray();
                var ps = Softmax(valid.Select(t => (double)start[r * len + t]));
                var pe = Softmax(valid.Select(t => (double)end[r * len + t]));
                var ctx = valid.Where(t => types[r][t].GetInt32() == 1 && ids[r][t].GetInt32() != 102).ToArray();
                (double best, int bs, int be) = (-1, -1, -1);
                foreach (var s in ctx)
                    foreach (var e in ctx)
                        if (e >= s && e - s < 30 && ps[s] * pe[e] > best) (best, bs, be) = (ps[s] * pe[e], s, e);
                var (_, tok) = await Host.Post("/tokenize", new { model = "squad", input = questions[r], text_pair = contexts[r] });
                var offsets = tok!["data"]![0]!["offsets"]!.AsArray();
                int cs = (int)offsets[bs]![0]!, ce = (int)offsets[be]![1]!;
                var got = body!["data"]![r]!;
                Assert.Equal(contexts[r][cs..ce], (string)got["answer"]!);
                Assert.Equal(cs, (int)got["start"]!);
                Assert.True(Math.Abs(best - (double)got["score"]!) <= 1e-5, $"{name}[{r}]: score {(double)got["score"]!} vs {best}");
            }
        }
    }

    [AssetFact(ServeModels.Heads)]
    public async Task EmbeddingsFillMaskAndNspEqualTheLibrary()
    {
        var texts = new[] { "The quick brown fox.", "", "Unicode: naïve café — 東京" };
        var (status, body) = await Host.Post("/v1/embeddings", new { input = texts, model = "tiny" });
        Assert.Equal(200, status);
        Assert.Equal("list", (string)body!["object"]!);
        Assert.Equal("tiny", (string)body["model"]!);
        using var embedder = Embedder.Load(TestAssets.Path(TestAssets.TinyRandom));
        var expected = embedder.Embed(texts);
        double worst = 0;
        var data = body["data"]!.AsArray();
        for (int i = 0; i < texts.Length; i++)
        {
            Assert.Equal("embedding", (string)data[i]!["object"]!);
            Assert.Equal(i, (int)data[i]!["index"]!);
            var v = data[i]!["embedding"]!.AsArray().Select(x => (float)x!).ToArray();
            Assert.Equal(expected[i].Length, v.Length);
            worst = Math.Max(worst, v.Zip(expected[i]).Max(p => Math.Abs(p.First - p.Second)));
        }
        Assert.True(worst <= 1e-5, $"max |Δ| vs Embedder = {worst:E2}");
        int tokens = texts.Sum(t => embedder.Encode(t, out _).Length);
        Assert.Equal(tokens, (int)body["usage"]!["prompt_tokens"]!);
        Assert.Equal(tokens, (int)body["usage"]!["total_tokens"]!);

        // base64: little-endian float32, the same numbers
        var (bs, b64) = await Host.Post("/v1/embeddings", new { input = texts[0], encoding_format = "base64" });
        Assert.Equal(200, bs);
        var bytes = Convert.FromBase64String((string)b64!["data"]![0]!["embedding"]!);
        var decoded = new float[bytes.Length / 4];
        Buffer.BlockCopy(bytes, 0, decoded, 0, bytes.Length);
        Assert.True(decoded.Zip(expected[0]).Max(p => Math.Abs(p.First - p.Second)) <= 1e-5);

        using var pipeline = BertPipeline.Load(TestAssets.Path(TestAssets.TinyRandom));
        var fm = pipeline.FillMask("paris is the [MASK] of france.", topK: 3)[0];
        var (fs, fill) = await Host.Post("/fill-mask", new { input = "paris is the [MASK] of france.", top_k = 3 });
        Assert.Equal(200, fs);
        var preds = fill!["masks"]![0]!["predictions"]!.AsArray();
        Assert.Equal(fm.Predictions.Select(p => p.Token), preds.Select(p => (string)p!["token"]!));
        Assert.Equal(fm.Position, (int)fill["masks"]![0]!["position"]!);
        Assert.True(fm.Predictions.Zip(preds).All(p => Math.Abs(p.First.Score - (double)p.Second!["score"]!) <= 1e-6));

        var nsp = pipeline.NextSentence("I went to the store.", "I bought milk.");
        var (ns, nb) = await Host.Post("/nsp", new { text_a = "I went to the store.", text_b = "I bought milk." });
        Assert.Equal(200, ns);
        Assert.True(Math.Abs(nsp.IsNextProbability - (double)nb!["is_next_probability"]!) <= 1e-6);
    }

    [AssetFact(ServeModels.Heads)]
    public async Task TokenizeReturnsHfIdsAndOffsets()
    {
        var (status, body) = await Host.Post("/tokenize", new { input = new[] { "Hello, world!" }, model = "tiny" });
        Assert.Equal(200, status);
        var row = body!["data"]![0]!;
        Assert.Equal([101, 7592, 1010, 2088, 999, 102], row["input_ids"]!.AsArray().Select(i => (int)i!));
        Assert.Equal(["[CLS]", "hello", ",", "world", "!", "[SEP]"], row["tokens"]!.AsArray().Select(i => (string)i!));
        Assert.Equal("[[0,0],[0,5],[5,6],[7,12],[12,13],[0,0]]", row["offsets"]!.ToJsonString());
    }

    [AssetFact(ServeModels.Heads)]
    public async Task BadInputIsA400WithTheFieldNamed()
    {
        async Task Expect(int code, string path, string raw, string? param, string contains)
        {
            var (status, body) = await Host.PostRaw(path, raw);
            Assert.True(code == status, $"{path} {raw}: {status} {body?.ToJsonString()}");
            var error = body!["error"]!;
            Assert.Contains(contains, (string)error["message"]!);
            Assert.Equal(param, (string?)error["param"]);
            Assert.False(string.IsNullOrEmpty((string?)error["type"]));
        }
        await Expect(400, "/v1/embeddings", "{\"input\": [\"a\", ", null, "not valid JSON");
        await Expect(400, "/v1/embeddings", "[1,2]", null, "must be a JSON object");
        await Expect(400, "/v1/embeddings", "{}", "input", "'input' is required");
        await Expect(400, "/v1/embeddings", "{\"input\": 3}", "input", "a string or an array of strings");
        await Expect(400, "/v1/embeddings", "{\"input\": [\"a\", 7]}", "input[1]", "'input[1]' must be a string");
        await Expect(400, "/v1/embeddings", "{\"input\": []}", "input", "empty array");
        await Expect(400, "/v1/embeddings", JsonSerializer.Serialize(new { input = Enumerable.Repeat("x", 9) }), "input", "at most 8 per request");
        await Expect(400, "/v1/embeddings", JsonSerializer.Serialize(new { input = new[] { "ok", new string('x', 2001) } }), "input[1]", "at most 2000 per text");
        await Expect(400, "/v1/embeddings", "{\"input\": \"a\", \"dimensions\": 7}", "dimensions", "128-dimensional");
        await Expect(404, "/v1/embeddings", "{\"input\": \"a\", \"model\": \"gpt-4\"}", "model", "not served here");
        await Expect(400, "/v1/embeddings", "{\"input\": \"a\", \"model\": \"nli\"}", "model", "does not support embeddings");
        await Expect(400, "/fill-mask", "{\"input\": \"no mask here\"}", "input", "contains no [MASK]");
        await Expect(400, "/fill-mask", "{\"input\": \"a [MASK]\", \"top_k\": 0}", "top_k", "1..100");
        await Expect(400, "/nsp", "{\"text_a\": \"a\"}", "text_b", "'text_b' is required");
        await Expect(400, "/classify", "{\"input\": [\"a\", \"b\"], \"text_pair\": [\"c\"]}", "text_pair", "one pair text (or null) per input");
        await Expect(400, "/qa", "{\"question\": [\"a\", \"b\"], \"context\": \"c\"}", "context", "'question' has 2");
        await Expect(413, "/v1/embeddings", JsonSerializer.Serialize(new { input = new string('x', 70 * 1024) }), null, "at most 65536 bytes");
        await Expect(404, "/v2/nothing", "{}", null, "no route POST /v2/nothing");

        var (gs, gb) = await Host.Get("/v1/embeddings");
        Assert.Equal(405, gs);
        Assert.Contains("GET is not allowed", (string)gb!["error"]!["message"]!);
        var (us, ub) = await Host.Get("/no/such/page.txt");
        Assert.Equal(404, us);
        Assert.Equal("not_found_error", (string)ub!["error"]!["type"]!);
    }

    [AssetFact(ServeModels.Heads)]
    public async Task OpenApiDescribesTheServedRoutes()
    {
        var (status, doc) = await Host.Get("/openapi.json");
        Assert.Equal(200, status);
        Assert.Equal("3.0.3", (string)doc!["openapi"]!);
        var paths = doc["paths"]!.AsObject().Select(p => p.Key).ToHashSet();
        foreach (var p in new[] { "/v1/embeddings", "/fill-mask", "/nsp", "/classify", "/ner", "/qa", "/tokenize", "/health", "/v1/models", "/metrics" })
            Assert.Contains(p, paths);
        Assert.NotNull(doc["paths"]!["/classify"]!["post"]!["requestBody"]!["content"]!["application/json"]!["example"]);
    }

    [AssetFact(ServeModels.Heads)]
    public async Task PlaygroundIsOneSelfContainedPage()
    {
        using var resp = await Host.Client.GetAsync("/");
        Assert.Equal("text/html", resp.Content.Headers.ContentType?.MediaType);
        var html = await resp.Content.ReadAsStringAsync();
        foreach (var id in new[] { "box-embeddings", "box-fill-mask", "box-nsp", "box-classify", "box-ner", "box-qa", "model-info" })
            Assert.Contains($"id=\"{id}\"", html);
        // no CDN: nothing is loaded from another origin
        Assert.DoesNotMatch(@"(src|href)\s*=\s*[""']?(https?:)?//", html);
        Assert.Contains("/v1/models", html);
    }

    [AssetFact(ServeModels.Heads)]
    public async Task MetricsArePrometheusText()
    {
        await Host.Post("/tokenize", new { input = "x" });
        var text = await Host.Metrics();
        Assert.Contains("# TYPE bert_requests_total counter", text);
        Assert.Matches(@"bert_requests_total\{route=""/tokenize"",status=""200""\} [1-9]", text);
        Assert.Contains("# TYPE bert_request_duration_seconds histogram", text);
        Assert.Contains("bert_request_duration_seconds_bucket{route=\"/tokenize\",le=\"+Inf\"}", text);
        Assert.Contains("bert_queue_depth{model=\"tiny\"} 0", text);
        Assert.Contains("bert_queue_depth{model=\"squad\"} 0", text);
        foreach (var line in text.Split('\n', StringSplitOptions.RemoveEmptyEntries).Where(l => !l.StartsWith('#')))
            Assert.Matches(@"^[a-z_]+(\{[^}]*\})? -?[0-9.eE+-]+$", line);
    }
}

/// <summary>/v1/embeddings on the sentence-transformers model the issue names, against <see cref="Embedder"/>.</summary>
public class ServeMiniLmTests
{
    [AssetFact(ServeModels.MiniLm)]
    public async Task EmbeddingsOfMiniLmEqualTheEmbedder()
    {
        var path = TestAssets.Path(ServeModels.MiniLm);
        await using var host = await ServeTestHost.Start(new ServeOptions { Models = [ServedModelSpec.Parse(path)] });
        var texts = new[] { "A man is eating food.", "A man is eating a piece of bread.", "The girl is carrying a baby.", "A man is riding a horse." };
        var (status, body) = await host.Post("/v1/embeddings", new { input = texts });
        Assert.Equal(200, status);
        Assert.Equal("all-MiniLM-L6-v2", (string)body!["model"]!);
        using var embedder = Embedder.Load(path);
        var expected = embedder.Embed(texts);
        double worst = 0;
        for (int i = 0; i < texts.Length; i++)
        {
            var v = body["data"]![i]!["embedding"]!.AsArray().Select(x => (float)x!).ToArray();
            Assert.Equal(384, v.Length);
            worst = Math.Max(worst, v.Zip(expected[i]).Max(p => Math.Abs(p.First - p.Second)));
        }
        Assert.True(worst <= 1e-5, $"max |Δ| vs Embedder = {worst:E2}");
        var (_, models) = await host.Get("/v1/models");
        Assert.Equal(["embeddings", "tokenize"], models!["data"]![0]!["tasks"]!.AsArray().Select(t => (string)t!));
    }
}
