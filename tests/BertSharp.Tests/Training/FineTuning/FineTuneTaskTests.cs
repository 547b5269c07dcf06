using BertSharp.Data.Tasks;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Training;
using BertSharp.Training.FineTuning;
using TorchSharp;
using Xunit;

namespace BertSharp.Tests.Training.FineTuning;

/// <summary>A tiny model overfits 32 synthetic examples of each head kind through the shared Trainer.</summary>
public class FineTuneTaskTests
{
    const int Vocab = 40, Pad = 0, Cls = 2, Sep = 3, First = 5;

    static BertConfig Config() => new()
    {
        VocabSize = Vocab, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 64,
        MaxPositionEmbeddings = 32, HiddenDropoutProb = 0.0, AttentionProbsDropoutProb = 0.0,
    };

    /// <summary>Random token rows of length 6–12; the label is a function of the tokens (class = first word mod 2,
    /// score = mean word id scaled to 0–5, tag = word id mod 3).</summary>
    static List<TaskFeature> Features(TaskKind kind, int count = 32, int seed = 7)
    {
        var rng = new Random(seed);
        var list = new List<TaskFeature>();
        for (int i = 0; i < count; i++)
        {
            int len = rng.Next(6, 13);
            var ids = new int[len];
            ids[0] = Cls; ids[^1] = Sep;
            for (int t = 1; t < len - 1; t++) ids[t] = rng.Next(First, Vocab);
            var tags = new int[len];
            for (int t = 0; t < len; t++) tags[t] = t == 0 || t == len - 1 ? TokenFeaturizer.IgnoreIndex : ids[t] % 3;
            list.Add(new TaskFeature
            {
                InputIds = ids, TokenTypeIds = new int[len], ExampleIndex = i,
                Label = kind == TaskKind.SequenceClassification ? ids[1] % 2 : null,
                Score = kind == TaskKind.Regression ? (float)(ids[1..^1].Average() - First) / (Vocab - First) * 5 : null,
                TokenLabels = kind == TaskKind.TokenClassification ? tags : null,
                StartPosition = 1 + ids[1] % (len - 3), EndPosition = 1 + ids[1] % (len - 3) + 1,
            });
        }
        return list;
    }

    static (FineTuneTask Task, TrainingResult Result) Train(TaskKind kind, int numLabels, string dir, long steps = 150, bool bf16 = false)
    {
        var config = Config().WithNumLabels(numLabels);
        var model = BertTaskModels.Create(FineTuneTask.ArchitectureFor(kind), config);
        ModelUtils.InitWeights(model, config, 3);
        if (bf16) model.to(torch.ScalarType.BFloat16);
        var task = new FineTuneTask(model, kind, config, null);
        var features = Features(kind);
        var train = new TaskBatchSource(features, 8, Pad, kind, 11);
        var trainer = new Trainer<TaskBatch>(task, train, null, new TrainerOptions
        {
            Config = new TrainConfig
            {
                LearningRate = 3e-3, TotalSteps = steps, WarmupSteps = 10, BatchSize = 8, LogEvery = 50, TensorBoard = false, Plots = false,
                DType = bf16 ? Precision.BFloat16 : Precision.Float32,
            },
            OutputDir = dir,
        });
        return (task, trainer.Run());
    }

    [Theory]
    [InlineData(TaskKind.SequenceClassification, 2)]
    [InlineData(TaskKind.TokenClassification, 3)]
    [InlineData(TaskKind.QuestionAnswering, 2)]
    public void Overfits_32_examples_to_full_train_accuracy(TaskKind kind, int labels)
    {
        using var tmp = new TempDir();
        var (task, result) = Train(kind, labels, tmp.Path, kind == TaskKind.QuestionAnswering ? 250 : 150);
        Assert.True(result.StepLosses[^1] < 0.1, $"final loss {result.StepLosses[^1]}");
        var features = Features(kind);
        var (logits, ends) = FineTuneTask.Predict(task.Model, features, Pad, kind);
        int correct = 0, total = 0;
        for (int f = 0; f < features.Count; f++)
        {
            var feat = features[f];
            switch (kind)
            {
                case TaskKind.SequenceClassification:
                    total++; if (WindowAggregation.ArgMax(logits[f][0]) == feat.Label) correct++; break;
                case TaskKind.TokenClassification:
                    for (int t = 0; t < feat.Length; t++)
                        if (feat.TokenLabels![t] >= 0) { total++; if (WindowAggregation.ArgMax(logits[f][t]) == feat.TokenLabels[t]) correct++; }
                    break;
                case TaskKind.QuestionAnswering:
                    total++;
                    if (WindowAggregation.ArgMax(logits[f][0]) == feat.StartPosition && WindowAggregation.ArgMax(ends![f]) == feat.EndPosition) correct++;
                    break;
            }
        }
        Assert.Equal(total, correct);
    }

    /// <summary>bf16 mixed precision (bf16 model, float32 masters, float32 loss on upcast logits) trains every head
    /// kind: a bf16 loss used to fail with "Single is not compatible with BFloat16".</summary>
    [Theory]
    [InlineData(TaskKind.SequenceClassification, 2)]
    [InlineData(TaskKind.Regression, 1)]
    [InlineData(TaskKind.TokenClassification, 3)]
    [InlineData(TaskKind.QuestionAnswering, 2)]
    public void Bf16_mixed_precision_trains_every_head_kind(TaskKind kind, int labels)
    {
        using var tmp = new TempDir();
        var (task, result) = Train(kind, labels, tmp.Path, 80, bf16: true);
        Assert.Equal(torch.ScalarType.BFloat16, task.Model.parameters().First().dtype);
        Assert.All(result.StepLosses, l => Assert.True(double.IsFinite(l)));
        double first = result.StepLosses.Take(5).Average(), last = result.StepLosses.TakeLast(5).Average();
        Assert.True(last < 0.5 * first, $"loss {first:F3} -> {last:F3}");
    }

    [Fact]
    public void Regression_fits_32_scores()
    {
        using var tmp = new TempDir();
        var (task, result) = Train(TaskKind.Regression, 1, tmp.Path, 200);
        var features = Features(TaskKind.Regression);
        var (logits, _) = FineTuneTask.Predict(task.Model, features, Pad, TaskKind.Regression);
        double mse = features.Select((f, i) => Math.Pow(logits[i][0][0] - f.Score!.Value, 2)).Average();
        Assert.True(mse < 0.05, $"train MSE {mse} (final loss {result.StepLosses[^1]})");
    }

    [Fact]
    public void Saved_checkpoint_reloads_as_the_same_task_model_with_identical_predictions()
    {
        using var tmp = new TempDir();
        var (task, result) = Train(TaskKind.SequenceClassification, 2, tmp.Path, 20);
        var features = Features(TaskKind.SequenceClassification);
        var (before, _) = FineTuneTask.Predict(task.Model, features, Pad, TaskKind.SequenceClassification);
        var dir = ModelDirectory.Open(result.LastCheckpoint!);
        Assert.Equal([nameof(BertForSequenceClassification)], dir.Config.Architectures);
        Assert.Equal(2, dir.Config.NumLabels);
        var (reloaded, report) = dir.LoadModel(c => (TorchSharp.torch.nn.Module)BertTaskModels.Create(dir.Config.Architectures![0], c));
        Assert.True(report.IsComplete);
        var (after, _) = FineTuneTask.Predict(reloaded, features, Pad, TaskKind.SequenceClassification);
        for (int i = 0; i < features.Count; i++) Assert.Equal(before[i][0], after[i][0]);
    }

    sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("bertsharp-ft-").FullName;
        public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
    }
}
