using System.Diagnostics;
using System.Text.Json;
using BertSharp.Tokenization;
using Ml = Microsoft.ML.Tokenizers;

namespace BertSharp.Bench;

/// <summary>
/// `tokenizer` suite: tokens/s of BertSharp's BertTokenizer (ids only, and full encodings with offsets; one thread and
/// all cores) against Microsoft.ML.Tokenizers' BertTokenizer on the same IMDB texts, the WordPiece cores alone on the
/// same pre-tokenized words, and Microsoft.ML.Tokenizers' agreement with the Hugging Face goldens.
/// Args: [--texts N] [--passes N] [--corpus PATH].
/// </summary>
public static class TokenizerBench
{
    public static int Run(string[] args)
    {
        int maxTexts = int.MaxValue, passes = 3;
        string? corpus = null;
        for (int i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--texts": maxTexts = int.Parse(args[++i]); break;
                case "--passes": passes = int.Parse(args[++i]); break;
                case "--corpus": corpus = args[++i]; break;
                default: Console.Error.WriteLine($"unknown argument {args[i]}; usage: tokenizer [--texts N] [--passes N] [--corpus PATH]"); return 2;
            }
        }
        var root = SharedAssets.Root;
        if (root is null) { Console.Error.WriteLine("shared assets not found (set BERTSHARP_ASSETS)"); return 2; }
        string A(string rel) => Path.Combine(root, rel);
        corpus ??= A("assets/data/imdb/train.jsonl");
        var vocabPath = A("assets/vocab/bert-base-uncased/vocab.txt");

