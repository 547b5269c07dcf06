using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using BertSharp.Checkpoints;
using BertSharp.Data.Tasks;
using BertSharp.Evaluation;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training.FineTuning;

/// <summary>The task/data section of a fine-tuning run (<c>task_cfg</c>); optimisation settings are a <see cref="TrainConfig"/>.</summary>
public sealed record FineTuneTaskConfig
{
    [JsonPropertyName("task")] public string Task { get; init; } = "";
    [JsonPropertyName("model")] public string Model { get; init; } = "";
    [JsonPropertyName("train")] public string Train { get; init; } = "";
    [JsonPropertyName("dev")] public string? Dev { get; init; }
    [JsonPropertyName("max_length")] public int MaxLength { get; init; } = 128;

    public static readonly Configuration.ConfigSection<FineTuneTaskConfig> Flags = new Configuration.ConfigSection<FineTuneTaskConfig>("task_cfg")
        .Flag("--task", c => c.Task, "Task name (mrpc, sst2, stsb, cola, rte, wnli, qnli, snli, imdb, csv, conll-ner, conll-pos, ud-pos, ud-xpos)", "NAME")
        .Flag("--model", c => c.Model, "Model directory to start from (encoder, pretraining or fine-tuned checkpoint)", "DIR")
        .Flag("--train", c => c.Train, "Training file", "FILE")
        .Flag("--dev", c => c.Dev, "Dev file, scored with the task's metrics after training", "FILE")
        .Flag("--max-length", c => c.MaxLength, "Tokens per window");

    /// <summary>BERT fine-tuning defaults (Devlin et al.): lr 2e-5, 3 epochs, warm-up 0.1, batch 32, weight decay 0.01.</summary>
    public static TrainConfig DefaultTrain => new() { LearningRate = 2e-5, Epochs = 3, WarmupProportion = 0.1, BatchSize = 32, WeightDecay = 0.01 };

    /// <summary>Every flag of <c>bert finetune</c>: task_cfg then train_cfg.</summary>
    public static readonly Configuration.ConfigTable Table = new(Flags, TrainConfig.Flags);

    /// <summary>The typed sections from a flag layer (<see cref="Table"/>) over <see cref="DefaultTrain"/>.</summary>
    public static (FineTuneTaskConfig Task, TrainConfig Train) FromLayer(JsonObject layer)
    {
        var trainJson = JsonSerializer.SerializeToNode(DefaultTrain, TrainConfig.Json)!.AsObject();
        if (layer["train_cfg"] is JsonObject t) foreach (var (k, v) in t) trainJson[k] = v?.DeepClone();
        var taskJson = layer["task_cfg"] as JsonObject ?? new JsonObject();
        T Read<T>(JsonObject o, string name)
        {
            try { return o.Deserialize<T>(TrainConfig.Json) ?? throw new FormatException($"{name}: empty"); }
            catch (JsonException e) { throw new FormatException($"{name}: {e.Message}"); }
        }
        var task = Read<FineTuneTaskConfig>(taskJson, "task_cfg");
        var train = Read<TrainConfig>(trainJson, "train_cfg");
        if (task.Task.Length == 0) throw new ArgumentException("--task NAME is required");
        if (task.Model.Length == 0) throw new ArgumentException("--model DIR is required");
        if (task.Train.Length == 0) throw new ArgumentException("--train FILE is required");
        if (task.MaxLength < 8) throw new ArgumentException($"--max-length must be at least 8 (got {task.MaxLength})");
        train.Validate();
        return (task, train);
    }
}

/// <summary>
/// Fine-tunes a model directory on a text (classification/regression) or token-classification task with the shared
/// <see cref="Trainer{TBatch}"/>, scores the dev file with <see cref="TaskScores"/> and writes OUTPUT/best (an HF
/// directory naming the task class and its id2label) plus OUTPUT/dev_metrics.json.
/// </summary>
public static class FineTuner
{
    public sealed record Result(TrainingResult Training, IReadOnlyDictionary<string, double>? DevScores, string BestDir, LoadReport Init);

