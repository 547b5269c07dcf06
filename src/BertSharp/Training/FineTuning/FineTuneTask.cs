using BertSharp.Data.Tasks;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training.FineTuning;

/// <summary>
/// The fine-tuning objective for one task kind, over <see cref="TaskBatch"/>es: the HF head's own loss
/// (cross-entropy, MSE for regression, token cross-entropy ignoring −100, mean of start/end cross-entropy for QA).
/// Batch metrics: <c>loss</c> and, for classification and tagging, <c>train_accuracy</c> (per sequence / per labelled
/// token). The task's dev metrics (TaskScores) are computed from whole-set predictions, not here.
/// </summary>
public sealed class FineTuneTask : ITrainingTask<TaskBatch>
{
    readonly nn.Module _model;

    public FineTuneTask(nn.Module model, TaskKind kind, BertConfig config, BertTokenizer? tokenizer)
    {
        if (model is not IBertTaskModel) throw new ArgumentException($"{model.GetType().Name} is not a task model");
        _model = model;
        Kind = kind;
        Config = config;
        Tokenizer = tokenizer;
    }

    public nn.Module Model => _model;
    public TaskKind Kind { get; }
    public BertConfig Config { get; }
    public BertTokenizer? Tokenizer { get; }

    /// <summary>The HF class that fine-tunes a task of <paramref name="kind"/>.</summary>
    public static string ArchitectureFor(TaskKind kind) => kind switch
    {
        TaskKind.SequenceClassification or TaskKind.Regression => nameof(BertForSequenceClassification),
        TaskKind.TokenClassification => nameof(BertForTokenClassification),
        TaskKind.QuestionAnswering => nameof(BertForQuestionAnswering),
        _ => throw new ArgumentException($"no fine-tuning head for {kind}"),
    };

    public TaskOutput Forward(TaskBatch batch, bool training)
    {
        var metrics = new List<Metric>(2);
        Tensor loss;
        switch (_model)
        {
            case BertForSequenceClassification sc:
            {
                var labels = batch.Labels ?? throw new ArgumentException("a training batch without labels");
                var o = sc.forward(batch.InputIds, batch.TokenTypeIds, batch.AttentionMask, labels);
                loss = o.Loss!;
                if (Kind != TaskKind.Regression)
                {
                    double correct;
                    using (no_grad()) correct = o.Logits.argmax(-1).eq(labels).sum().item<long>();
                    metrics.Add(new Metric("train_accuracy", correct, batch.BatchSize));
                }
                break;
            }
            case BertForTokenClassification tc:
            {
                var labels = batch.Labels ?? throw new ArgumentException("a training batch without labels");
                var o = tc.forward(batch.InputIds, batch.TokenTypeIds, batch.AttentionMask, labels);
                loss = o.Loss!;
                double correct, count;
                using (no_grad())
                {
                    var keep = labels.ne(TokenFeaturizer.IgnoreIndex);
                    correct = o.Logits.argmax(-1).eq(labels).logical_and(keep).sum().item<long>();
                    count = keep.sum().item<long>();
                }
                metrics.Add(new Metric("train_accuracy", correct, count));
                break;
            }
            case BertForQuestionAnswering qa:
            {
                var o = qa.forward(batch.InputIds, batch.TokenTypeIds, batch.AttentionMask, batch.StartPositions, batch.EndPositions);
                loss = o.Loss ?? throw new ArgumentException("a QA training batch without answer positions");
                double correct;
                using (no_grad())
                    correct = o.StartLogits.argmax(-1).eq(batch.StartPositions!).logical_and(o.EndLogits.argmax(-1).eq(batch.EndPositions!)).sum().item<long>();
                metrics.Add(new Metric("train_span_accuracy", correct, batch.BatchSize));
                break;
            }
            default: throw new InvalidOperationException($"unsupported model {_model.GetType().Name}");
        }
        metrics.Insert(0, Metric.Mean("loss", loss.item<float>(), 1));
        return new TaskOutput(loss, metrics);
    }

    public long TokenCount(TaskBatch batch) => batch.AttentionMask.sum().item<long>();

    /// <summary>HF layout: config.json names the task class and carries id2label/label2id.</summary>
    public void SaveModel(string dir, IReadOnlyDictionary<string, string> metadata) =>
        ModelDirectory.Write(_model, ((IBertTaskModel)_model).Describe(Config), Tokenizer, dir, metadata);

    public void LoadModel(string dir) => ModelDirectory.Open(dir).LoadWeightsInto(_model, requireComplete: true);

