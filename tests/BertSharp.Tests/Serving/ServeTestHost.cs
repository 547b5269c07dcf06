using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Serving;
using BertSharp.Tokenization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.TestHost;
using TorchSharp;

namespace BertSharp.Tests.Serving;

/// <summary>An in-memory <c>bert serve</c> (ASP.NET Core TestServer) for one options set, and the HTTP client to it.</summary>
sealed class ServeTestHost : IAsyncDisposable
{
    public WebApplication App { get; }
    public HttpClient Client { get; }

    ServeTestHost(WebApplication app)
    {
        App = app;
        Client = app.GetTestClient();
    }

    public static async Task<ServeTestHost> Start(ServeOptions options)
    {
        var app = ServeApp.Build(options, b => b.WebHost.UseTestServer());
        await app.StartAsync();
        return new ServeTestHost(app);
    }

    public async Task<(int Status, JsonNode? Body)> Post(string path, object body, string? key = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = JsonContent.Create(body) };
        if (key is not null) req.Headers.Authorization = new("Bearer", key);
        return await Send(req);
    }

    public async Task<(int Status, JsonNode? Body)> PostRaw(string path, string body, string? key = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (key is not null) req.Headers.Authorization = new("Bearer", key);
        return await Send(req);
    }

    public async Task<(int Status, JsonNode? Body)> Get(string path, string? key = null)
    {
        using var req = new HttpRequestMessage(HttpMethod.Get, path);
        if (key is not null) req.Headers.Authorization = new("Bearer", key);
        return await Send(req);
    }

    async Task<(int, JsonNode?)> Send(HttpRequestMessage req)
    {
        using var resp = await Client.SendAsync(req);
        var text = await resp.Content.ReadAsStringAsync();
        JsonNode? node = null;
        if (resp.Content.Headers.ContentType?.MediaType == "application/json") node = JsonNode.Parse(text);
        return ((int)resp.StatusCode, node);
    }

    public async Task<string> Metrics() => await Client.GetStringAsync("/metrics");

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>
/// Servable copies of the golden task heads (../shared/golden/models/tiny-random/heads): each HF head checkpoint
/// (encoder from tiny-random, head tensors from the folder) loaded through the one name matcher and written as a
/// complete model directory with the vocabulary, as `bert finetune` would leave it. Built once per test run.
/// </summary>
static class ServeModels
{
    public const string Heads = TestAssets.TinyRandom + "/heads";
    public const string MiniLm = "assets/models/all-MiniLM-L6-v2";

    static readonly Lazy<string> Root = new(() =>
    {
        // Under the test output folder (ignored by git), rebuilt by every test run: nothing is left in the temp folder
        // when a run is killed.
        var root = Path.Combine(AppContext.BaseDirectory, "serve-models");
        if (Directory.Exists(root)) Directory.Delete(root, true);
        var tiny = TestAssets.Path(TestAssets.TinyRandom);
        var tokenizer = BertTokenizer.FromDirectory(tiny);
        var encoder = CheckpointFiles.LoadWeights(Path.Combine(tiny, "pytorch_model.bin"));
        try
        {
            foreach (var folder in new[] { "seq-classification-3", "token-classification-9", "question-answering" })
            {
                var dest = Path.Combine(root, folder);
                if (Directory.Exists(dest)) continue;
                var src = Path.Combine(TestAssets.Path(Heads), folder);
                var config = BertConfig.Load(Path.Combine(src, "config.json"));
                using var model = BertTaskModels.Create(config.Architectures![0], config);
                ModelUtils.InitWeights(model, config);
                StateDictLoader.Load(model, encoder, "tiny-random");
                var headFile = File.Exists(Path.Combine(src, "head.safetensors")) ? Path.Combine(src, "head.safetensors") : Path.Combine(src, "pytorch_model.bin");
                var head = CheckpointFiles.LoadWeights(headFile);
                try { StateDictLoader.Load(model, head, headFile); }
                finally { foreach (var t in head.Values) t.Dispose(); }
                ModelDirectory.Save(model, config, tokenizer, dest);
            }
        }
        finally
        {
            foreach (var t in encoder.Values) t.Dispose();
        }
        return root;
    });

    public static string Head(string folder) => Path.Combine(Root.Value, folder);

    public static JsonElement Manifest(string folder)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(TestAssets.Path(Heads), folder, "manifest.json")));
        return doc.RootElement.Clone();
    }

    public static float[] Npy(string folder, string @case, string name)
    {
        var a = BertSharp.Checkpoints.Npy.Read(Path.Combine(TestAssets.Path(Heads), folder, "golden", @case, name + ".npy"));
        using var t = a.ToTensor();
        return t.to(torch.ScalarType.Float32).contiguous().data<float>().ToArray();
    }

    /// <summary>The options for tiny-random (pretraining heads) plus the three task heads.</summary>
    public static ServeOptions TinyAll(Func<ServeOptions, ServeOptions>? tweak = null)
    {
        var o = new ServeOptions
        {
            Models =
            [
                new ServedModelSpec("tiny", TestAssets.Path(TestAssets.TinyRandom)),
                new ServedModelSpec("nli", Head("seq-classification-3")),
                new ServedModelSpec("conll", Head("token-classification-9")),
                new ServedModelSpec("squad", Head("question-answering")),
            ],
            Port = 0,
        };
        return tweak is null ? o : tweak(o);
    }
}
