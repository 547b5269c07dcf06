using System.Diagnostics;
using System.Globalization;
using System.Reflection;
using System.Runtime.InteropServices;
using System.Text.RegularExpressions;
using BertSharp.Bench;
using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;



/// <summary>
/// <c>inference</c> suite: BertModel forward throughput (sequences/s) under <c>torch.inference_mode()</c> for the
/// given presets, batch sizes, sequence length and dtypes, plus the time to load a base-sized safetensors checkpoint.
/// Random weights with HF init, random token ids, no padding (so no attention mask, as in HF/ORT reference runs).
/// Each cell: warm-up iterations, then <c>--repeats</c> timed runs of enough iterations to last
/// <c>--min-seconds</c>; the median run is reported with the min–max spread.
/// </summary>
public static class InferenceBench
{
    sealed record Options(
        string[] Presets, int[] Batches, int SeqLen, string[] DTypes, int Warmup, int Repeats, double MinSeconds,
        int Threads, bool Load, bool Csv, string? AB);

    sealed record Cell(string Preset, string DType, int Batch, int SeqLen, int Iters, double Median, double Min, double Max, double CpuEq);

    public static int Run(string[] args)
    {
        Options o;
        try { o = Parse(args); }
        catch (ArgumentException e)
        {
            Console.Error.WriteLine($"inference: {e.Message}");
            Console.Error.WriteLine("usage: inference [--presets tiny,base] [--batches 1,8,32] [--seq 128] [--dtypes fp32,bf16] " +
                                    "[--warmup 2] [--repeats 5] [--min-seconds 1] [--threads N] [--no-load] [--csv] [--ab malloc]");
            return 2;
        }
        if (Environment.GetEnvironmentVariable("BERTSHARP_FTZ") == "1" && !Runtime.SetFlushDenormal(true))
            Console.Error.WriteLine("inference: flush-denormal not available");
        Runtime.Initialize(o.Threads);
        _loadStart = Machine.LoadAverage(" / ");
        if (o.AB is not null) return RunAB(o);

        var cells = new List<Cell>();
        foreach (var preset in o.Presets)
        foreach (var dtype in o.DTypes)
            cells.AddRange(RunModel(preset, dtype, o));

        (double Write, double Load, double Copy, long Bytes)? load = o.Load ? LoadBench() : null;

        PrintReport(o, cells, load);
        return 0;
    }

    static Options Parse(string[] args)
    {
        string[] presets = ["tiny", "base"], dtypes = ["fp32", "bf16"];
        int[] batches = [1, 8, 32];
        int seq = 128, warmup = 2, repeats = 5, threads = Environment.ProcessorCount;
        double minSeconds = 1.0;
        bool load = true, csv = false;
        string? ab = null;
        for (int i = 0; i < args.Length; i++)
        {
            string Next() => i + 1 < args.Length ? args[++i] : throw new ArgumentException($"{args[i]} needs a value");
            static string[] List(string s) => s.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            switch (args[i])
            {
                case "--presets": presets = List(Next()); break;
                case "--batches": batches = List(Next()).Select(int.Parse).ToArray(); break;
                case "--seq": seq = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--dtypes": dtypes = List(Next()); break;
                case "--warmup": warmup = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--repeats": repeats = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--min-seconds": minSeconds = double.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--threads": threads = int.Parse(Next(), CultureInfo.InvariantCulture); break;
                case "--no-load": load = false; break;
                case "--csv": csv = true; break;
                case "--ab": ab = Next(); break;
                default: throw new ArgumentException($"unknown argument '{args[i]}'");
            }
        }
        foreach (var d in dtypes)
            if (d is not ("fp32" or "bf16")) throw new ArgumentException($"dtype '{d}' (expected fp32 or bf16)");
        foreach (var p in presets) BertConfig.Preset(p);
        if (repeats < 1 || warmup < 0 || seq < 1 || batches.Any(b => b < 1)) throw new ArgumentException("sizes must be positive");
        if (ab is not (null or "malloc")) throw new ArgumentException("--ab takes: malloc");
        return new Options(presets, batches, seq, dtypes, warmup, repeats, minSeconds, threads, load, csv, ab);
    }

