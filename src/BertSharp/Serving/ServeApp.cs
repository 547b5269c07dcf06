using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using BertSharp.Inference;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace BertSharp.Serving;

/// <summary>
/// <c>bert serve</c> as a library: <see cref="Build"/> loads the models and returns an ASP.NET Core minimal-API
/// application (Kestrel) with one route per task the models support, <c>/health</c>, <c>/v1/models</c>,
/// <c>/metrics</c>, <c>/openapi.json</c> and the playground page at <c>/</c>. Run it with <c>app.Run()</c>;
/// SIGTERM / Ctrl+C stop taking connections, finish the requests in flight, then drain and free the models.
/// </summary>
public sealed class ServeApp
{
    public static readonly JsonSerializerOptions Json = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        NumberHandling = System.Text.Json.Serialization.JsonNumberHandling.AllowNamedFloatingPointLiterals,
    };

    readonly ServeOptions _options;
    readonly IReadOnlyList<ServedModel> _models;
    readonly byte[]? _keyHash;
    public ServeMetrics Metrics { get; }

    ServeApp(ServeOptions options, IReadOnlyList<ServedModel> models, ServeMetrics metrics)
    {
        _options = options;
        _models = models;
        Metrics = metrics;
        _keyHash = options.ApiKey is null ? null : SHA256.HashData(Encoding.UTF8.GetBytes(options.ApiKey));
        metrics.SetQueues(() => _models.Select(m => (m.Name, m.QueueDepth)));
    }

    /// <summary>The tasks that get a route when at least one model supports them, with their paths.</summary>
    public static readonly (string Task, string Path)[] TaskRoutes =
    [
        (ServeTasks.Embeddings, "/v1/embeddings"), (ServeTasks.FillMask, "/fill-mask"), (ServeTasks.Nsp, "/nsp"),
        (ServeTasks.Classify, "/classify"), (ServeTasks.Ner, "/ner"), (ServeTasks.Qa, "/qa"), (ServeTasks.Tokenize, "/tokenize"),
    ];

    /// <summary>
    /// Loads every model of <paramref name="options"/> and builds the application. <paramref name="configure"/> runs
    /// on the builder last (tests use it for an in-memory server). <paramref name="log"/> gets one line per loaded model.
    /// </summary>
    public static WebApplication Build(ServeOptions options, Action<WebApplicationBuilder>? configure = null, Action<string>? log = null)
    {
        options.Validate();
        var metrics = new ServeMetrics();
        var models = new List<ServedModel>();
        try
        {
            foreach (var spec in options.Models)
            {
                var clock = Stopwatch.StartNew();
                var m = ServedModel.Load(spec, options, metrics);
                models.Add(m);
                log?.Invoke($"loaded {m.Name} ({m.Architecture ?? "BertModel"}, {m.Config.NumHiddenLayers} layers, hidden {m.Config.HiddenSize}) " +
                            $"in {clock.Elapsed.TotalSeconds:F1} s: {string.Join(", ", m.Tasks)}");
            }
        }
        catch
        {
            foreach (var m in models) m.Dispose();
            throw;
        }
        var serve = new ServeApp(options, models, metrics);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { ApplicationName = "BertSharp.Serving", ContentRootPath = AppContext.BaseDirectory });
        builder.Logging.ClearProviders();
        builder.Logging.AddSimpleConsole(o => o.SingleLine = true).SetMinimumLevel(LogLevel.Warning);
        var host = options.Host.Contains(':') && !options.Host.StartsWith('[') ? $"[{options.Host}]" : options.Host;
        builder.WebHost.UseUrls($"http://{host}:{options.Port}");
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxBodyBytes;
            k.AddServerHeader = false;
        });
        builder.Services.Configure<HostOptions>(o => o.ShutdownTimeout = TimeSpan.FromSeconds(30));
        configure?.Invoke(builder);

        var app = builder.Build();
        app.Lifetime.ApplicationStopped.Register(() => { foreach (var m in models) m.Dispose(); });
        app.Use(serve.Guard);
        serve.Map(app);
        return app;
    }

    public IReadOnlyList<ServedModel> Models => _models;

    // ---- middleware: metrics, errors, authentication ----

    async Task Guard(HttpContext ctx, RequestDelegate next)
    {
        var clock = Stopwatch.StartNew();
        try
        {
            if (_keyHash is not null && RequiresKey(ctx.Request.Path) && !Authorized(ctx.Request))
                throw new ApiException(401, "missing or wrong API key; send 'Authorization: Bearer KEY'", "authentication_error");
            await next(ctx);
        }
        catch (OperationCanceledException) when (ctx.RequestAborted.IsCancellationRequested)
        {
            ctx.Response.StatusCode = 499;   // client went away; nothing to write
        }
        catch (Exception e) when (!ctx.Response.HasStarted)
        {
            (int status, string type, string? param, string message) = e switch
            {
                ApiException a => (a.Status, a.Type, a.Param, a.Message),
                QueueFullException q => (429, "rate_limit_error", null, q.Message),
                BadHttpRequestException b when b.StatusCode == 413 => (413, "request_too_large", null, $"the request body is larger than the limit of {_options.MaxBodyBytes} bytes"),
                BadHttpRequestException b => (b.StatusCode, "invalid_request_error", null, b.Message),
                ArgumentException or FormatException or InvalidDataException => (400, "invalid_request_error", null, e.Message),
                _ => (500, "server_error", null, "internal error: " + e.GetType().Name),
            };
            if (e is QueueFullException full) Metrics.ObserveRejected(full.Model);
            if (status == 500) ctx.RequestServices.GetService<ILoggerFactory>()?.CreateLogger("BertSharp.Serving").LogError(e, "request failed");
            await WriteError(ctx, status, message, type, param);
        }
        finally
        {
            var route = (ctx.GetEndpoint() as RouteEndpoint)?.RoutePattern.RawText is { } raw && raw != FallbackPattern ? raw : "unmatched";
            Metrics.ObserveRequest(route, ctx.Response.StatusCode, clock.Elapsed.TotalSeconds);
        }
    }

    const string FallbackPattern = "{*path}";

    static bool RequiresKey(PathString path) => !(path == "/" || path == "/health");

    bool Authorized(HttpRequest request)
    {
        var header = request.Headers.Authorization.ToString();
        const string bearer = "Bearer ";
        if (!header.StartsWith(bearer, StringComparison.OrdinalIgnoreCase)) return false;
        // Hashing first makes the comparison independent of the key's length; FixedTimeEquals is constant-time in the content.
        var given = SHA256.HashData(Encoding.UTF8.GetBytes(header[bearer.Length..].Trim()));
        return CryptographicOperations.FixedTimeEquals(given, _keyHash);
    }

    static Task WriteError(HttpContext ctx, int status, string message, string type, string? param)
    {
        ctx.Response.StatusCode = status;
        if (status == 401) ctx.Response.Headers.WWWAuthenticate = "Bearer";
        return ctx.Response.WriteAsJsonAsync(new { error = new { message, type, param, code = (string?)null } }, Json);
    }

    // ---- routes ----

    void Map(WebApplication app)
    {
        app.MapGet("/", () => Results.Content(Playground.Html, "text/html; charset=utf-8"));
        app.MapGet("/health", () => Results.Json(new { status = "ok", models = _models.Select(m => m.Name) }, Json));
        app.MapGet("/v1/models", () => Results.Json(new { @object = "list", data = _models.Select(Describe) }, Json));
        app.MapGet("/metrics", () => Results.Text(Metrics.Render(), "text/plain; version=0.0.4; charset=utf-8"));
        app.MapGet("/openapi.json", () => Results.Text(OpenApiDocument.Write(SupportedRoutes()), "application/json"));
        foreach (var (task, path) in SupportedRoutes())
            app.MapPost(path, (Delegate)((HttpContext ctx) => Handle(ctx, task)));
        app.MapFallback(FallbackPattern, IResult (HttpContext ctx) =>
        {
            var path = ctx.Request.Path.Value ?? "/";
            if (TaskRoutes.Any(r => r.Path == path) && SupportedRoutes().All(r => r.Path != path))
                throw new ApiException(404, $"no model served here supports {path}; see GET /v1/models", "not_found_error");
            if (path is "/" or "/health" or "/v1/models" or "/metrics" or "/openapi.json" || SupportedRoutes().Any(r => r.Path == path))
                throw new ApiException(405, $"{ctx.Request.Method} is not allowed on {path}", "invalid_request_error");
            throw new ApiException(404, $"no route {ctx.Request.Method} {path}; see GET /openapi.json", "not_found_error");
        });
    }

    IEnumerable<(string Task, string Path)> SupportedRoutes() => TaskRoutes.Where(r => _models.Any(m => m.Supports(r.Task)));

    object Describe(ServedModel m) => new
    {
        id = m.Name,
        @object = "model",
        created = m.Created.ToUnixTimeSeconds(),
        owned_by = "bertsharp",
        architecture = m.Architecture ?? "BertModel",
        tasks = m.Tasks,
        layers = m.Config.NumHiddenLayers,
        hidden_size = m.Config.HiddenSize,
        max_length = m.MaxLength,
        vocab_size = m.Tokenizer.Vocab.Count,
        dimensions = m.Dimensions,
        pooling = m.Pooling,
        normalize = m.Normalize,
        labels = m.Tasks.Contains(ServeTasks.Classify) || m.Tasks.Contains(ServeTasks.Ner) ? m.Labels : null,
        mask_token = m.Tokenizer.Options.MaskToken,
    };

    /// <summary>The model a request names (<c>"model"</c>), else the first served model that supports <paramref name="task"/>.</summary>
    ServedModel Pick(JsonElement body, string task)
    {
        var name = RequestReader.OptionalString(body, "model");
        if (name is null) return _models.First(m => m.Supports(task));
        var model = _models.FirstOrDefault(m => m.Name == name)
            ?? throw new ApiException(404, $"model '{name}' is not served here (served: {string.Join(", ", _models.Select(m => m.Name))})", "not_found_error", "model");
        if (!model.Supports(task))
            throw ApiException.BadRequest($"model '{name}' does not support {task} (it supports: {string.Join(", ", model.Tasks)})", "model");
        return model;
    }

    async Task<IResult> Handle(HttpContext ctx, string task)
    {
        var body = await RequestReader.ReadObject(ctx, _options.MaxBodyBytes);
        var model = Pick(body, task);
        var ct = ctx.RequestAborted;
        switch (task)
        {
            case ServeTasks.Embeddings:
            {
                var texts = RequestReader.Texts(body, "input", _options);
                var format = RequestReader.OptionalString(body, "encoding_format") ?? "float";
                if (format is not ("float" or "base64")) throw ApiException.BadRequest($"'encoding_format' must be 'float' or 'base64' (got '{format}')", "encoding_format");
                if (body.TryGetProperty("dimensions", out var dims) && dims.ValueKind != JsonValueKind.Null
                    && (!dims.TryGetInt32(out var d) || d != model.Dimensions))
                    throw ApiException.BadRequest($"model '{model.Name}' produces {model.Dimensions}-dimensional embeddings; 'dimensions' must be {model.Dimensions} or absent", "dimensions");
                var r = (EmbedOutput)await model.Submit(task, texts, texts.Count, ct);
                int tokens = r.Tokens.Sum();
                return Results.Json(new
                {
                    @object = "list",
                    data = r.Vectors.Select((v, i) => new { @object = "embedding", index = i, embedding = format == "float" ? (object)v : Base64(v) }),
                    model = model.Name,
                    usage = new { prompt_tokens = tokens, total_tokens = tokens },
                }, Json);
            }
            case ServeTasks.Classify:
            case ServeTasks.Ner:
            {
                var texts = RequestReader.Texts(body, "input", _options);
                var pairs = task == ServeTasks.Classify ? RequestReader.Pairs(body, "text_pair", texts.Count, _options) : null;
                var r = (object[])await model.Submit(task, new PairInput(texts, pairs), texts.Count, ct);
                return Results.Json(new { @object = "list", model = model.Name, data = r }, Json);
            }
            case ServeTasks.Qa:
            {
                var questions = RequestReader.Texts(body, "question", _options);
                var contexts = RequestReader.Texts(body, "context", _options);
                if (questions.Count != contexts.Count)
                    throw ApiException.BadRequest($"'question' has {questions.Count} texts but 'context' has {contexts.Count}", "context");
                var r = (object[])await model.Submit(task, new QaInput(questions, contexts), questions.Count, ct);
                return Results.Json(new { @object = "list", model = model.Name, data = r }, Json);
            }
            case ServeTasks.FillMask:
            {
                var text = RequestReader.Text(body, "input", _options);
                int topK = RequestReader.Int(body, "top_k", 5, 1, 100);
                if (!text.Contains(model.Tokenizer.Options.MaskToken, StringComparison.Ordinal))
                    throw ApiException.BadRequest($"'input' contains no {model.Tokenizer.Options.MaskToken} token", "input");
                CheckLength(model, model.Tokenizer.CountTokens(text) + 2, "input");
                var r = (IReadOnlyList<MaskPredictions>)await model.Submit(task, new FillMaskInput(text, topK), 1, ct);
                return Results.Json(new
                {
                    model = model.Name,
                    masks = r.Select(m => new { position = m.Position, predictions = m.Predictions.Select(p => new { token = p.Token, id = p.Id, score = p.Score }) }),
                }, Json);
            }
            case ServeTasks.Nsp:
            {
                var a = RequestReader.Text(body, "text_a", _options);
                var b = RequestReader.Text(body, "text_b", _options);
                CheckLength(model, model.Tokenizer.CountTokens(a) + model.Tokenizer.CountTokens(b) + 3, "text_b");
                var r = (NextSentenceResult)await model.Submit(task, new NspInput(a, b), 1, ct);
                return Results.Json(new { model = model.Name, is_next_probability = r.IsNextProbability, logits = r.Logits }, Json);
            }
            case ServeTasks.Tokenize:
            {
                var texts = RequestReader.Texts(body, "input", _options);
                var pairs = RequestReader.Pairs(body, "text_pair", texts.Count, _options);
                var data = texts.Select((t, i) =>
                {
                    var e = model.Tokenizer.Encode(t, pairs?[i]);
                    return new
                    {
                        tokens = e.Tokens,
                        input_ids = e.InputIds,
                        token_type_ids = e.TokenTypeIds,
                        offsets = e.Offsets.Select(o => new[] { o.Start, o.End }),
                        length = e.Length,
                        exceeds_max_length = e.Length > model.MaxLength,
                    };
                }).ToList();
                return Results.Json(new { @object = "list", model = model.Name, data }, Json);
            }
            default:
                throw new InvalidOperationException(task);
        }
    }

    static void CheckLength(ServedModel model, int tokens, string param)
    {
        if (tokens > model.Config.MaxPositionEmbeddings)
            throw ApiException.BadRequest($"the input is {tokens} tokens long; model '{model.Name}' accepts at most {model.Config.MaxPositionEmbeddings}", param);
    }

    static string Base64(float[] v)
    {
        var bytes = new byte[v.Length * 4];
        Buffer.BlockCopy(v, 0, bytes, 0, bytes.Length);   // little-endian float32, as the OpenAI API encodes them
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("base64 embeddings need a little-endian machine");
        return Convert.ToBase64String(bytes);
    }
}

/// <summary>The playground page, an embedded resource (no CDN, no build step).</summary>
static class Playground
{
    public static readonly string Html = Read();

    static string Read()
    {
        using var s = typeof(Playground).Assembly.GetManifestResourceStream("BertSharp.Serving.playground.html")
            ?? throw new InvalidOperationException("the playground page is not embedded in the assembly");
        using var r = new StreamReader(s, Encoding.UTF8);
        return r.ReadToEnd();
    }
}
