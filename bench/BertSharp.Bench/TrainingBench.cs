using System.Diagnostics;
using System.Globalization;
using BertSharp.Data;
using BertSharp.Modeling;
using BertSharp.Training;
using BertSharp.Training.Pretraining;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Bench;

/// <summary>
/// `training` suite: tokens/s of one pretraining update (forward + backward + AdamW with clipping) at batch 8 × 128
/// for the tiny, mini and base presets (vocab 30,522), fp32 and bf16 mixed precision, with the MLM head scored at the
/// masked positions only (what the trainer does) and at all positions (what Hugging Face does).
/// Args: [presets comma-separated] [steps] [threads] [masked = skip the all-positions rows].
/// </summary>
public static class TrainingBench
{
    const int Batch = 8, SeqLen = 128, MaxPred = 20;

    public static int Run(string[] args)
    {
        var presets = args.Length > 0 ? args[0].Split(',') : ["tiny", "mini", "base"];
        int? stepsArg = args.Length > 1 && int.Parse(args[1], CultureInfo.InvariantCulture) is > 0 and var n ? n : null;
        int threads = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : Environment.ProcessorCount;
        bool[] mlmModes = args.Length > 3 && args[3] == "masked" ? [true] : [true, false];
        BertSharp.Inference.Runtime.Initialize(threads);
        // Allocator tuning is applied when the library loads (BERTSHARP_MALLOC=off disables it).

        Console.WriteLine($"## Training throughput (batch {Batch} × seq {SeqLen}, vocab 30,522, forward + backward + AdamW + clipping)");
        Console.WriteLine();
        Console.WriteLine($"- machine: {Machine.Cpu()}, {Environment.ProcessorCount} logical cores, {threads} torch threads, .NET {Environment.Version}, TorchSharp-cpu 0.107 (libtorch 2.10)");
        Console.WriteLine($"- load average before the run: {Machine.LoadAverage()} (shared machine)");
        Console.WriteLine($"- malloc: {BertSharp.Inference.Runtime.MallocTuning}; MKL: {BertSharp.Inference.Runtime.MklDispatchState}; GLIBC_TUNABLES {Environment.GetEnvironmentVariable("GLIBC_TUNABLES") ?? "unset"}");
        Console.WriteLine("- tokens/s = 1,024 tokens per update / median seconds per update after warm-up; 15% masked (≤ 20 per sequence)");
        Console.WriteLine();
        Console.WriteLine("| preset | dtype | MLM scored at | tokens/s | s/update | optimizer share | HF reference (all positions) |");
        Console.WriteLine("|---|---|---|---|---|---|---|");
        foreach (var preset in presets)
        {
            int steps = stepsArg ?? (preset == "base" ? 4 : preset == "mini" ? 12 : 30);
            int warm = preset == "base" ? 2 : 5;
            foreach (var dtype in new[] { "float32", "bfloat16" })
                foreach (var masked in mlmModes)
                {
                    var (perStep, optShare) = Measure(preset, dtype, masked, warm, masked ? steps : Math.Max(3, steps / 3));
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                        $"| {preset} | {(dtype == "float32" ? "fp32" : "bf16 mixed")} | {(masked ? "masked only" : "all positions")} | " +
                        $"{Batch * SeqLen / perStep:N0} | {perStep:F3} | {optShare:P0} | {HfReference(preset)} |"));
                }
        }
        return 0;
    }

    static string HfReference(string preset) => preset switch
    {
        "tiny" => "700–740",
        "mini" => "563–675",
        "base" => "118",
        _ => "—",
    };

    static (double SecondsPerStep, double OptimizerShare) Measure(string preset, string dtype, bool maskedOnly, int warmup, int steps)
    {
        var config = BertConfig.Preset(preset);
        using var model = new BertForPreTraining(config);
        ModelUtils.InitWeights(model, config, 1);
        if (dtype == "bfloat16") model.to(ScalarType.BFloat16);
        model.train();
        var task = new PretrainingTask(model, config, tokenizer: null);
        using var opt = new AdamWOptimizer(model, new AdamWOptions());
        var examples = Examples(config.VocabSize);
        var times = new List<double>();
        var optTimes = new List<double>();
        for (int i = 0; i < warmup + steps; i++)
        {
            using var scope = NewDisposeScope();
            torch.random.manual_seed(i);
            using var batch = PretrainingCollator.Collate(examples, 0);
            var sw = Stopwatch.StartNew();
            Tensor loss;
            if (maskedOnly) loss = task.Forward(batch, training: true).Loss;
            else
            {
                // Hugging Face style: logits at every position, cross-entropy with ignore_index −100.
                var o = model.forward(batch.InputIds, batch.TokenTypeIds, batch.AttentionMask, null);
                var logits = o.PredictionLogits.reshape(-1, config.VocabSize).to(ScalarType.Float32);
                loss = nn.functional.cross_entropy(logits, batch.DenseLabels().reshape(-1), ignore_index: -100)
                       + nn.functional.cross_entropy(o.SeqRelationshipLogits.to(ScalarType.Float32), batch.NextSentenceLabels!);
            }
            loss.backward();
            var before = sw.Elapsed.TotalSeconds;
            opt.Step(1e-4);
            opt.ZeroGrad();
            var total = sw.Elapsed.TotalSeconds;
            if (i >= warmup)
            {
                times.Add(total);
                optTimes.Add(total - before);
            }
        }
        times.Sort();
        return (times[times.Count / 2], optTimes.Sum() / times.Sum());
    }

    static List<PretrainingExample> Examples(int vocab)
    {
        var rng = new Random(3);
        var list = new List<PretrainingExample>();
        for (int b = 0; b < Batch; b++)
        {
            var ids = new int[SeqLen];
            var types = new int[SeqLen];
            for (int t = 0; t < SeqLen; t++) ids[t] = rng.Next(1000, vocab);
            ids[0] = 101;
            ids[63] = 102;
            ids[^1] = 102;
            for (int t = 64; t < SeqLen; t++) types[t] = 1;
            var pos = Enumerable.Range(1, SeqLen - 2).Where(t => t != 63).OrderBy(_ => rng.Next()).Take(MaxPred).Order().ToArray();
            var labels = pos.Select(p => ids[p]).ToArray();
            foreach (var p in pos) ids[p] = 103;
            list.Add(new PretrainingExample { InputIds = ids, TokenTypeIds = types, MaskedPositions = pos, MaskedLabels = labels, NextSentenceLabel = b % 2 });
        }
        return list;
    }
}
