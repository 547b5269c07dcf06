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
        var rows = new List<float[][]>(features.Count);
        var ends = kind == TaskKind.QuestionAnswering ? new List<float[]>(features.Count) : null;
        try
        {
            for (int s = 0; s < features.Count; s += batchSize)
            {
                using var scope = NewDisposeScope();
                using var _ = inference_mode();
                var idx = Enumerable.Range(s, Math.Min(batchSize, features.Count - s)).ToArray();
                using var b = TaskBatch.Collate(features, idx, padId, kind);
                switch (model)
                {
                    case BertForSequenceClassification sc:
                    {
                        var l = sc.forward(b.InputIds, b.TokenTypeIds, b.AttentionMask).Logits.to(ScalarType.Float32).contiguous();
                        int c = (int)l.shape[1];
                        var data = l.data<float>().ToArray();
                        for (int r = 0; r < idx.Length; r++) rows.Add([data.AsSpan(r * c, c).ToArray()]);
                        break;
                    }
                    case BertForTokenClassification tc:
                    {
                        var l = tc.forward(b.InputIds, b.TokenTypeIds, b.AttentionMask).Logits.to(ScalarType.Float32).contiguous();
                        int len = (int)l.shape[1], c = (int)l.shape[2];
                        var data = l.data<float>().ToArray();
                        for (int r = 0; r < idx.Length; r++)
                        {
                            int n = features[idx[r]].Length;
                            var m = new float[n][];
                            for (int t = 0; t < n; t++) m[t] = data.AsSpan((r * len + t) * c, c).ToArray();
                            rows.Add(m);
                        }
                        break;
                    }
                    case BertForQuestionAnswering qa:
                    {
                        var o = qa.forward(b.InputIds, b.TokenTypeIds, b.AttentionMask);
                        var st = o.StartLogits.to(ScalarType.Float32).contiguous().data<float>().ToArray();
                        var en = o.EndLogits.to(ScalarType.Float32).contiguous().data<float>().ToArray();
                        int len = b.SequenceLength;
                        for (int r = 0; r < idx.Length; r++)
                        {
                            int n = features[idx[r]].Length;
                            rows.Add([st.AsSpan(r * len, n).ToArray()]);
                            ends!.Add(en.AsSpan(r * len, n).ToArray());
                        }
                        break;
                    }
                    default: throw new InvalidOperationException($"unsupported model {model.GetType().Name}");
                }
            }
        }
        finally
        {
            if (wasTraining) model.train();
        }
        return (rows, ends);
    }
}
