using System.Diagnostics;
using BertSharp.Inference;

/// <summary>`search [N] [DIMS] [QUERIES]`: exact cosine top-10 over N random normalised vectors (default 1,000,000 × 384).</summary>
static class SearchBench
{
    public static int Run(string[] args)
    {
        int n = args.Length > 0 ? int.Parse(args[0]) : 1_000_000, d = args.Length > 1 ? int.Parse(args[1]) : 384, queries = args.Length > 2 ? int.Parse(args[2]) : 20;
        var rng = new Random(1);
        var vectors = new float[n][];
        for (int i = 0; i < n; i++)
        {
            var v = new float[d];
            for (int j = 0; j < d; j++) v[j] = (float)(rng.NextDouble() * 2 - 1);
            vectors[i] = v;
        }
        var clock = Stopwatch.StartNew();
        var index = VectorIndex.FromVectors(vectors, d);
        vectors = null!;
        GC.Collect();
        double load = clock.Elapsed.TotalSeconds;
        var q = new float[d];
        for (int j = 0; j < d; j++) q[j] = (float)(rng.NextDouble() * 2 - 1);
        index.Search(q, 10);   // warm-up
        clock.Restart();
        for (int r = 0; r < queries; r++) { q[r % d] += 0.5f; index.Search(q, 10); }
        double per = clock.Elapsed.TotalSeconds / queries;
        Console.WriteLine($"| vectors | dims | threads | normalise+copy s | top-10 query ms | GB/s scanned |");
        Console.WriteLine($"|---|---|---|---|---|---|");
        Console.WriteLine($"| {n:N0} | {d} | {Environment.ProcessorCount} | {load:F2} | {per * 1000:F1} | {(double)n * d * 4 / per / 1e9:F1} |");
        return 0;
    }
}
