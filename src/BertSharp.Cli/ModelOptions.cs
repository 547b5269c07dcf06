using System.CommandLine;
using BertSharp.Inference;
using TorchSharp;

namespace BertSharp.Cli;

/// <summary>The options every model-running verb shares: --model, --dtype, --threads, --device, --json.</summary>
sealed class ModelOptions
{
    public readonly Option<string?> Model = new("--model") { Description = $"Model directory (HF or Google layout) or Hub id ORG/NAME[@REVISION]; default ${ModelResolver.EnvVar}" };
    public readonly Option<string> DType = new("--dtype") { Description = "float32 | bfloat16", DefaultValueFactory = _ => "float32" };
    public readonly Option<int?> Threads = new("--threads") { Description = "Intra-op threads (default: all cores)" };
    public readonly Option<string> Device = new("--device") { Description = "cpu | cuda (needs the CUDA TorchSharp package)", DefaultValueFactory = _ => "cpu" };
    public readonly Option<bool> Json = new("--json") { Description = "Machine-readable JSON output" };
    /// <summary>--engine, for the verbs that run through <see cref="Embedder"/> (added by <see cref="AddEngineTo"/>).</summary>
    public readonly Option<string> Engine = new("--engine") { Description = "auto (default: the fastest for the dtype, float32 → onnx, bfloat16 → torch) | torch | onnx (ONNX Runtime on a cached export, float32)", DefaultValueFactory = _ => "auto" };
    /// <summary>--quantize, beside --engine: int8 runs a dynamically quantized export on the ONNX engine.</summary>
    public readonly Option<string> Quantize = new("--quantize") { Description = "none | int8 (dynamic int8 Linear layers on the ONNX engine; opt-in, slightly less exact)", DefaultValueFactory = _ => "none" };
    public readonly Option<bool> AllowMissing = new("--allow-missing") { Description = "Run even if encoder weights are missing from the checkpoint (they are randomly initialised)" };

    public void AddTo(Command command)
    {
        command.Options.Add(Model);
        command.Options.Add(DType);
        command.Options.Add(Threads);
        command.Options.Add(Device);
        command.Options.Add(Json);
        command.Options.Add(AllowMissing);
    }

    public void AddEngineTo(Command command)
    {
        command.Options.Add(Engine);
        command.Options.Add(Quantize);
    }

    /// <summary>The parsed --engine value (a bad one is an ArgumentException: exit code 2).</summary>
    public InferenceEngine ParseEngine(ParseResult parse) => Embedder.ParseEngine(parse.GetValue(Engine));

    /// <summary>The parsed --quantize value.</summary>
    public Export.OnnxQuantization ParseQuantization(ParseResult parse) => Export.OnnxExporter.ParseQuantization(parse.GetValue(Quantize) ?? "none");

    /// <summary>ONNX engine settings from --quantize (null: the defaults, float32).</summary>
    public OnnxEngineOptions? ParseOnnx(ParseResult parse)
    {
        var q = ParseQuantization(parse);
        return q == Export.OnnxQuantization.None ? null : new OnnxEngineOptions { Export = new OnnxEngineOptions().Export with { Quantize = q } };
    }

    /// <summary>Applies threads/device/dtype and loads the pipeline; warns on stderr about missing weights.</summary>
    public BertPipeline LoadPipeline(ParseResult parse, InferenceEngine engine = InferenceEngine.Torch, OnnxEngineOptions? onnx = null)
    {
        Runtime.SetThreads(parse.GetValue(Threads));
        var device = Runtime.ParseDevice(parse.GetValue(Device));
        var dtype = Runtime.ParseDType(parse.GetValue(DType));
        var dir = ModelResolver.Resolve(parse.GetValue(Model));
        var pipeline = BertPipeline.Load(dir, dtype, device, parse.GetValue(AllowMissing) ? Checkpoints.LoadPolicy.AllowMissing : Checkpoints.LoadPolicy.Strict, engine, onnx);
        if (pipeline.Report.Unexpected.Count > 0 && parse.GetValue(Cli.VerboseOption))
            Console.Error.WriteLine($"bert: note: {pipeline.Report.Unexpected.Count} checkpoint tensors unused: {string.Join(", ", pipeline.Report.Unexpected.Take(5))}");
        if (pipeline.Report.Missing.Count > 0)
            Console.Error.WriteLine($"bert: note: {pipeline.Report.Missing.Count} weights not in the checkpoint (newly initialised): {string.Join(", ", pipeline.Report.Missing.Take(5))}{(pipeline.Report.Missing.Count > 5 ? ", …" : "")}");
        return pipeline;
    }
}
