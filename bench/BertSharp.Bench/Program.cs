// Benchmark harness: `dotnet run -c Release --project bench/BertSharp.Bench -- <suite> [args]`.
// Each suite prints a Markdown table with machine details; numbers go to docs/benchmarks.md (never asserted).
var suites = new Dictionary<string, Func<string[], int>>(StringComparer.OrdinalIgnoreCase)
{
    // suites: keep one line each
    ["inference"] = InferenceBench.Run,
    ["tokenizer"] = BertSharp.Bench.TokenizerBench.Run,
    ["vocab"] = VocabBench.Run,
    ["training"] = BertSharp.Bench.TrainingBench.Run,
    ["search"] = SearchBench.Run,
    ["minilm"] = MiniLmBench.Run,
    ["onnx"] = OnnxBench.Run,
    ["minilm-fixed"] = MiniLmBench.RunFixed,
    ["attention"] = BertSharp.Bench.AttentionBench.Run,
    ["mkl-late"] = BertSharp.Bench.MklLateBench.Run,
    ["gemm"] = BertSharp.Bench.GemmBench.Run,
};
if (args.Length == 0 || !suites.TryGetValue(args[0], out var run))
{
    Console.Error.WriteLine($"usage: BertSharp.Bench <{string.Join("|", suites.Keys)}> [args]");
    return 2;
}
return run(args[1..]);
