using System.CommandLine;
using System.Diagnostics;
using BertSharp.Data;
using BertSharp.Tokenization;
using Spectre.Console;
using Spectre.Console.Rendering;

namespace BertSharp.Cli;

/// <summary><c>bert vocab train</c>: learn a WordPiece vocabulary from text or JSONL files.</summary>
public static class VocabCommand
{
    public static Command Create()
    {
        var input = new Option<string[]>("--input", "-i")
        {
            Description = "Input files (text: one text per line; jsonl: one object per line; dir: folders of .txt)",
            Required = true,
            AllowMultipleArgumentsPerToken = true,
        };
        var format = new Option<string?>("--format") { Description = "Input format: text, wikitext, jsonl or dir (default: jsonl for *.jsonl files, else text)" };
        var field = new Option<string>("--field") { Description = "JSONL field holding the text", DefaultValueFactory = _ => "text" };
        var vocabSize = new Option<int>("--vocab-size") { Description = "Exact number of tokens (lines) to write", Required = true };
        var lowercase = new Option<bool>("--lowercase") { Description = "Lowercase and strip accents (an uncased vocabulary)" };
        var minFrequency = new Option<int>("--min-frequency") { Description = "Minimum use count of a learned subword", DefaultValueFactory = _ => 2 };
        var limitAlphabet = new Option<int>("--limit-alphabet") { Description = "Keep at most this many distinct characters (most frequent)", DefaultValueFactory = _ => 1000 };
        var reserved = new Option<int>("--reserved-unused") { Description = "Reserve [unused0..N-1] lines after the special tokens", DefaultValueFactory = _ => 0 };
        var threads = new Option<int>("--threads") { Description = "Counting threads (0 = one per core)", DefaultValueFactory = _ => 0 };
        var output = new Option<string>("--output", "-o") { Description = "Where to write vocab.txt", Required = true };

        var train = new Command("train", "Learn a WordPiece vocabulary (TF-Text's bottom-up learner) from a corpus")
        {
            input, format, field, vocabSize, lowercase, minFrequency, limitAlphabet, reserved, threads, output,
        };
        train.SetAction(parse => Cli.Run(parse, () =>
        {
            var paths = parse.GetValue(input) ?? [];
            var formatName = parse.GetValue(format);
            var corpus = new TextCorpusOptions
            {
                Format = formatName is null ? InferFormat(paths) : TextCorpusOptions.ParseFormat(formatName),
                Field = parse.GetValue(field) ?? "text",
            };
            var options = new WordPieceTrainerOptions
            {
                VocabSize = parse.GetValue(vocabSize),
                Lowercase = parse.GetValue(lowercase),
                MinFrequency = parse.GetValue(minFrequency),
                LimitAlphabet = parse.GetValue(limitAlphabet),
                ReservedUnused = parse.GetValue(reserved),
                Threads = parse.GetValue(threads),
            };
            options.Validate();
            TextCorpus.TotalBytes(TextCorpus.Files(paths, corpus.Format)); // missing inputs fail before any work
            var outPath = Path.GetFullPath(parse.GetValue(output)!);
            var outDir = Path.GetDirectoryName(outPath);
            if (!string.IsNullOrEmpty(outDir) && !Directory.Exists(outDir)) throw new DirectoryNotFoundException($"output folder not found: {outDir}");
            if (Directory.Exists(outPath)) throw new ArgumentException($"--output {outPath} is a directory; give a file path such as {Path.Combine(outPath, "vocab.txt")}");

            var sw = Stopwatch.StartNew();
            var result = RunWithProgress(paths, corpus, options);
            WordPieceTrainer.Save(result.Vocabulary, outPath);
            if (result.ShortfallWarning(options.MinFrequency) is { } shortfall)
                Console.Error.WriteLine($"bert: warning: {shortfall}; {outPath} has {result.Vocabulary.Count:N0} lines");
            Console.Error.WriteLine($"bert: wrote {result.Vocabulary.Count:N0} tokens to {outPath} in {sw.Elapsed.TotalSeconds:F1} s " +
                                    $"({result.TotalWords:N0} words, {result.DistinctWords:N0} distinct, alphabet {result.AlphabetSize:N0}, " +
                                    $"{result.LearnedTokens:N0} subwords, threshold {result.Threshold:N0})");
            return 0;
        }));

        var vocab = new Command("vocab", "WordPiece vocabulary tools");
        vocab.Subcommands.Add(train);
        return vocab;
    }

    static CorpusFormat InferFormat(string[] paths) =>
        paths.Length > 0 && paths.All(p => p.EndsWith(".jsonl", StringComparison.OrdinalIgnoreCase)) ? CorpusFormat.Jsonl : CorpusFormat.Text;

    /// <summary>Trains, showing a progress display on stderr when it is a terminal.</summary>
    static WordPieceTrainingResult RunWithProgress(string[] paths, TextCorpusOptions corpus, WordPieceTrainerOptions options)
    {
        if (Console.IsErrorRedirected) return WordPieceTrainer.TrainFiles(paths, corpus, options);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        WordPieceTrainingResult? result = null;
        console.Progress()
            .AutoClear(false)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RateColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var counting = ctx.AddTask("counting", maxValue: Math.Max(1, TextCorpus.TotalBytes(TextCorpus.Files(paths, corpus.Format))));
                counting.State.Update<bool>("bytes", _ => true);
                var learning = ctx.AddTask("learning", autoStart: false, maxValue: 1);
                var progress = new Reporter(p =>
                {
                    switch (p.Stage)
                    {
                        case WordPieceTrainingStage.Counting:
                            if (p.Total > 0) counting.Value = p.Done;
                            break;
                        case WordPieceTrainingStage.Learning:
                            if (!counting.IsFinished) counting.Value = counting.MaxValue;
                            if (!learning.IsStarted) learning.StartTask();
                            learning.MaxValue = p.Total;
                            learning.Value = p.Done;
                            learning.Description = $"learning [grey]{Markup.Escape(p.Message)}[/]";
                            break;
                        case WordPieceTrainingStage.Done:
                            counting.Value = counting.MaxValue;
                            learning.Value = learning.MaxValue;
                            learning.Description = $"learning [grey]{Markup.Escape(p.Message)}[/]";
                            break;
                    }
                });
                result = WordPieceTrainer.TrainFiles(paths, corpus, options, progress);
                counting.StopTask();
                learning.StopTask();
            });
        return result!;
    }

    /// <summary>Synchronous IProgress (Progress&lt;T&gt; would post to the thread pool and report late).</summary>
    sealed class Reporter(Action<WordPieceTrainerProgress> report) : IProgress<WordPieceTrainerProgress>
    {
        public void Report(WordPieceTrainerProgress value) => report(value);
    }

    /// <summary>MB/s for the byte-counting task, steps/s otherwise.</summary>
    sealed class RateColumn : ProgressColumn
    {
        public override IRenderable Render(RenderOptions options, ProgressTask task, TimeSpan deltaTime)
        {
            var speed = task.Speed;
            if (speed is null) return new Text("");
            bool bytes = task.State.Get<bool>("bytes");
            return new Text(bytes ? $"{speed.Value / 1e6:F1} MB/s" : $"{speed.Value:F1} step/s");
        }
    }
}