    /// <summary>
    /// Logits of every feature, in order (model in eval mode, inference mode): per feature a row of class logits
    /// (sequence tasks), a [tokens][classes] array (tagging), or start and end rows (QA, Item2 = end logits).
    /// </summary>
    public static (List<float[][]> Logits, List<float[]>? End) Predict(nn.Module model, IReadOnlyList<TaskFeature> features, int padId,
        TaskKind kind, int batchSize = 32)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            return Predict(b => TorchForward(model, b), features, padId, kind, batchSize);
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    /// <summary>The same logits as <see cref="Predict(nn.Module, IReadOnlyList{TaskFeature}, int, TaskKind, int)"/>,
    /// computed by ONNX Runtime on the exported task model (<see cref="OnnxEngine"/>: <c>logits</c>, or
    /// <c>start_logits</c> + <c>end_logits</c>).</summary>
    public static (List<float[][]> Logits, List<float[]>? End) Predict(OnnxEngine engine, IReadOnlyList<TaskFeature> features, int padId,
        TaskKind kind, int batchSize = 32) =>
        Predict(b => OnnxForward(engine, b, kind), features, padId, kind, batchSize);

    /// <summary>One batch's raw outputs, row-major float32: [B, C] (sequence tasks), [B, L, C] (tagging), or [B, L]
    /// start and end logits (QA, <paramref name="Second"/>).</summary>
    readonly record struct BatchLogits(float[] First, float[]? Second);

    static BatchLogits TorchForward(nn.Module model, TaskBatch b)
    {
        switch (model)
        {
            case BertForSequenceClassification sc: return new(Floats(sc.forward(b.InputIds, b.TokenTypeIds, b.AttentionMask).Logits), null);
            case BertForTokenClassification tc: return new(Floats(tc.forward(b.InputIds, b.TokenTypeIds, b.AttentionMask).Logits), null);
            case BertForQuestionAnswering qa:
                var o = qa.forward(b.InputIds, b.TokenTypeIds, b.AttentionMask);
                return new(Floats(o.StartLogits), Floats(o.EndLogits));
            default: throw new InvalidOperationException($"unsupported model {model.GetType().Name}");
        }
    }

    static float[] Floats(Tensor t) => t.to(ScalarType.Float32).contiguous().data<float>().ToArray();

    static BatchLogits OnnxForward(OnnxEngine engine, TaskBatch b, TaskKind kind)
    {
        engine.Run(b.InputIds.data<long>().ToArray(), b.AttentionMask.data<long>().ToArray(), b.TokenTypeIds.data<long>().ToArray(),
            b.BatchSize, b.SequenceLength);
        return kind == TaskKind.QuestionAnswering
            ? new(engine.Output("start_logits").ToArray(), engine.Output("end_logits").ToArray())
            : new(engine.Output("logits").ToArray(), null);
    }

    static (List<float[][]> Logits, List<float[]>? End) Predict(Func<TaskBatch, BatchLogits> forward, IReadOnlyList<TaskFeature> features,
        int padId, TaskKind kind, int batchSize)
    {
        var rows = new List<float[][]>(features.Count);
        var ends = kind == TaskKind.QuestionAnswering ? new List<float[]>(features.Count) : null;
        for (int s = 0; s < features.Count; s += batchSize)
        {
            using var scope = NewDisposeScope();
            using var _ = inference_mode();
            var idx = Enumerable.Range(s, Math.Min(batchSize, features.Count - s)).ToArray();
            using var b = TaskBatch.Collate(features, idx, padId, kind);
            var o = forward(b);
            int len = b.SequenceLength;
            switch (kind)
            {
                case TaskKind.SequenceClassification or TaskKind.Regression:
                {
                    int c = o.First.Length / idx.Length;
                    for (int r = 0; r < idx.Length; r++) rows.Add([o.First.AsSpan(r * c, c).ToArray()]);
                    break;
                }
                case TaskKind.TokenClassification:
                {
                    int c = o.First.Length / (idx.Length * len);
                    for (int r = 0; r < idx.Length; r++)
                    {
                        int n = features[idx[r]].Length;
                        var m = new float[n][];
                        for (int t = 0; t < n; t++) m[t] = o.First.AsSpan((r * len + t) * c, c).ToArray();
                        rows.Add(m);
                    }
                    break;
                }
                case TaskKind.QuestionAnswering:
                    for (int r = 0; r < idx.Length; r++)
                    {
                        int n = features[idx[r]].Length;
                        rows.Add([o.First.AsSpan(r * len, n).ToArray()]);
                        ends!.Add(o.Second!.AsSpan(r * len, n).ToArray());
                    }
                    break;
                default: throw new InvalidOperationException($"no prediction for task kind {kind}");
            }
        }
        return (rows, ends);
    }
}
