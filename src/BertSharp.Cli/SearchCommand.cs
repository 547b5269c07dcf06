using System.CommandLine;
using BertSharp.Inference;
using Spectre.Console;

namespace BertSharp.Cli;

/// <summary><c>bert search</c>: exact cosine top-k over a corpus embedded once into an index directory.</summary>
static class SearchCommand
{
    public static Command Create()
    {
        var m = new ModelOptions();
        var corpus = new Option<string?>("--corpus") { Description = "Texts to search: a text file (one per line), .jsonl (with --field) or .csv/.tsv/.parquet (with --column); needed to build an index" };
        var field = new Option<string?>("--field") { Description = "The JSONL string field holding the text" };
        var column = new Option<string?>("--column") { Description = "The CSV/TSV header column holding the text" };
        var index = new Option<string?>("--index") { Description = "Index directory: built from --corpus when it does not exist, reused when it does (refused if built with another model/pooling/layer)" };
        var query = new Option<string[]>("--query") { Description = "Query text (repeat for several)", Required = true, AllowMultipleArgumentsPerToken = false };
        var topK = new Option<int>("--top-k") { Description = "Hits per query", DefaultValueFactory = _ => 10 };
        var pooling = new Option<string?>("--pooling") { Description = "mean | cls | max | pooler (default: the model's sentence-transformers pooling, else mean)" };
        var layer = new Option<string>("--layer") { Description = "Hidden states to pool: -1 (last), -2, …, or avg-last-4", DefaultValueFactory = _ => "-1" };
        var batch = new Option<int>("--batch-size") { Description = "Texts per forward pass", DefaultValueFactory = _ => 32 };
        var maxLength = new Option<int?>("--max-length") { Description = "Tokens per text incl. [CLS]/[SEP] (default: the model's)" };
        var cmd = new Command("search", "Semantic search: embed a corpus once into an index directory, then exact cosine top-k for queries");
        foreach (var o in new Option[] { corpus, field, column, index, query, topK, pooling, layer, batch, maxLength }) cmd.Options.Add(o);
        m.AddTo(cmd);
        m.AddEngineTo(cmd);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var queries = parse.GetValue(query)!;
            int k = parse.GetValue(topK);
            if (k < 1) throw new ArgumentException($"--top-k must be at least 1 (got {k})");
            var corpusPath = parse.GetValue(corpus);
            var indexDir = parse.GetValue(index);
            string? f = parse.GetValue(field), c = parse.GetValue(column);
            bool build = indexDir is null || !Directory.Exists(indexDir);
            if (build)
            {
                if (corpusPath is null)
                    throw new ArgumentException(indexDir is null ? "give --corpus FILE (and --index DIR to keep the embedded corpus)" : $"--index {indexDir} does not exist; give --corpus FILE to build it");
                TextInputs.Validate(corpusPath, f, c);
            }
            else if (corpusPath is not null) TextInputs.Validate(corpusPath, f, c);
            VectorIndexInfo? existing = build ? null : VectorIndex.ReadInfo(indexDir!);
            Runtime.SetThreads(parse.GetValue(m.Threads));
            using var embedder = Embedder.Load(parse.GetValue(m.Model) ?? "", new EmbedderOptions
            {
                Pooling = parse.GetValue(pooling) is { } p ? SentenceTransformersConfig.ParsePooling(p) : null,
                Layer = EmbeddingLayer.Parse(parse.GetValue(layer)!),
                BatchSize = parse.GetValue(batch) >= 1 ? parse.GetValue(batch) : throw new ArgumentException($"--batch-size must be at least 1 (got {parse.GetValue(batch)})"),
                MaxLength = parse.GetValue(maxLength),
                DType = Runtime.ParseDType(parse.GetValue(m.DType)),
                Device = Runtime.ParseDevice(parse.GetValue(m.Device)),
                Engine = m.ParseEngine(parse),
                Onnx = m.ParseOnnx(parse),
            });
            if (existing?.Mismatch(embedder) is { } why)
                throw new ArgumentException($"{indexDir} was built with {why}; use the same settings, another --index, or delete it to rebuild");
            if (existing is not null && corpusPath is not null && existing.Corpus is { } was &&
                (Path.GetFullPath(corpusPath) != was || new FileInfo(corpusPath).Length != existing.CorpusBytes))
                throw new ArgumentException($"{indexDir} was built from {was} ({existing.CorpusBytes} bytes), not from {corpusPath} as it is now; delete it to rebuild");

            var clock = System.Diagnostics.Stopwatch.StartNew();
            VectorIndex idx;
            string? built = null;
            if (build)
            {
                var records = TextInputs.Read(corpusPath!, f, c);
                if (indexDir is not null)
                {
                    VectorIndex.BuildDirectory(embedder, records, corpusPath!, indexDir);
                    idx = VectorIndex.Open(indexDir);
                    built = indexDir;
                }
                else idx = VectorIndex.Build(embedder, records, corpusPath);
            }
            else idx = VectorIndex.Open(indexDir!);
            double buildSeconds = clock.Elapsed.TotalSeconds;
            clock.Restart();
            var qv = embedder.Embed(queries);
            var hits = qv.Select(v => idx.Search(v, k)).ToArray();
            double searchSeconds = clock.Elapsed.TotalSeconds;
            var texts = idx.Texts(hits.SelectMany(h => h.Select(x => x.Index)));
            if (parse.GetValue(m.Json))
            {
                Cli.WriteJson(new
                {
                    model = embedder.ModelId,
                    pooling = embedder.Pooling.ToString().ToLowerInvariant(),
                    index = indexDir is null ? null : Path.GetFullPath(indexDir),
                    built = built is not null,
                    count = idx.Count,
                    dimensions = idx.Dimensions,
                    load_seconds = buildSeconds,
                    search_seconds = searchSeconds,
                    queries = queries.Select((q, i) => new
                    {
                        query = q,
                        results = hits[i].Select((h, r) => new { rank = r + 1, index = h.Index, line = texts[h.Index].Line, score = h.Score, text = texts[h.Index].Text }),
                    }),
                });
                return 0;
            }
            if (built is not null) Console.Error.WriteLine($"bert: built index {built} ({idx.Count} texts) in {buildSeconds:F1} s");
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
            for (int i = 0; i < queries.Length; i++)
            {
                var table = new Table().Title(Markup.Escape($"query: {queries[i]}")).AddColumn("#").AddColumn(new TableColumn("score").RightAligned()).AddColumn("line").AddColumn("text");
                foreach (var (h, r) in hits[i].Select((h, r) => (h, r)))
                {
                    var t = texts[h.Index].Text.ReplaceLineEndings(" ");
                    table.AddRow($"{r + 1}", h.Score.ToString("F4"), $"{texts[h.Index].Line}", Markup.Escape(t.Length > 100 ? t[..99] + "…" : t));
                }
                console.Write(table);
            }
            return 0;
        }));
        return cmd;
    }
}