    /// <summary>
    /// Development aid: in one process, alternates timed samples with a setting on (A) and off (B) — so far the
    /// allocator tuning — so both see the same machine load. Prints median seq/s of each and the
    /// median of the paired A/B ratios.
    /// </summary>
    static int RunAB(Options o)
    {
        Action<bool> set = on => Runtime.SetMallocTuned(on);
        Console.WriteLine($"| A/B: {o.AB} on vs off | batch × seq | on seq/s | off seq/s | paired on/off (wall) | on/off per CPU-second | sys share on / off |");
        Console.WriteLine("|---|---|---:|---:|---:|---:|---:|");
        foreach (var preset in o.Presets)
        foreach (var dtype in o.DTypes)
        {
            var config = BertConfig.Preset(preset);
            using var model = new BertModel(config);
            ModelUtils.InitWeights(model, config);
            model.eval();
            if (dtype == "bf16") model.to(ScalarType.BFloat16);
            var gen = new Generator(1234);
            foreach (var batch in o.Batches)
            {
                using var ids = randint(config.VocabSize, [batch, o.SeqLen], dtype: ScalarType.Int64, generator: gen);
                // Returns (seq/s wall, seq per CPU-second, share of CPU time spent in the kernel).
                (double Wall, double PerCpu, double Sys) Sample(bool on)
                {
                    set(on);
                    var (u0, s0) = CpuTimes();
                    double total = 0;
                    int k = 0;
                    do { total += Step(model, ids); k++; } while (total < o.MinSeconds);
                    var (u1, s1) = CpuTimes();
                    double cpu = Math.Max(1e-3, u1 - u0 + s1 - s0);
                    return ((double)batch * k / total, batch * k / cpu, (s1 - s0) / cpu);
                }
                for (int w = 0; w < o.Warmup; w++) { Sample(true); Sample(false); }
                var a = new List<(double Wall, double PerCpu, double Sys)>();
                var b = new List<(double Wall, double PerCpu, double Sys)>();
                for (int r = 0; r < o.Repeats; r++)
                {
                    // Alternate which goes first so drift does not favour one side.
                    if (r % 2 == 0) { a.Add(Sample(true)); b.Add(Sample(false)); }
                    else { b.Add(Sample(false)); a.Add(Sample(true)); }
                }
                set(true);
                var wall = a.Zip(b, (x, y) => x.Wall / y.Wall).ToArray();
                var perCpu = a.Zip(b, (x, y) => x.PerCpu / y.PerCpu).ToArray();
                Console.WriteLine($"| {preset} {dtype} | {batch} × {o.SeqLen} | {Fmt(Median(a.Select(x => x.Wall).ToArray()))} | " +
                                  $"{Fmt(Median(b.Select(x => x.Wall).ToArray()))} | {Median(wall):0.00}× ({wall.Min():0.00}–{wall.Max():0.00}) | " +
                                  $"{Median(perCpu):0.00}× ({perCpu.Min():0.00}–{perCpu.Max():0.00}) | " +
                                  $"{Median(a.Select(x => x.Sys).ToArray()):P0} / {Median(b.Select(x => x.Sys).ToArray()):P0} |");
            }
        }
        return 0;
    }

    /// <summary>(user, system) CPU seconds of this process so far.</summary>
    static (double User, double Sys) CpuTimes()
    {
        using var p = Process.GetCurrentProcess();
        return (p.UserProcessorTime.TotalSeconds, p.PrivilegedProcessorTime.TotalSeconds);
    }

    static double Step(BertModel model, Tensor ids)
    {
        var sw = Stopwatch.StartNew();
        using (inference_mode())
        using (NewDisposeScope())
            _ = model.forward(ids).LastHiddenState.numel();
        return sw.Elapsed.TotalSeconds;
    }