        var texts = File.ReadLines(corpus).Take(maxTexts)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!).ToArray();
        long chars = texts.Sum(t => (long)t.Length);

        var ours = BertTokenizer.FromVocabFile(vocabPath);
        var ml = Ml.BertTokenizer.Create(vocabPath, new Ml.BertOptions { LowerCaseBeforeTokenization = true, RemoveNonSpacingMarks = true });

        long ourTokens = texts.Sum(t => (long)ours.EncodeIds(t, null, false).Length);
        long mlTokens = texts.Sum(t => (long)ml.EncodeToIds(t, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true).Count);
        int sameIds = texts.Count(t => ours.EncodeIds(t, null, false).SequenceEqual(ml.EncodeToIds(t, addSpecialTokens: false, considerPreTokenization: true, considerNormalization: true)));

        Console.WriteLine($"## Tokenizer throughput ({DateTime.UtcNow:yyyy-MM-dd})");
        Console.WriteLine();
        Console.WriteLine($"- machine: {Machine.Cpu()}, {Environment.ProcessorCount} logical cores, .NET {Environment.Version}, server GC {System.Runtime.GCSettings.IsServerGC}");
        Console.WriteLine($"- corpus: {Path.GetFileName(corpus)}, {texts.Length:N0} texts, {chars:N0} chars; bert-base-uncased vocab; best of {passes} passes");
        Console.WriteLine($"- tokens per pass (no [CLS]/[SEP]): BertSharp {ourTokens:N0}, Microsoft.ML.Tokenizers {mlTokens:N0}; identical ids on {sameIds:N0}/{texts.Length:N0} texts");
        Console.WriteLine();
        Console.WriteLine($"- load average before the run: {Machine.LoadAverage()} (the machine is shared; \"per CPU-s\" divides by the process's CPU time, which contention inflates less than wall time)");
        Console.WriteLine();
        Console.WriteLine("| tokenizer | output | threads | M tokens/s (wall) | M tokens per CPU-s | ms/pass |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|");
        int cores = Environment.ProcessorCount;

        void Row(string name, string output, int threads, long tokens, Action pass)
        {
            pass(); // warm-up (JIT, lazily built tables)
            double best = double.MaxValue, bestCpu = double.MaxValue;
            for (int p = 0; p < passes; p++)
            {
                GC.Collect();
                var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
                var sw = Stopwatch.StartNew();
                pass();
                best = Math.Min(best, sw.Elapsed.TotalSeconds);
                bestCpu = Math.Min(bestCpu, (Process.GetCurrentProcess().TotalProcessorTime - cpu0).TotalSeconds);
            }
            Console.WriteLine($"| {name} | {output} | {threads} | {tokens / best / 1e6:F2} | {tokens / bestCpu / 1e6:F2} | {best * 1000:F0} |");
        }

        Row("BertSharp", "ids", 1, ourTokens, () => { foreach (var t in texts) ours.EncodeIds(t); });
        Row("BertSharp", "full encoding + offsets", 1, ourTokens, () => { foreach (var t in texts) ours.Encode(t); });
        Row("BertSharp", "ids (EncodeIdsBatch)", cores, ourTokens, () => ours.EncodeIdsBatch(texts));
        Row("BertSharp", "full encoding + offsets (EncodeBatch)", cores, ourTokens, () => ours.EncodeBatch(texts));
        Row("Microsoft.ML.Tokenizers", "ids", 1, mlTokens, () => { foreach (var t in texts) ml.EncodeToIds(t); });
        Row("Microsoft.ML.Tokenizers", "tokens + offsets (EncodeToTokens)", 1, mlTokens, () => { foreach (var t in texts) ml.EncodeToTokens(t, out _); });
        Row("Microsoft.ML.Tokenizers", "ids (Parallel.For)", cores, mlTokens, () => Parallel.For(0, texts.Length, i => ml.EncodeToIds(texts[i])));

        // WordPiece cores alone, on the same words (BertSharp's pre-tokenization done beforehand).
        var words = texts.SelectMany(t => ours.BasicTokenizer.Split(t).Select(w => w.Text)).ToArray();
        var wp = Ml.WordPieceTokenizer.Create(vocabPath, new Ml.WordPieceOptions { PreTokenizer = null, Normalizer = null });
        var ids = new List<int>(64);
        long wpTokens = words.Sum(w => { ids.Clear(); ours.WordPiece.TokenizeToIds(w, ids); return (long)ids.Count; });
        int wpSame = words.Count(w => { ids.Clear(); ours.WordPiece.TokenizeToIds(w, ids); return ids.SequenceEqual(wp.EncodeToIds(w, false, false)); });
        Row("BertSharp WordPiece core", $"ids, {words.Length:N0} words", 1, wpTokens, () => { foreach (var w in words) { ids.Clear(); ours.WordPiece.TokenizeToIds(w, ids); } });
        Row("Microsoft.ML WordPieceTokenizer", $"ids, same words", 1, wpTokens, () => { foreach (var w in words) wp.EncodeToIds(w, false, false); });
        Console.WriteLine();
        Console.WriteLine($"WordPiece cores agree on {wpSame:N0}/{words.Length:N0} words.");

        // Agreement with the Hugging Face goldens (single texts, Rust fast ids).
        Console.WriteLine();
        Console.WriteLine("| golden file | BertSharp | Microsoft.ML.Tokenizers, BertOptions defaults | Microsoft.ML.Tokenizers, lowercase + RemoveNonSpacingMarks as HF |");
        Console.WriteLine("|---|---:|---:|---:|");
        foreach (var (file, vocab, lower) in new[]
        {
            ("uncased", "bert-base-uncased", true),
            ("multilingual_cased", "bert-base-multilingual-cased", false),
            ("chinese_vocab_uncased", "bert-base-chinese", true),
        })
        {
            var vp = A($"assets/vocab/{vocab}/vocab.txt");
            var o = BertTokenizer.FromVocabFile(vp, new BertTokenizerOptions { DoLowerCase = lower });
            var m = Ml.BertTokenizer.Create(vp, new Ml.BertOptions { LowerCaseBeforeTokenization = lower, RemoveNonSpacingMarks = lower });
            var md = Ml.BertTokenizer.Create(vp, new Ml.BertOptions { LowerCaseBeforeTokenization = lower });
            int n = 0, okOurs = 0, okMl = 0, okMlDefault = 0;
            foreach (var line in File.ReadLines(A($"golden/tokenizer/{file}.jsonl")))
            {
                var r = JsonDocument.Parse(line).RootElement;
                if (r.GetProperty("kind").GetString() != "single") continue;
                var text = r.GetProperty("text").GetString()!;
                var expected = r.GetProperty("rust_fast").GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()).ToArray();
                n++;
                if (o.EncodeIds(text).SequenceEqual(expected)) okOurs++;
                if (m.EncodeToIds(text, addSpecialTokens: true, considerPreTokenization: true, considerNormalization: true).SequenceEqual(expected)) okMl++;
                if (md.EncodeToIds(text, addSpecialTokens: true, considerPreTokenization: true, considerNormalization: true).SequenceEqual(expected)) okMlDefault++;
            }
            Console.WriteLine($"| {file} (single texts) | {okOurs}/{n} | {okMlDefault}/{n} | {okMl}/{n} |");
        }
        return 0;
    }
}
