using System.Diagnostics;
using BertSharp.Bench;
using BertSharp.Export;
using BertSharp.Inference;
using BertSharp.Modeling;
using Microsoft.ML.OnnxRuntime;
using static TorchSharp.torch;

/// <summary>
/// `onnx [--rounds 3] [--threads 1,2] [--batches 32,1] [--seq 128] [--models minilm,base] [--base-batch 32]`: ONNX Runtime
/// (ORT_ENABLE_ALL) on the shipped all-MiniLM-L6-v2 ONNX file and on BertSharp's exports of the same weights (plain,
/// fused, int8 plain, int8 fused), and on a BERT-base shape with random weights (our exports only). Fixed shapes,
/// random token ids, mask all ones. Every session is created up front; each round runs every cell once, in the same
/// order (interleaved, so slow phases of the shared machine hit all variants alike); the table has the medians.
/// </summary>
static class OnnxBench
{
    sealed record Variant(string Model, string Name, string Path);

    public static int Run(string[] args)
    {
        int rounds = 3, seq = 128, baseBatch = 32;
        int[] threads = [1, 2], batches = [32, 1];
        string[] models = ["minilm", "base"];
        for (var i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            int[] Ints() => Next().Split(',').Select(int.Parse).ToArray();
            switch (args[i])
            {
                case "--rounds": rounds = int.Parse(Next()); break;
                case "--threads": threads = Ints(); break;
                case "--batches": batches = Ints(); break;
                case "--seq": seq = int.Parse(Next()); break;
                case "--base-batch": baseBatch = int.Parse(Next()); break;
                case "--models": models = Next().Split(','); break;
                default:
                    Console.Error.WriteLine($"onnx: unknown option {args[i]}");
                    Console.Error.WriteLine("usage: onnx [--rounds 3] [--threads 1,2] [--batches 32,1] [--seq 128] [--models minilm,base] [--base-batch 32]");
                    return 2;
            }
        }
        var loadStart = Machine.LoadAverage(" / ");
        Runtime.Initialize(1);
        var dir = Directory.CreateTempSubdirectory("bertsharp-onnx-bench-").FullName;
        try
        {
            var variants = new List<Variant>();
            var exportTimes = new List<string>();
            void Export(string model, string name, Func<string, OnnxExportResult> export)
            {
                var path = Path.Combine(dir, $"{model}-{name}.onnx");
                var sw = Stopwatch.StartNew();
                export(path);
                exportTimes.Add($"{model} {name} {sw.Elapsed.TotalSeconds:F1} s ({new FileInfo(path).Length / 1e6:F0} MB)");
                variants.Add(new Variant(model, name, path));
            }
            var options = new (string Name, OnnxExportOptions Options)[]
            {
                ("plain", new OnnxExportOptions()),
                ("fused", new OnnxExportOptions { Fused = true }),
                ("int8", new OnnxExportOptions { Quantize = OnnxQuantization.Int8Dynamic }),
                ("fused int8", new OnnxExportOptions { Fused = true, Quantize = OnnxQuantization.Int8Dynamic }),
            };
            if (models.Contains("minilm"))
            {
                var assets = Environment.GetEnvironmentVariable("BERTSHARP_ASSETS") ?? Path.Combine("..", "shared");
                var miniLm = Path.Combine(assets, "assets", "models", "all-MiniLM-L6-v2");
                variants.Add(new Variant("MiniLM", "shipped (torch.onnx.export)", Path.Combine(miniLm, "model.onnx")));
                foreach (var (name, o) in options) Export("MiniLM", name, p => OnnxExporter.ExportDirectory(miniLm, p, o));
            }
            if (models.Contains("base"))
            {
                using var scope = NewDisposeScope();
                var config = BertConfig.Preset("base");
                var model = new BertModel(config);
                ModelUtils.InitWeights(model, config);
                var sd = model.state_dict();
                foreach (var (name, o) in options) Export("BERT-base", name, p => OnnxExporter.Export(config, sd, p, o with { Task = OnnxExportTask.Base }));
                model.Dispose();
            }

            // What ORT's optimizer (ORT_ENABLE_ALL) makes of each MiniLM file: the ops that matter, after fusion.
            var census = new List<string>();
            string[] keyOps = ["EmbedLayerNormalization", "Attention", "MultiHeadAttention", "QAttention", "SkipLayerNormalization",
                "LayerNormalization", "BiasGelu", "FastGelu", "Gelu", "MatMul", "FusedMatMul", "DynamicQuantizeMatMul",
                "MatMulIntegerToFloat", "MatMulInteger", "DynamicQuantizeLinear", "Softmax", "Erf"];
            foreach (var v in variants.Where(v => v.Model == "MiniLM"))
            {
                var optimized = Path.Combine(dir, $"optimized-{census.Count}.onnx");
                using (new InferenceSession(v.Path, new SessionOptions
                       {
                           GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = 1, OptimizedModelFilePath = optimized,
                       })) { }
                var ops = BertSharp.Checkpoints.OnnxModel.Load(optimized).Nodes.GroupBy(n => n.OpType).ToDictionary(g => g.Key, g => g.Count());
                census.Add($"| {v.Name} | {ops.Values.Sum()} | " + string.Join(", ", keyOps.Where(ops.ContainsKey).Select(o => $"{o} {ops[o]}")) + " |");
                File.Delete(optimized);
            }

            // One session per (variant, threads), created before any timing.
            var sessions = new Dictionary<(Variant, int), InferenceSession>();
            foreach (var v in variants)
                foreach (var t in threads)
                    sessions[(v, t)] = new InferenceSession(v.Path, new SessionOptions
                    {
                        GraphOptimizationLevel = GraphOptimizationLevel.ORT_ENABLE_ALL, IntraOpNumThreads = t, InterOpNumThreads = 1,
                    });
            var cells = (from v in variants from t in threads from b in batches
                         select (V: v, Threads: t, Batch: v.Model == "BERT-base" && b > 1 ? baseBatch : b)).Distinct().ToList();
            var inputs = cells.Select(c => c.Batch).Distinct().ToDictionary(b => b, b => Inputs(b, seq));

            double RunOnce((Variant V, int Threads, int Batch) c)
            {
                var session = sessions[(c.V, c.Threads)];
                var (names, values) = inputs[c.Batch];
                var iters = 0;
                var sw = Stopwatch.StartNew();
                do
                {
                    using var outputs = session.Run(new RunOptions(), names, values, session.OutputNames);
                    iters++;
                } while (sw.Elapsed.TotalSeconds < 0.5);   // batch 1: repeat to ~0.5 s; big batches run once
                return iters * c.Batch / sw.Elapsed.TotalSeconds;
            }

            foreach (var c in cells) RunOnce(c);   // warm-up (pre-packing, allocator arenas)
            var samples = cells.ToDictionary(c => c, _ => new List<double>());
            for (var r = 0; r < rounds; r++)
            {
                foreach (var c in cells) samples[c].Add(RunOnce(c));
                Console.Error.WriteLine($"onnx: round {r + 1}/{rounds} done, load {Machine.LoadAverage()}");
            }

            static double Median(List<double> xs)
            {
                var s = xs.Order().ToArray();
                return s.Length % 2 == 1 ? s[s.Length / 2] : (s[s.Length / 2 - 1] + s[s.Length / 2]) / 2;
            }
            Console.WriteLine($"Machine: {Machine.Cpu()} ({string.Join(", ", Machine.CpuExtensions())}{(File.Exists("/proc/cpuinfo") && File.ReadAllText("/proc/cpuinfo").Contains("avx512_vnni") ? ", avx512_vnni" : "")}), {Environment.ProcessorCount} cores; " +
                $"ONNX Runtime {typeof(InferenceSession).Assembly.GetName().Version}, ORT_ENABLE_ALL; {DateTime.UtcNow:yyyy-MM-dd HH:mm} UTC");
            Console.WriteLine($"Load average (1/5/15 min) at start: {loadStart}; at end: {Machine.LoadAverage(" / ")}. " +
                $"seq length {seq}, {rounds} interleaved rounds, median seq/s; ratio vs the shipped MiniLM file (MiniLM) or vs our plain export (BERT-base).");
            Console.WriteLine($"Exports: {string.Join("; ", exportTimes)}");
            Console.WriteLine();
            Console.WriteLine("| model | graph | batch | threads | seq/s (median) | rounds | ratio |");
            Console.WriteLine("|---|---|---|---|---|---|---|");
            foreach (var c in cells.OrderBy(c => c.V.Model != "MiniLM").ThenByDescending(c => c.Batch).ThenBy(c => c.Threads))
            {
                var baseline = cells.First(x => x.V.Model == c.V.Model && x.Threads == c.Threads && x.Batch == c.Batch);
                var med = Median(samples[c]);
                Console.WriteLine($"| {c.V.Model} | {c.V.Name} | {c.Batch}×{seq} | {c.Threads} | {med:F1} | " +
                    $"{string.Join(", ", samples[c].Select(x => x.ToString("F1")))} | {med / Median(samples[baseline]):F2}× |");
            }
            if (census.Count > 0)
            {
                Console.WriteLine();
                Console.WriteLine("MiniLM graphs after ORT's optimizer (ORT_ENABLE_ALL), node count and the ops that matter:");
                Console.WriteLine();
                Console.WriteLine("| graph | nodes | ops after ORT's fusions |");
                Console.WriteLine("|---|---|---|");
                foreach (var line in census) Console.WriteLine(line);
            }
            foreach (var s in sessions.Values) s.Dispose();
            foreach (var (_, (_, values)) in inputs) foreach (var v in values) v.Dispose();
            return 0;
        }
        finally
        {
            try { Directory.Delete(dir, recursive: true); } catch (IOException) { }
        }
    }

    /// <summary>input_ids (random ids 1000–29999, seed 1), attention_mask (ones), token_type_ids (zeros): int64 [batch, seq].</summary>
    static (string[] Names, OrtValue[] Values) Inputs(int batch, int seq)
    {
        var rng = new Random(1);
        var ids = Enumerable.Range(0, batch * seq).Select(_ => (long)rng.Next(1000, 30000)).ToArray();
        var shape = new long[] { batch, seq };
        return (["input_ids", "attention_mask", "token_type_ids"],
        [
            OrtValue.CreateTensorValueFromMemory(ids, shape),
            OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, batch * seq).ToArray(), shape),
            OrtValue.CreateTensorValueFromMemory(new long[batch * seq], shape),
        ]);
    }
}