    public static Result Run(FineTuneTaskConfig cfg, TrainConfig train, string outputDir, IReadOnlyList<ITrainingObserver>? observers = null,
        Action<string>? log = null, CancellationToken cancel = default)
    {
        log ??= _ => { };
        var spec = FineTuneTasks.Get(cfg.Task);
        if (spec.Kind == TaskKind.QuestionAnswering) throw new ArgumentException("squad fine-tuning is not wired into FineTuner yet");
        var source = ModelDirectory.Open(cfg.Model);
        var tokenizer = source.LoadTokenizer();

        List<TaskFeature> trainFeatures, devFeatures = [];
        IReadOnlyList<string>? labels;
        Func<nn.Module, Dictionary<string, double>>? score = null;
        if (spec.Kind == TaskKind.TokenClassification)
        {
            var trainSet = TaskData.ReadTokens(spec, cfg.Train);
            var devSet = cfg.Dev is null ? null : TaskData.ReadTokens(spec, cfg.Dev);
            labels = devSet is null ? TaskData.TokenLabels(spec, trainSet) : TaskData.TokenLabels(spec, trainSet, devSet);
            var opt = new TokenFeatureOptions { MaxLength = cfg.MaxLength };
            trainFeatures = TokenFeaturizer.Featurize(tokenizer, trainSet.Examples, trainSet.TagIds(labels), opt);
            if (devSet is not null)
            {
                var refs = devSet.TagIds(labels);
                devFeatures = TokenFeaturizer.Featurize(tokenizer, devSet.Examples, refs, opt);
                var feats = devFeatures;
                score = m =>
                {
                    var (logits, _) = FineTuneTask.Predict(m, feats, tokenizer.PadId, spec.Kind, train.MicroBatchSize);
                    var words = TokenFeaturizer.WordLogits(feats, logits, devSet.Examples.Select(e => e.Words.Length).ToArray());
                    return TaskScores.Tokens(spec, TokenFeaturizer.WordPredictions(words), refs, labels);
                };
            }
        }
        else
        {
            var trainSet = TaskData.ReadText(spec, cfg.Train);
            var devSet = cfg.Dev is null ? null : TaskData.ReadText(spec, cfg.Dev);
            labels = devSet is null ? TaskData.TextLabels(spec, trainSet) : TaskData.TextLabels(spec, trainSet, devSet);
            var opt = new TextFeatureOptions { MaxLength = cfg.MaxLength };
            trainFeatures = TextFeaturizer.Featurize(tokenizer, trainSet.Examples, opt);
            if (devSet is not null)
            {
                devFeatures = TextFeaturizer.Featurize(tokenizer, devSet.Examples, opt);
                var feats = devFeatures;
                score = m =>
                {
                    var (logits, _) = FineTuneTask.Predict(m, feats, tokenizer.PadId, spec.Kind, train.MicroBatchSize);
                    var byExample = WindowAggregation.MeanByExample(feats, logits.Select(l => l[0]).ToArray(), devSet.Count);
                    if (spec.Kind == TaskKind.Regression)
                        return TaskScores.Regression(byExample.Select(l => (double)l[0]).ToArray(), devSet.Examples.Select(e => (double)e.Score!.Value).ToArray());
                    return TaskScores.Classification(spec, byExample.Select(l => WindowAggregation.ArgMax(l)).ToArray(), devSet.Examples.Select(e => e.Label!.Value).ToArray());
                };
            }
        }

        var config = source.Config;
        if (spec.Kind == TaskKind.Regression) config = config.WithNumLabels(1) with { ProblemType = "regression" };
        else if (labels is not null) config = config.WithLabels(labels);
        else throw new ArgumentException($"{cfg.Train}: the training file has no labels");
        var architecture = FineTuneTask.ArchitectureFor(spec.Kind);
        var model = BertTaskModels.Create(architecture, config);
        ModelUtils.InitWeights(model, config, train.Seed);
        var report = source.LoadWeightsInto(model);
        log(report.IsComplete ? $"init: every weight from {source.WeightsPath}"
            : $"init: {report.Loaded} tensors from {source.WeightsPath}; newly initialised (HF init): {string.Join(", ", report.Missing)}");
        if (train.DType == Precision.BFloat16) model.to(ScalarType.BFloat16);

        var task = new FineTuneTask(model, spec.Kind, config, tokenizer);
        var trainSource = new TaskBatchSource(trainFeatures, train.MicroBatchSize, tokenizer.PadId, spec.Kind, (ulong)train.Seed);
        var effective = new JsonObject
        {
            ["task_cfg"] = JsonSerializer.SerializeToNode(cfg, TrainConfig.Json),
            ["train_cfg"] = JsonSerializer.SerializeToNode(train, TrainConfig.Json),
        };
        var trainer = new Trainer<TaskBatch>(task, trainSource, null, new TrainerOptions
        {
            Config = train, OutputDir = outputDir, Observers = observers ?? [], EffectiveConfig = effective,
        });
        var result = trainer.Run(null, cancel);

        var scores = score?.Invoke(model);
        var best = Path.Combine(outputDir, "best");
        ModelDirectory.Save(model, ((IBertTaskModel)model).Describe(config), tokenizer, best,
            new Dictionary<string, string> { ["task"] = spec.Name, ["global_step"] = result.Step.ToString(System.Globalization.CultureInfo.InvariantCulture) });
        if (scores is not null)
        {
            var json = new JsonObject { ["task"] = spec.Name, ["primary"] = TaskScores.Primary(spec), ["step"] = result.Step };
            foreach (var (k, v) in scores) json[k] = v;
            var tmp = Path.Combine(outputDir, "dev_metrics.json.tmp");
            File.WriteAllText(tmp, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.Move(tmp, Path.Combine(outputDir, "dev_metrics.json"), overwrite: true);
            log("dev: " + string.Join(", ", scores.Select(kv => $"{kv.Key} {kv.Value:0.0000}")));
        }
        return new Result(result, scores, best, report);
    }

    /// <summary>
    /// Scores a fine-tuned model directory (config.json <c>architectures</c> names the task class) on a labelled
    /// file of <paramref name="taskName"/> with the task's metrics (the same computation as the dev scores of a run).
    /// </summary>
    public static Dictionary<string, double> Evaluate(string modelDir, string taskName, string dataFile, int maxLength = 128, int batchSize = 32)
    {
        var spec = FineTuneTasks.Get(taskName);
        if (spec.Kind == TaskKind.QuestionAnswering) throw new ArgumentException("squad evaluation is not wired in yet");
        var dir = ModelDirectory.Open(modelDir);
        var architecture = dir.Config.Architectures is [var a, ..] ? a
            : throw new ArgumentException($"{dir.ConfigPath}: no 'architectures' entry; expected a fine-tuned task model");
        if (architecture != FineTuneTask.ArchitectureFor(spec.Kind))
            throw new ArgumentException($"{dir.ConfigPath}: the model is a {architecture}, task '{spec.Name}' needs a {FineTuneTask.ArchitectureFor(spec.Kind)}");
        var tokenizer = dir.LoadTokenizer();
        var (model, _) = dir.LoadModel(c => BertTaskModels.Create(architecture, c));
        using var _m = model;
        var labels = dir.Config.Labels;
        if (spec.Kind == TaskKind.TokenClassification)
        {
            var set = TaskData.ReadTokens(spec, dataFile);
            var refs = set.TagIds(labels);
            var feats = TokenFeaturizer.Featurize(tokenizer, set.Examples, refs, new TokenFeatureOptions { MaxLength = maxLength });
            var (logits, _) = FineTuneTask.Predict(model, feats, tokenizer.PadId, spec.Kind, batchSize);
            var words = TokenFeaturizer.WordLogits(feats, logits, set.Examples.Select(e => e.Words.Length).ToArray());
            return TaskScores.Tokens(spec, TokenFeaturizer.WordPredictions(words), refs, labels);
        }
        var text = TaskData.ReadText(spec, dataFile);
        if (spec.Labels is { } fixedLabels && !fixedLabels.SequenceEqual(labels))
            throw new ArgumentException($"{dir.ConfigPath}: id2label ({string.Join(", ", labels)}) is not task '{spec.Name}''s ({string.Join(", ", fixedLabels)})");
        var tf = TextFeaturizer.Featurize(tokenizer, text.Examples, new TextFeatureOptions { MaxLength = maxLength });
        var (rows, _) = FineTuneTask.Predict(model, tf, tokenizer.PadId, spec.Kind, batchSize);
        var byExample = WindowAggregation.MeanByExample(tf, rows.Select(l => l[0]).ToArray(), text.Count);
        if (spec.Kind == TaskKind.Regression)
            return TaskScores.Regression(byExample.Select(l => (double)l[0]).ToArray(), text.Examples.Select(e => (double)e.Score!.Value).ToArray());
        return TaskScores.Classification(spec, byExample.Select(l => WindowAggregation.ArgMax(l)).ToArray(), text.Examples.Select(e => e.Label!.Value).ToArray());
    }
}
