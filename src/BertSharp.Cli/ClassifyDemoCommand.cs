using System.CommandLine;
using System.Diagnostics;
using BertSharp.Inference;
using Spectre.Console;

namespace BertSharp.Cli;

/// <summary><c>bert classify-demo</c>: frozen BERT embeddings + a classic ML.NET classifier, scikit-learn's report.</summary>
static class ClassifyDemoCommand
{
    public static Command Create()
    {
        var m = new ModelOptions();
        var data = new Option<string?>("--data") { Description = "Labelled .jsonl/.csv/.tsv/.parquet, sampled (--n) and split (--test-ratio)" };
        var trainFile = new Option<string?>("--train") { Description = "Fixed split: the training file (--n caps its rows, seeded sample)" };
        var testFile = new Option<string?>("--test") { Description = "Fixed split: the test file (all rows)" };
        var textField = new Option<string>("--text-field") { Description = "JSONL field / CSV column of the text", DefaultValueFactory = _ => "text" };
        var labelField = new Option<string>("--label-field") { Description = "JSONL field / CSV column of the label", DefaultValueFactory = _ => "label" };
        var n = new Option<int>("--n") { Description = "Records to use (with --data: train + test; with --train: training rows)", DefaultValueFactory = _ => 1000 };
        var testRatio = new Option<double>("--test-ratio") { Description = "Share of the --n records held out for testing", DefaultValueFactory = _ => 0.2 };
        var seed = new Option<int>("--seed") { Description = "Seed of the sample, the split and the trainers", DefaultValueFactory = _ => 42 };
        var classifier = new Option<string>("--classifier") { Description = "logistic | sdca | fasttree | lightgbm", DefaultValueFactory = _ => "logistic" };
        var baseline = new Option<string?>("--baseline") { Description = "Also train a baseline on the same split: tfidf (ML.NET FeaturizeText word 1-2-gram TF-IDF + logistic regression)" };
        var baselineOnly = new Option<bool>("--baseline-only") { Description = "Train only the --baseline (no model is loaded)" };
        var pooling = new Option<string?>("--pooling") { Description = "mean | cls | max | pooler (default: the model's sentence-transformers pooling, else mean)" };
        var batch = new Option<int>("--batch-size") { Description = "Texts per forward pass", DefaultValueFactory = _ => 32 };
        var maxLength = new Option<int?>("--max-length") { Description = "Tokens per text incl. [CLS]/[SEP]; longer texts are cut, or windowed with --stride (default: the model's)" };
        var stride = new Option<int?>("--stride") { Description = "Split long texts into --max-length windows overlapping by this many tokens and average them (token-weighted) instead of cutting" };
        var cmd = new Command("classify-demo", "BERT sentence embeddings as features for a classic ML.NET classifier: scikit-learn's classification report and a confusion matrix");
        foreach (var o in new Option[] { data, trainFile, testFile, textField, labelField, n, testRatio, seed, classifier, baseline, baselineOnly, pooling, batch, maxLength, stride }) cmd.Options.Add(o);
        m.AddTo(cmd);
        m.AddEngineTo(cmd);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var total = Stopwatch.StartNew();
            var clf = ClassifyDemo.ParseClassifier(parse.GetValue(classifier)!);
            var baselineName = parse.GetValue(baseline);
            if (baselineName is not null && baselineName != "tfidf") throw new ArgumentException($"--baseline '{baselineName}' is not supported (expected tfidf)");
            string? d = parse.GetValue(data), tr = parse.GetValue(trainFile), te = parse.GetValue(testFile);
            if ((d is null) == (tr is null && te is null) || (tr is null) != (te is null))
                throw new ArgumentException("give --data FILE, or --train FILE and --test FILE");
            int count = parse.GetValue(n), s = parse.GetValue(seed);
            if (count < 2) throw new ArgumentException($"--n must be at least 2 (got {count})");
            string tf = parse.GetValue(textField)!, lf = parse.GetValue(labelField)!;
            List<LabelledText> train, test;
            if (d is not null) (train, test) = ClassifyDemo.Split(ClassifyDemo.Read(d, tf, lf), count, parse.GetValue(testRatio), s);
            else
            {
                train = ClassifyDemo.Shuffle(ClassifyDemo.Read(tr!, tf, lf), s).Take(count).ToList();
                test = ClassifyDemo.Read(te!, tf, lf);
            }
            if (train.Select(t => t.Label).Distinct().Count() < 2) throw new ArgumentException($"the training split has only one label ('{train[0].Label}'); a classifier needs two or more");
            if (parse.GetValue(baselineOnly))
            {
                if (baselineName is null) throw new ArgumentException("--baseline-only needs --baseline tfidf");
                var only = ClassifyDemo.RunTfIdf(train, test, s);
                Print(only, null, s, total.Elapsed.TotalSeconds, parse.GetValue(m.Json));
                return 0;
            }

            if (parse.GetValue(stride) is not null && parse.GetValue(maxLength) is null) throw new ArgumentException("--stride needs --max-length (the window size)");
            Runtime.SetThreads(parse.GetValue(m.Threads));
            using var embedder = Embedder.Load(parse.GetValue(m.Model) ?? "", new EmbedderOptions
            {
                Pooling = parse.GetValue(pooling) is { } p ? SentenceTransformersConfig.ParsePooling(p) : null,
                BatchSize = parse.GetValue(batch) >= 1 ? parse.GetValue(batch) : throw new ArgumentException($"--batch-size must be at least 1 (got {parse.GetValue(batch)})"),
                MaxLength = parse.GetValue(maxLength),
                Stride = parse.GetValue(stride),
                Engine = m.ParseEngine(parse),
                Onnx = m.ParseOnnx(parse),
                DType = Runtime.ParseDType(parse.GetValue(m.DType)),
                Device = Runtime.ParseDevice(parse.GetValue(m.Device)),
            });
            var clock = Stopwatch.StartNew();
            var texts = train.Concat(test).Select(t => t.Text).ToList();
            var vectors = EmbedWithProgress(embedder, texts);
            double embedSeconds = clock.Elapsed.TotalSeconds;
            var results = new List<DemoResult>
            {
                ClassifyDemo.RunEmbeddings(vectors[..train.Count], train.Select(t => t.Label).ToList(), vectors[train.Count..], test.Select(t => t.Label).ToList(), clf, s, embedSeconds),
            };
            if (baselineName is not null) results.Add(ClassifyDemo.RunTfIdf(train, test, s));
            double wall = total.Elapsed.TotalSeconds;
            if (parse.GetValue(m.Json))
            {
                Cli.WriteJson(new
                {
                    model = embedder.ModelId,
                    pooling = embedder.Pooling.ToString().ToLowerInvariant(),
                    train = train.Count,
                    test = test.Count,
                    seed = s,
                    seconds = wall,
                    results = results.Select(r => new
                    {
                        features = r.Features,
                        classifier = r.Classifier,
                        feature_seconds = r.FeatureSeconds,
                        train_seconds = r.TrainSeconds,
                        accuracy = r.Report.Accuracy,
                        classes = r.Report.Classes.Select(c => new { label = c.Label, precision = c.Precision, recall = c.Recall, f1 = c.F1, support = c.Support }),
                        macro_avg = new { precision = r.Report.MacroAvg.Precision, recall = r.Report.MacroAvg.Recall, f1 = r.Report.MacroAvg.F1, support = r.Report.MacroAvg.Support },
                        weighted_avg = new { precision = r.Report.WeightedAvg.Precision, recall = r.Report.WeightedAvg.Recall, f1 = r.Report.WeightedAvg.F1, support = r.Report.WeightedAvg.Support },
                        confusion = new { labels = r.Report.Labels, matrix = r.Report.Confusion },
                    }),
                });
                return 0;
            }
            foreach (var r in results)
            {
                var what = r.Features == "embeddings"
                    ? $"{embedder.ModelId} embeddings ({embedder.Pooling.ToString().ToLowerInvariant()} pooling, {embedder.Dimensions} dims) + {r.Classifier}"
                    : "TF-IDF (word 1-2-grams) + logistic";
                Console.WriteLine($"== {what}: train {r.Train}, test {r.Test}, seed {s}" +
                                  (r.Features == "embeddings" ? $"; embedding {r.FeatureSeconds:F1} s, " : "; ") + $"training {r.TrainSeconds:F1} s");
                Console.WriteLine();
                Console.Write(r.Report.Format());
                Console.WriteLine();
                Console.WriteLine("confusion matrix (rows: true, columns: predicted)");
                Console.Write(r.Report.FormatConfusion());
                Console.WriteLine();
            }
            Console.WriteLine($"wall time {wall:F1} s");
            return 0;
        }));
        return cmd;
    }

    static void Print(DemoResult r, Embedder? embedder, int seed, double wall, bool json)
    {
        if (json)
        {
            Cli.WriteJson(new
            {
                train = r.Train,
                test = r.Test,
                seed,
                seconds = wall,
                results = new[] { new { features = r.Features, classifier = r.Classifier, train_seconds = r.TrainSeconds, accuracy = r.Report.Accuracy,
                    classes = r.Report.Classes.Select(c => new { label = c.Label, precision = c.Precision, recall = c.Recall, f1 = c.F1, support = c.Support }),
                    confusion = new { labels = r.Report.Labels, matrix = r.Report.Confusion } } },
            });
            return;
        }
        Console.WriteLine($"== TF-IDF (word 1-2-grams) + logistic: train {r.Train}, test {r.Test}, seed {seed}; training {r.TrainSeconds:F1} s");
        Console.WriteLine();
        Console.Write(r.Report.Format());
        Console.WriteLine();
        Console.WriteLine("confusion matrix (rows: true, columns: predicted)");
        Console.Write(r.Report.FormatConfusion());
        Console.WriteLine($"wall time {wall:F1} s");
    }

    static float[][] EmbedWithProgress(Embedder embedder, List<string> texts)
    {
        EmbeddingResult? result = null;
        if (Console.IsErrorRedirected) result = embedder.EmbedWithReport(texts);
        else
        {
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
            console.Progress().AutoClear(true)
                .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn(), new RemainingTimeColumn())
                .Start(ctx =>
                {
                    var task = ctx.AddTask("embedding", maxValue: Math.Max(texts.Count, 1));
                    result = embedder.EmbedWithReport(texts, k => task.Increment(k));
                });
        }
        Console.Error.WriteLine($"bert: note: engine {embedder.Engine.ToString().ToLowerInvariant()}; " + (result!.Windowed.Count > 0
            ? $"{result.Windowed.Count} of {texts.Count} texts were longer than {embedder.MaxLength} tokens and were split into {result.Windows} windows (overlap {embedder.Stride}), averaged token-weighted"
            : $"{result.Truncated.Count} of {texts.Count} texts were longer than {embedder.MaxLength} tokens and were cut" + (result.Truncated.Count > 0 ? " (--stride windows them instead)" : "")));
        return result.Vectors;
    }
}
