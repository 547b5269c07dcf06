using System.CommandLine;
using BertSharp.Inference;
using BertSharp.Serving;
using Microsoft.AspNetCore.Builder;

namespace BertSharp.Cli;

/// <summary><c>bert serve</c>: an HTTP service (and playground page) for one or more models; all logic in <see cref="ServeApp"/>.</summary>
static class ServeCommand
{
    public static Command Create()
    {
        var models = new Option<string[]>("--model") { Description = "Model directory or Hub id, or NAME=PATH; repeat to serve several (default: $" + ModelResolver.EnvVar + ")", AllowMultipleArgumentsPerToken = false };
        var host = new Option<string>("--host") { Description = "Address to listen on", DefaultValueFactory = _ => "127.0.0.1" };
        var port = new Option<int>("--port") { Description = "TCP port (0 = any free port)", DefaultValueFactory = _ => 8080 };
        var maxBatch = new Option<int>("--max-batch") { Description = "Most texts per forward pass; concurrent requests are coalesced up to this", DefaultValueFactory = _ => 32 };
        var maxWait = new Option<int>("--max-wait-ms") { Description = "How long to wait for more requests to fill a batch", DefaultValueFactory = _ => 5 };
        var maxQueue = new Option<int>("--max-queue") { Description = "Requests waiting per model before 429", DefaultValueFactory = _ => 256 };
        var maxBody = new Option<long>("--max-body-bytes") { Description = "Largest request body (413 above)", DefaultValueFactory = _ => 1 << 20 };
        var maxTexts = new Option<int>("--max-texts") { Description = "Most texts per request (400 above)", DefaultValueFactory = _ => 256 };
        var maxChars = new Option<int>("--max-chars") { Description = "Most characters per text (400 above)", DefaultValueFactory = _ => 20_000 };
        var keyFile = new Option<string?>("--api-key-file") { Description = "File whose first line is the API key every route but / and /health requires (Authorization: Bearer KEY)" };
        var dtype = new Option<string>("--dtype") { Description = "float32 | bfloat16", DefaultValueFactory = _ => "float32" };
        var threads = new Option<int?>("--threads") { Description = "Intra-op threads (default: all cores)" };
        var cmd = new Command("serve", "HTTP service: embeddings (OpenAI shape), fill-mask, NSP, classify, NER, QA, tokenize, with dynamic batching, /metrics and a playground page");
        foreach (var o in new Option[] { models, host, port, maxBatch, maxWait, maxQueue, maxBody, maxTexts, maxChars, keyFile, dtype, threads }) cmd.Options.Add(o);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var given = parse.GetValue(models) is { Length: > 0 } m ? m
                : Environment.GetEnvironmentVariable(ModelResolver.EnvVar) is { Length: > 0 } env ? [env]
                : throw new ArgumentException("--model is required (or set $" + ModelResolver.EnvVar + ")");
            var options = new ServeOptions
            {
                Models = given.Select(ServedModelSpec.Parse).ToList(),
                Host = parse.GetValue(host)!,
                Port = parse.GetValue(port),
                MaxBatch = parse.GetValue(maxBatch),
                MaxWaitMs = parse.GetValue(maxWait),
                MaxQueue = parse.GetValue(maxQueue),
                MaxBodyBytes = parse.GetValue(maxBody),
                MaxTexts = parse.GetValue(maxTexts),
                MaxChars = parse.GetValue(maxChars),
                ApiKey = parse.GetValue(keyFile) is { } f ? ServeOptions.ReadApiKey(f) : null,
                DType = Runtime.ParseDType(parse.GetValue(dtype)),
                Threads = parse.GetValue(threads),
            };
            options.Validate();
            Runtime.SetThreads(options.Threads);
            var app = ServeApp.Build(options, log: line => Console.Error.WriteLine($"bert: {line}"));
            app.Lifetime.ApplicationStarted.Register(() =>
                Console.Error.WriteLine($"bert: serving on {string.Join(", ", app.Urls)} (playground at /, API at /openapi.json{(options.ApiKey is null ? "" : ", API key required")}); Ctrl+C stops"));
            app.Run();
            return 0;
        }));
        return cmd;
    }
}
