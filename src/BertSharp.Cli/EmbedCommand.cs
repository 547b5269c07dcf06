using System.CommandLine;
using BertSharp.Inference;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace BertSharp.Cli;

/// <summary><c>bert embed</c>: one sentence vector per input text, streamed into .npy, .jsonl, .csv or .parquet.</summary>
static class EmbedCommand
{
    public static Command Create()
    {
        var m = new ModelOptions();
        var input = new Option<string>("--input") { Description = "Texts: a UTF-8 text file (one per line), .jsonl (with --field), .csv, .tsv or .parquet (with --column)", Required = true };
        var field = new Option<string?>("--field") { Description = "The JSONL string field holding the text" };
        var column = new Option<string?>("--column") { Description = "The CSV/TSV header column or Parquet string column holding the text" };
        var output = new Option<string>("--output") { Description = "OUT.npy (float32 [N, H], C order), OUT.jsonl ({\"index\", \"embedding\"} per line), OUT.csv (e0…e{H-1}) or OUT.parquet (index, embedding: fixed-size list of float32)", Required = true };
        var pooling = new Option<string?>("--pooling") { Description = "mean | cls | max | pooler (default: the model's sentence-transformers pooling, else mean)" };
        var layer = new Option<string>("--layer") { Description = "Hidden states to pool: -1 (last), -2, …, or avg-last-4", DefaultValueFactory = _ => "-1" };
        var normalize = new Option<bool>("--normalize") { Description = "L2-normalise every vector (default: on when modules.json lists a Normalize module)" };
        var noNormalize = new Option<bool>("--no-normalize") { Description = "Do not normalise, even when the model's modules.json would" };
        var batch = new Option<int>("--batch-size") { Description = "Texts per forward pass", DefaultValueFactory = _ => 32 };
        var chunk = new Option<int>("--chunk-size") { Description = "Texts read, length-sorted and written at a time (memory bound)", DefaultValueFactory = _ => EmbeddingJob.DefaultChunkSize };
        var maxLength = new Option<int?>("--max-length") { Description = "Tokens per text incl. [CLS]/[SEP]; longer texts are cut and counted, or windowed with --stride (default: the model's)" };
        var stride = new Option<int?>("--stride") { Description = "Split long texts into --max-length windows overlapping by this many tokens and average them (token-weighted) instead of cutting" };
        var cmd = new Command("embed", "Sentence embeddings: one vector per input text (mean/cls/max/pooler pooling), streamed into .npy, .jsonl, .csv or .parquet");
        foreach (var o in new Option[] { input, field, column, output, pooling, layer, normalize, noNormalize, batch, chunk, maxLength, stride }) cmd.Options.Add(o);
        m.AddTo(cmd);
        m.AddEngineTo(cmd);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var outPath = parse.GetValue(output)!;
            var inPath = parse.GetValue(input)!;
            EmbeddingFiles.FormatOf(outPath);   // refuse an unknown extension before any work
            if (parse.GetValue(normalize) && parse.GetValue(noNormalize)) throw new ArgumentException("give --normalize or --no-normalize, not both");
            if (parse.GetValue(batch) < 1) throw new ArgumentException($"--batch-size must be at least 1 (got {parse.GetValue(batch)})");
            if (parse.GetValue(chunk) < 1) throw new ArgumentException($"--chunk-size must be at least 1 (got {parse.GetValue(chunk)})");
            if (parse.GetValue(stride) is not null && parse.GetValue(maxLength) is null) throw new ArgumentException("--stride needs --max-length (the window size)");
            string? f = parse.GetValue(field), c = parse.GetValue(column);
            TextInputs.Validate(inPath, f, c);
            var layerValue = EmbeddingLayer.Parse(parse.GetValue(layer)!);
            Runtime.SetThreads(parse.GetValue(m.Threads));
            var options = new EmbedderOptions
            {
                Pooling = parse.GetValue(pooling) is { } p ? SentenceTransformersConfig.ParsePooling(p) : null,
                Normalize = parse.GetValue(normalize) ? true : parse.GetValue(noNormalize) ? false : null,
                BatchSize = parse.GetValue(batch),
                MaxLength = parse.GetValue(maxLength),
                DType = Runtime.ParseDType(parse.GetValue(m.DType)),
                Device = Runtime.ParseDevice(parse.GetValue(m.Device)),
                Layer = layerValue,
                Stride = parse.GetValue(stride),
                Engine = m.ParseEngine(parse),
                Onnx = m.ParseOnnx(parse),
            };
            using var embedder = Embedder.Load(parse.GetValue(m.Model) ?? "", options);
            if (parse.GetValue(Cli.VerboseOption)) foreach (var line in embedder.Settings) Console.Error.WriteLine($"bert: {line}");
            using var cts = new CancellationTokenSource();
            ConsoleCancelEventHandler onCancel = (_, e) => { e.Cancel = true; cts.Cancel(); };
            Console.CancelKeyPress += onCancel;
            EmbeddingJobReport r;
            try
            {
                r = RunWithProgress(embedder, inPath, f ?? c, outPath, parse.GetValue(chunk), cts.Token);
            }
            finally
            {
                Console.CancelKeyPress -= onCancel;
            }
            double rate = r.Rows / Math.Max(r.Seconds, 1e-9);
            var pool = embedder.Pooling.ToString().ToLowerInvariant();
            if (parse.GetValue(m.Json))
            {
                Cli.WriteJson(new
                {
                    output = Path.GetFullPath(outPath),
                    rows = r.Rows,
                    dimensions = embedder.Dimensions,
                    pooling = pool,
                    layer = embedder.Layer.ToString(),
                    engine = embedder.Engine.ToString().ToLowerInvariant(),
                    normalize = embedder.Normalize,
                    max_length = embedder.MaxLength,
                    stride = embedder.Stride,
                    truncated = r.Truncated,
                    windowed = r.Windowed,
                    windows = r.Windows,
                    tokens = r.Tokens,
                    seconds = r.Seconds,
                    texts_per_second = rate,
                });
                return 0;
            }
            Console.WriteLine($"wrote {r.Rows} × {embedder.Dimensions} embeddings to {outPath} " +
                              $"({pool} pooling{(embedder.Layer.IsLast ? "" : $" of layer {embedder.Layer}")}{(embedder.Normalize ? ", L2-normalised" : "")}) in {r.Seconds:F2} s ({rate:F1} texts/s)");
            if (r.Truncated > 0)
                Console.Error.WriteLine($"bert: note: {r.Truncated} of {r.Rows} texts were longer than {embedder.MaxLength} tokens and were cut " +
                                        $"(first: {(TextInputs.FormatOf(inPath) == TextInputFormat.Parquet ? "row" : "line")} {r.FirstTruncatedLine}); --max-length sets the limit, --stride windows them instead");
            if (r.Windowed > 0)
                Console.Error.WriteLine($"bert: note: {r.Windowed} of {r.Rows} texts were longer than {embedder.MaxLength} tokens and were split into {r.Windows} windows " +
                                        $"(overlap {embedder.Stride}), averaged token-weighted");
            return 0;
        }));
        return cmd;
    }

    /// <summary>Streams the input through the embedder, with a progress bar (texts/s, ETA) on stderr when it is a terminal.</summary>
    static EmbeddingJobReport RunWithProgress(Embedder embedder, string inPath, string? key, string outPath, int chunk, CancellationToken ct)
    {
        var records = TextInputs.Read(inPath, TextInputs.FormatOf(inPath) == TextInputFormat.Jsonl ? key : null,
            TextInputs.FormatOf(inPath) is TextInputFormat.Csv or TextInputFormat.Tsv or TextInputFormat.Parquet ? key : null);
        if (Console.IsErrorRedirected) return EmbeddingJob.Run(embedder, records, outPath, chunk, null, ct);
        long total = TextInputs.Count(inPath, TextInputs.FormatOf(inPath) == TextInputFormat.Jsonl ? key : null,
            TextInputs.FormatOf(inPath) is TextInputFormat.Csv or TextInputFormat.Tsv or TextInputFormat.Parquet ? key : null);   // a cheap streaming pass, for the ETA
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        EmbeddingJobReport? result = null;
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TextsPerSecondColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("embedding", maxValue: Math.Max(total, 1));
                result = EmbeddingJob.Run(embedder, records, outPath, chunk, n => task.Increment(n), ct);
                task.Value = task.MaxValue;
            });
        return result!;
    }

    sealed class TextsPerSecondColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime) =>
            new Text(task.Speed is { } v ? $"{v:F1} texts/s" : "");
    }
}
