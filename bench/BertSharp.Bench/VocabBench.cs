using System.Diagnostics;
using System.Runtime.InteropServices;
using BertSharp;
using BertSharp.Bench;
using BertSharp.Data;
using BertSharp.Tokenization;

/// <summary>
/// `vocab` suite: trains WordPiece vocabularies on IMDB train (lowercase) and measures, on IMDB test, the UNK rate and
/// fertility (wordpieces per whitespace-separated word), next to bert-base-uncased's vocabulary.
/// Usage: vocab [--train FILE] [--test FILE] [--sizes 8000,30522] [--reference VOCAB] [--min-frequency 2] [--keep DIR]
/// </summary>
static class VocabBench
{
    public static int Run(string[] args)
    {
        string root = SharedAssets.Root ?? "../shared";
        string train = Path.Combine(root, "assets/data/imdb/train.jsonl");
        string test = Path.Combine(root, "assets/data/imdb/test.jsonl");
        string reference = Path.Combine(root, "assets/vocab/bert-base-uncased/vocab.txt");
        int[] sizes = [8000, 30522];
        int minFrequency = 2;
        string? keep = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            switch (args[i])
            {
                case "--train": train = Next(); break;
                case "--test": test = Next(); break;
                case "--reference": reference = Next(); break;
                case "--sizes": sizes = Next().Split(',').Select(int.Parse).ToArray(); break;
                case "--min-frequency": minFrequency = int.Parse(Next()); break;
                case "--keep": keep = Next(); break;
                default: Console.Error.WriteLine($"vocab: unknown argument {args[i]}"); return 2;
            }
        }
        var corpus = new TextCorpusOptions { Format = CorpusFormat.Jsonl };
        var tokenizerOptions = new BertTokenizerOptions { DoLowerCase = true };
        var testDocs = TextCorpus.Read([test], corpus).ToList(); // <br /> stripped, as in training
        long whitespaceWords = testDocs.Sum(d => (long)d.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries).Length);

        var rows = new List<string>();
        var countOptions = new WordPieceTrainerOptions { Lowercase = true, MinFrequency = minFrequency };
        var sw = Stopwatch.StartNew();
        var cpu = Machine.CpuSeconds();
        var counts = WordPieceTrainer.CountWords(TextCorpus.Read([train], corpus), countOptions);
        double countSeconds = sw.Elapsed.TotalSeconds, countCpu = Machine.CpuSeconds() - cpu;
        Console.Error.WriteLine($"counting: {countSeconds:F1} s, {counts.Count:N0} distinct words");
        foreach (var size in sizes)
        {
            var options = countOptions with { VocabSize = size };
            sw.Restart();
            cpu = Machine.CpuSeconds();
            var result = WordPieceTrainer.Learn(counts, options);
            double learnSeconds = sw.Elapsed.TotalSeconds, learnCpu = Machine.CpuSeconds() - cpu;
            if (keep is not null)
            {
                Directory.CreateDirectory(keep);
                WordPieceTrainer.Save(result.Vocabulary, Path.Combine(keep, $"imdb-{size}.txt"));
            }
            var m = Measure(new BertTokenizer(result.Vocabulary, tokenizerOptions), testDocs);
            string time = $"{countSeconds + learnSeconds:F1} s ({countSeconds:F1} + {learnSeconds:F1}) | {countCpu + learnCpu:F1} s ({countCpu:F1} + {learnCpu:F1})";
            rows.Add(Row($"trained on IMDB train, {size:N0}", result.Vocabulary.Count, time, m, whitespaceWords));
            Console.Error.WriteLine($"vocab {size}: learning {learnSeconds:F1} s, threshold {result.Threshold}, alphabet {result.AlphabetSize}");
        }
        if (File.Exists(reference))
        {
            var vocab = Vocabulary.Load(reference);
            var m = Measure(new BertTokenizer(vocab, tokenizerOptions), testDocs);
            rows.Add(Row("bert-base-uncased", vocab.Count, "— | —", m, whitespaceWords));
        }

        Console.WriteLine($"Machine: {RuntimeInformation.OSDescription}, {Environment.ProcessorCount} cores, {Machine.Cpu()}, .NET {Environment.Version}; load average at the end: {Machine.LoadAverage()}");
        Console.WriteLine($"Train: {train}; test: {test} ({testDocs.Count:N0} documents, {whitespaceWords:N0} whitespace-separated words; `<br />` → space)");
        Console.WriteLine();
        Console.WriteLine("| vocabulary | size | training wall time (count + learn) | CPU time (count + learn) | [UNK] tokens | UNK rate | fertility (pieces / whitespace word) | pieces / basic word |");
        Console.WriteLine("|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var r in rows) Console.WriteLine(r);
        return 0;
    }

    record struct Metrics(long Tokens, long Unk, long BasicWords);

    static string Row(string name, int size, string time, Metrics m, long whitespaceWords) =>
        $"| {name} | {size:N0} | {time} | {m.Unk:N0} | {100.0 * m.Unk / m.Tokens:F4} % | {(double)m.Tokens / whitespaceWords:F4} | {(double)m.Tokens / m.BasicWords:F4} |";

    /// <summary>Tokenizes every document (in parallel) and sums tokens, [UNK]s and pre-tokenized words.</summary>
    static Metrics Measure(BertTokenizer tokenizer, List<string> docs)
    {
        long tokens = 0, unk = 0, words = 0;
        var basic = new BasicTokenizer(tokenizer.Options);
        Parallel.ForEach(docs, () => new Metrics(), (doc, _, local) =>
        {
            var pieces = tokenizer.TokenizeWithOffsets(doc);
            long u = 0;
            foreach (var p in pieces) if (p.Token == tokenizer.Options.UnkToken) u++;
            return new Metrics(local.Tokens + pieces.Count, local.Unk + u, local.BasicWords + basic.Split(doc).Count);
        }, local =>
        {
            Interlocked.Add(ref tokens, local.Tokens);
            Interlocked.Add(ref unk, local.Unk);
            Interlocked.Add(ref words, local.BasicWords);
        });
        return new Metrics(tokens, unk, words);
    }
}
