using BertSharp.Data.Tasks;
using BertSharp.Export;
using BertSharp.Inference;
using BertSharp.Modeling;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training.FineTuning;

/// <summary>
/// A fine-tuned task model (<c>bert finetune</c>'s OUTPUT/best) opened for prediction on one engine: the TorchSharp
/// module, or ONNX Runtime on the task graph exported once into the cache (<see cref="OnnxEngine"/>, float32 or
/// dynamic int8). <see cref="Predict"/> gives the same logits layout either way, so <c>bert eval</c> and
/// <c>bert predict</c> score and decode them with one code path.
/// </summary>
public sealed class TaskModelRunner : IDisposable
{
    readonly nn.Module? _model;
    readonly OnnxEngine? _onnx;
    readonly bool _owned;

    TaskModelRunner(nn.Module? model, OnnxEngine? onnx, InferenceEngine engine, bool owned = true)
    {
        _model = model;
        _onnx = onnx;
        Engine = engine;
        _owned = owned;
    }

    /// <summary>A runner over a task module the caller owns (training's dev evaluation); disposing it leaves the module alone.</summary>
    public static TaskModelRunner Wrap(nn.Module model) =>
        new(model ?? throw new ArgumentNullException(nameof(model)), null, InferenceEngine.Torch, owned: false);

    /// <summary>The engine in use (never <see cref="InferenceEngine.Auto"/>).</summary>
    public InferenceEngine Engine { get; }

    /// <summary>The ONNX file run (null on the torch engine).</summary>
    public string? OnnxPath => _onnx?.ModelPath;

    /// <summary>
    /// Opens <paramref name="dir"/>'s <paramref name="architecture"/> (a task class) on <paramref name="engine"/>:
    /// <see cref="InferenceEngine.Auto"/> is ONNX Runtime (float32: level with TorchSharp on short inputs, ahead at batch 1 and on long ones, and
    /// the only engine for int8); <paramref name="quantize"/> int8 needs onnx or auto.
    /// </summary>
    public static TaskModelRunner Open(ModelDirectory dir, string architecture, InferenceEngine engine = InferenceEngine.Torch,
        OnnxQuantization quantize = OnnxQuantization.None)
    {
        ArgumentNullException.ThrowIfNull(dir);
        if (quantize != OnnxQuantization.None && engine == InferenceEngine.Torch)
            throw new ArgumentException("--quantize int8 runs on the ONNX engine; use --engine onnx or auto");
        if (engine == InferenceEngine.Torch)
        {
            var (model, _) = dir.LoadModel(c => BertTaskModels.Create(architecture, c));
            return new TaskModelRunner(model, null, InferenceEngine.Torch);
        }
        var task = architecture switch
        {
            nameof(BertForSequenceClassification) => OnnxExportTask.SequenceClassification,
            nameof(BertForTokenClassification) => OnnxExportTask.TokenClassification,
            nameof(BertForQuestionAnswering) => OnnxExportTask.QuestionAnswering,
            _ => throw new ArgumentException($"{dir.ConfigPath}: the ONNX engine has no export for '{architecture}'; use --engine torch"),
        };
        var options = new OnnxEngineOptions { Export = new OnnxEngineOptions().Export with { Task = task, Quantize = quantize } };
        try
        {
            return new TaskModelRunner(null, OnnxEngine.FromDirectory(dir.Path, options), InferenceEngine.Onnx);
        }
        catch (Exception e) when (engine == InferenceEngine.Auto && quantize == OnnxQuantization.None
                                  && e is ArgumentException or UnauthorizedAccessException)
        {
            // auto: a model the exporter cannot write (an activation it lacks) or an unwritable cache runs on torch.
            var (model, _) = dir.LoadModel(c => BertTaskModels.Create(architecture, c));
            return new TaskModelRunner(model, null, InferenceEngine.Torch) { FallbackReason = e.Message };
        }
    }

    /// <summary>Why <see cref="InferenceEngine.Auto"/> ended on torch (null when it did not).</summary>
    public string? FallbackReason { get; private init; }

    /// <summary>Logits of every feature, in order (<see cref="FineTuneTask.Predict(nn.Module, IReadOnlyList{TaskFeature}, int, TaskKind, int)"/>'s layout).</summary>
    public (List<float[][]> Logits, List<float[]>? End) Predict(IReadOnlyList<TaskFeature> features, int padId, TaskKind kind, int batchSize = 32) =>
        _onnx is not null
            ? FineTuneTask.Predict(_onnx, features, padId, kind, batchSize)
            : FineTuneTask.Predict(_model!, features, padId, kind, batchSize);

    public void Dispose()
    {
        if (_owned) _model?.Dispose();
        _onnx?.Dispose();
    }
}