    static IEnumerable<Cell> RunModel(string preset, string dtype, Options o)
    {
        var config = BertConfig.Preset(preset);
        if (o.SeqLen > config.MaxPositionEmbeddings) throw new ArgumentException($"--seq {o.SeqLen} > max_position_embeddings");
        using var model = new BertModel(config);
        ModelUtils.InitWeights(model, config);
        model.eval();
        if (dtype == "bf16") model.to(ScalarType.BFloat16);

        var cells = new List<Cell>();
        var gen = new Generator(1234);
        foreach (var batch in o.Batches)
        {
            using var ids = randint(config.VocabSize, [batch, o.SeqLen], dtype: ScalarType.Int64, generator: gen);
            double Step() => InferenceBench.Step(model, ids);
            for (int w = 0; w < o.Warmup; w++) Step();
            // Each timed run repeats the forward pass until it has lasted --min-seconds (at least once).
            var rates = new double[o.Repeats];
            var cpuEq = new double[o.Repeats];
            int iters = 0;
            for (int r = 0; r < o.Repeats; r++)
            {
                var (u0, s0) = CpuTimes();
                double total = 0;
                int k = 0;
                do { total += Step(); k++; } while (total < o.MinSeconds);
                var (u1, s1) = CpuTimes();
                rates[r] = (double)batch * k / total;
                // Throughput if this process had its threads' cores to itself: sequences per (CPU-seconds / threads).
                cpuEq[r] = batch * k / Math.Max(1e-3, (u1 - u0 + s1 - s0) / Runtime.Threads);
                iters = Math.Max(iters, k);
            }
            Array.Sort(rates);
            var cell = new Cell(preset, dtype, batch, o.SeqLen, iters, Median(rates), rates[0], rates[^1], Median(cpuEq));
            Console.Error.WriteLine($"  {preset} {dtype} {batch}x{o.SeqLen}: {Fmt(cell.Median)} seq/s " +
                                    $"(min {Fmt(cell.Min)}, max {Fmt(cell.Max)}, {o.Repeats} runs, ≤ {iters} iters each)");
            cells.Add(cell);
        }
        return cells;
    }

    /// <summary>
    /// Writes a base-sized BertModel (random weights) to a temporary safetensors file once, then times reading it
    /// (<see cref="SafeTensors.Load"/>) and copying it into a fresh model's parameters by HF state-dict name.
    /// Returns the median over 3 loads.
    /// </summary>
    static (double Write, double Load, double Copy, long Bytes) LoadBench()
    {
        var config = BertConfig.Preset("base");
        var dir = Directory.CreateTempSubdirectory("bertsharp-loadbench-");
        try
        {
            var path = Path.Combine(dir.FullName, "model.safetensors");
            double write;
            using (var model = new BertModel(config))
            {
                ModelUtils.InitWeights(model, config);
                var sw = Stopwatch.StartNew();
                SafeTensors.Save(path, model.state_dict());
                write = sw.Elapsed.TotalSeconds;
            }
            var loads = new List<double>();
            var copies = new List<double>();
            for (int r = 0; r < 3; r++)
            {
                using var target = new BertModel(config);
                var sw = Stopwatch.StartNew();
                var tensors = SafeTensors.Load(path);
                loads.Add(sw.Elapsed.TotalSeconds);
                sw.Restart();
                using (no_grad())
                {
                    var parameters = target.state_dict();
                    foreach (var (name, p) in parameters)
                    {
                        if (!tensors.TryGetValue(name, out var t)) throw new InvalidDataException($"'{name}' missing from the checkpoint");
                        p.copy_(t);
                    }
                }
                copies.Add(sw.Elapsed.TotalSeconds);
                foreach (var t in tensors.Values) t.Dispose();
            }
            return (write, Median(loads.ToArray()), Median(copies.ToArray()), new FileInfo(path).Length);
        }
        finally
        {
            dir.Delete(recursive: true);
        }
    }

