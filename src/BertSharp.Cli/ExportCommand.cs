using System.CommandLine;
using BertSharp.Export;
using BertSharp.Inference;
using Spectre.Console;

namespace BertSharp.Cli;

/// <summary><c>bert export</c>: write a model as an ONNX graph (plain: what torch.onnx.export makes of the HF model; or fused / int8).</summary>
static class ExportCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = $"Model directory (HF or Google layout); default ${ModelResolver.EnvVar}" };
        var format = new Option<string>("--format") { Description = "Output format: onnx", DefaultValueFactory = _ => "onnx" };
        var output = new Option<string>("--output", "-o") { Description = "Output file (FILE.onnx; large models also write FILE.onnx_data)", Required = true };
        var task = new Option<string>("--task")
        {
            Description = $"Which HF model the graph computes: {string.Join(" | ", OnnxExporter.TaskNames)} (auto: from the checkpoint's keys)",
            DefaultValueFactory = _ => "auto",
        };
        var opset = new Option<int>("--opset") { Description = "ONNX opset: 13 | 14 | 17 (17: LayerNormalization as one op)", DefaultValueFactory = _ => 14 };
        var fused = new Option<bool>("--fused") { Description = "Encoder as ONNX Runtime contrib ops (EmbedLayerNormalization, Attention, SkipLayerNormalization, BiasGelu/FastGelu); needs ONNX Runtime" };
        var quantize = new Option<string>("--quantize")
        {
            Description = $"Encoder Linear layers: {string.Join(" | ", OnnxExporter.QuantizationNames)} (int8: dynamic, int8 weights per channel, activations quantized at run time)",
            DefaultValueFactory = _ => "none",
        };
        var json = new Option<bool>("--json") { Description = "Machine-readable JSON summary" };
        var cmd = new Command("export", "Export a model to ONNX (plain graph, HF input/output names)");
        foreach (var o in new Option[] { model, format, output, task, opset, fused, quantize, json }) cmd.Options.Add(o);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var fmt = parse.GetValue(format)!;
            if (!fmt.Equals("onnx", StringComparison.OrdinalIgnoreCase))
                throw new ArgumentException($"--format: '{fmt}' is not supported (expected onnx)");
            var options = new OnnxExportOptions
            {
                Task = OnnxExporter.ParseTask(parse.GetValue(task)!), Opset = parse.GetValue(opset),
                Fused = parse.GetValue(fused), Quantize = OnnxExporter.ParseQuantization(parse.GetValue(quantize)!),
            };
            var dir = ModelResolver.Resolve(parse.GetValue(model));
            OnnxExportResult r;
            try
            {
                r = RunWithProgress(options, o => OnnxExporter.ExportDirectory(dir, parse.GetValue(output)!, o));
            }
            catch (InvalidDataException e)
            {
                // A checkpoint that does not fit the requested graph is bad input (exit 2), not a crash.
                throw new FormatException(e.Message, e);
            }
            if (parse.GetValue(json))
                Cli.WriteJson(new
                {
                    path = r.Path, external_data = r.ExternalDataPath, task = OnnxExporter.TaskName(r.Task), opset = r.Opset,
                    fused = options.Fused, quantize = OnnxExporter.QuantizationName(options.Quantize),
                    inputs = r.Inputs, outputs = r.Outputs, nodes = r.Nodes, initializers = r.Initializers, initializer_bytes = r.InitializerBytes,
                });
            else
                Console.WriteLine($"wrote {r.Path} ({OnnxExporter.TaskName(r.Task)}, opset {r.Opset}" +
                    $"{(options.Fused ? ", fused" : "")}{(options.Quantize != OnnxQuantization.None ? ", " + OnnxExporter.QuantizationName(options.Quantize) : "")}, {r.Nodes} nodes, " +
                    $"{r.Initializers} initializers, {r.InitializerBytes / 1e6:F1} MB{(r.ExternalDataPath is null ? "" : $" in {r.ExternalDataPath}")}); " +
                    $"inputs {string.Join(", ", r.Inputs)} → outputs {string.Join(", ", r.Outputs)}");
            return 0;
        }));
        return cmd;
    }

    /// <summary>Runs the export with a bytes-written progress bar (rate, ETA) on stderr when it is a terminal.</summary>
    static OnnxExportResult RunWithProgress(OnnxExportOptions options, Func<OnnxExportOptions, OnnxExportResult> export)
    {
        if (Console.IsErrorRedirected) return export(options);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        OnnxExportResult? result = null;
        console.Progress()
            .AutoClear(true)
            .Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new DownloadedColumn(),
                new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(ctx =>
            {
                var task = ctx.AddTask("writing ONNX", maxValue: 1);
                var progress = new Reporter(p =>
                {
                    task.MaxValue = Math.Max(1, p.TotalBytes);
                    task.Value = p.BytesWritten;
                });
                result = export(options with { Progress = progress });
                task.Value = task.MaxValue;
                task.StopTask();
            });
        return result!;
    }

    /// <summary>Synchronous IProgress (Progress&lt;T&gt; would post to the thread pool and report late).</summary>
    sealed class Reporter(Action<OnnxExportProgress> report) : IProgress<OnnxExportProgress>
    {
        public void Report(OnnxExportProgress value) => report(value);
    }
}
