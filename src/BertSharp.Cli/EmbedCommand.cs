using System.CommandLine;
using System.Diagnostics;
using BertSharp.Inference;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace BertSharp.Cli;

/// <summary><c>bert embed</c>: one sentence vector per input line, written as .npy or .jsonl.</summary>
static class EmbedCommand
{
    public static Command Create()
    {
        var m = new ModelOptions();
        var input = new Option<string>("--input") { Description = "UTF-8 text file, one text per line (an empty line is the empty text)", Required = true };
        var output = new Option<string>("--output") { Description = "OUT.npy (float32 [N, H], C order) or OUT.jsonl ({\"index\", \"embedding\"} per line)", Required = true };
        var pooling = new Option<string?>("--pooling") { Description = "mean | cls | max | pooler (default: the model's sentence-transformers pooling, else mean)" };
        var normalize = new Option<bool>("--normalize") { Description = "L2-normalise every vector (default: on when modules.json lists a Normalize module)" };
        var noNormalize = new Option<bool>("--no-normalize") { Description = "Do not normalise, even when the model's modules.json would" };
        var batch = new Option<int>("--batch-size") { Description = "Texts per forward pass", DefaultValueFactory = _ => 32 };
        var maxLength = new Option<int?>("--max-length") { Description = "Tokens per text incl. [CLS]/[SEP]; longer texts are cut and counted (default: the model's)" };
        var cmd = new Command("embed", "Sentence embeddings: one vector per input line (mean/cls/max/pooler pooling), as .npy or .jsonl");
        foreach (var o in new Option[] { input, output, pooling, normalize, noNormalize, batch, maxLength }) cmd.Options.Add(o);
        m.AddTo(cmd);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var outPath = parse.GetValue(output)!;
            EmbeddingFiles.FormatOf(outPath);   // refuse an unknown extension before any work
            if (parse.GetValue(normalize) && parse.GetValue(noNormalize)) throw new ArgumentException("give --normalize or --no-normalize, not both");
            if (parse.GetValue(batch) < 1) throw new ArgumentException($"--batch-size must be at least 1 (got {parse.GetValue(batch)})");
            var texts = EmbeddingFiles.ReadTexts(parse.GetValue(input)!);
            Runtime.SetThreads(parse.GetValue(m.Threads));
            var options = new EmbedderOptions
            {
                Pooling = parse.GetValue(pooling) is { } p ? SentenceTransformersConfig.ParsePooling(p) : null,
                Normalize = parse.GetValue(normalize) ? true : parse.GetValue(noNormalize) ? false : null,
                BatchSize = parse.GetValue(batch),
                MaxLength = parse.GetValue(maxLength),
                DType = Runtime.ParseDType(parse.GetValue(m.DType)),
                Device = Runtime.ParseDevice(parse.GetValue(m.Device)),
            };
            using var embedder = Embedder.Load(parse.GetValue(m.Model) ?? "", options);
            if (parse.GetValue(Cli.VerboseOption)) foreach (var line in embedder.Settings) Console.Error.WriteLine($"bert: {line}");
            var clock = Stopwatch.StartNew();
            var result = RunWithProgress(embedder, texts);
            EmbeddingFiles.Write(outPath, result.Vectors, embedder.Dimensions);
            double seconds = clock.Elapsed.TotalSeconds;
            double rate = texts.Count / Math.Max(seconds, 1e-9);
            var pool = embedder.Pooling.ToString().ToLowerInvariant();
            if (parse.GetValue(m.Json))
            {
                Cli.WriteJson(new
                {
                    output = Path.GetFullPath(outPath),
                    rows = texts.Count,
                    dimensions = embedder.Dimensions,
                    pooling = pool,
                    normalize = embedder.Normalize,
                    max_length = embedder.MaxLength,
                    truncated = result.Truncated.Count,
                    tokens = result.Tokens,
                    seconds,
                    texts_per_second = rate,
                });
                return 0;
            }
            Console.WriteLine($"wrote {texts.Count} × {embedder.Dimensions} embeddings to {outPath} " +
                              $"({pool} pooling{(embedder.Normalize ? ", L2-normalised" : "")}) in {seconds:F2} s ({rate:F1} texts/s)");
            if (result.Truncated.Count > 0)
                Console.Error.WriteLine($"bert: note: {result.Truncated.Count} of {texts.Count} texts were longer than {embedder.MaxLength} tokens and were cut " +
                                        $"(first: line {result.Truncated[0] + 1}); --max-length sets the limit");
            return 0;
        }));
        return cmd;
    }

    /// <summary>Embeds with a progress bar (texts/s, ETA) on stderr when it is a terminal.</summary>
    static EmbeddingResult RunWithProgress(Embedder embedder, List<string> texts)
    {
        if (Console.IsErrorRedirected || texts.Count == 0) return embedder.EmbedWithReport(texts);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        EmbeddingResult? result = null;
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new TextsPerSecondColumn(),
                new ElapsedTimeColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("embedding", maxValue: texts.Count);
                result = embedder.EmbedWithReport(texts, n => task.Increment(n));
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