    static void PrintReport(Options o, List<Cell> cells, (double Write, double Load, double Copy, long Bytes)? load)
    {
        var w = Console.Out;
        w.WriteLine("### Inference: BertModel forward (sequences/s, median of repeats; higher is better)");
        w.WriteLine();
        foreach (var line in MachineLines(o)) w.WriteLine($"- {line}");
        w.WriteLine();
        var dtypes = o.DTypes;
        w.Write("| preset | batch × seq |");
        foreach (var d in dtypes) w.Write($" {d} seq/s |");
        if (dtypes.Contains("fp32") && dtypes.Contains("bf16")) w.Write(" bf16/fp32 |");
        w.WriteLine();
        w.Write("|---|---|");
        foreach (var _ in dtypes) w.Write("---:|");
        if (dtypes.Contains("fp32") && dtypes.Contains("bf16")) w.Write("---:|");
        w.WriteLine();
        foreach (var preset in o.Presets)
        foreach (var batch in o.Batches)
        {
            w.Write($"| {preset} | {batch} × {o.SeqLen} |");
            foreach (var d in dtypes)
            {
                var c = cells.Single(x => x.Preset == preset && x.Batch == batch && x.DType == d);
                w.Write($" {Fmt(c.Median)} ({Fmt(c.Min)}–{Fmt(c.Max)}) [{Fmt(c.CpuEq)}] |");
            }
            if (dtypes.Contains("fp32") && dtypes.Contains("bf16"))
            {
                var f = cells.Single(x => x.Preset == preset && x.Batch == batch && x.DType == "fp32");
                var b = cells.Single(x => x.Preset == preset && x.Batch == batch && x.DType == "bf16");
                w.Write($" {b.Median / f.Median:0.00}× |");
            }
            w.WriteLine();
        }
        w.WriteLine();
        w.WriteLine($"Warm-up {o.Warmup} iterations; {o.Repeats} timed runs of ≥ {o.MinSeconds:0.##} s each; (min–max) over runs. " +
                    "No padding, so no attention mask. bf16 = every parameter converted with `.to(BFloat16)`.");
        w.WriteLine("[CPU-eq.] = sequences per (process CPU-seconds ÷ threads): an estimate of what the run would reach with its cores to itself, " +
                    "for runs on an oversubscribed machine (spin-waiting threads inflate CPU time, so it is a lower bound).");
        w.WriteLine($"Load average (1/5/15 min) at start: {_loadStart}; at end: {Machine.LoadAverage(" / ")}.");
        if (load is { } l)
        {
            w.WriteLine();
            w.WriteLine("### Model load: base-sized safetensors (fp32, random weights)");
            w.WriteLine();
            w.WriteLine("| file | write (SafeTensors.Save) | read (SafeTensors.Load) | copy into BertModel | read + copy |");
            w.WriteLine("|---|---:|---:|---:|---:|");
            w.WriteLine($"| {l.Bytes / 1e6:0} MB | {l.Write * 1000:0} ms | {l.Load * 1000:0} ms | {l.Copy * 1000:0} ms | {(l.Load + l.Copy) * 1000:0} ms |");
            w.WriteLine();
            w.WriteLine("Read + copy: medians of 3 loads of the same (page-cached) file; model construction excluded.");
        }
        if (o.Csv)
        {
            w.WriteLine();
            w.WriteLine("preset,dtype,batch,seq,iters,median,min,max,cpu_eq");
            foreach (var c in cells)
                w.WriteLine(string.Join(',', c.Preset, c.DType, c.Batch, c.SeqLen, c.Iters,
                    c.Median.ToString("0.###", CultureInfo.InvariantCulture), c.Min.ToString("0.###", CultureInfo.InvariantCulture),
                    c.Max.ToString("0.###", CultureInfo.InvariantCulture), c.CpuEq.ToString("0.###", CultureInfo.InvariantCulture)));
        }
    }

    static string _loadStart = "?";

    static IEnumerable<string> MachineLines(Options o)
    {
        var cpu = $"{Machine.Cpu()} ({string.Join(", ", Machine.CpuExtensions())})";
        yield return $"CPU: {cpu}; {Environment.ProcessorCount} logical cores; torch threads {Runtime.Threads}";
        yield return $"OS: {RuntimeInformation.OSDescription}; {RuntimeInformation.FrameworkDescription}";
        var ts = typeof(torch).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion
                 ?? typeof(torch).Assembly.GetName().Version?.ToString() ?? "?";
        yield return $"TorchSharp {ts.Split('+')[0]}; libtorch {LibTorchVersion()}; malloc tuning: {Runtime.MallocTuning}; MKL: {Runtime.MklDispatchState}";
        yield return $"Sequence length {o.SeqLen}; random weights (HF init), random token ids; `torch.inference_mode()`";
    }

    /// <summary>The libtorch native package version, from the app's deps.json (<c>libtorch-cpu-linux-x64/2.10.0</c>).</summary>
    static string LibTorchVersion()
    {
        try
        {
            var rid = RuntimeInformation.RuntimeIdentifier;
            foreach (var file in Directory.GetFiles(AppContext.BaseDirectory, "*.deps.json"))
            {
                var text = File.ReadAllText(file);
                var m = Regex.Match(text, $@"""libtorch-cpu-{Regex.Escape(rid)}/([0-9][^""]*)""");
                if (!m.Success) m = Regex.Match(text, @"""libtorch-cpu[\w-]*/([0-9][^""]*)""");
                if (m.Success) return m.Groups[1].Value;
            }
        }
        catch (IOException) { }
        return "?";
    }

    static double Median(double[] sorted)
    {
        var a = sorted.OrderBy(x => x).ToArray();
        return a.Length % 2 == 1 ? a[a.Length / 2] : (a[a.Length / 2 - 1] + a[a.Length / 2]) / 2;
    }

    static string Fmt(double v) => v >= 100 ? v.ToString("N0", CultureInfo.InvariantCulture)
        : v >= 10 ? v.ToString("0.0", CultureInfo.InvariantCulture) : v.ToString("0.00", CultureInfo.InvariantCulture);
}
