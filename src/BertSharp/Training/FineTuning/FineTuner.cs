using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;
using BertSharp.Checkpoints;
using BertSharp.Data.Tasks;
using BertSharp.Evaluation;
using BertSharp.Export;
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
    /// <summary>Stop after this many dev evaluations without a better main metric (0: never).</summary>
    [JsonPropertyName("early_stopping_patience")] public int EarlyStoppingPatience { get; init; }
    /// <summary>Comma-separated seeds: one run per seed into OUTPUT/seed-N and a mean ± std summary.</summary>
    [JsonPropertyName("seeds")] public string? Seeds { get; init; }
    /// <summary>SQuAD: split the --train file by article title into train and eval (no --dev).</summary>
    [JsonPropertyName("split_by_article")] public bool SplitByArticle { get; init; }
    /// <summary>SQuAD: fraction of the articles that go to the eval side of <see cref="SplitByArticle"/>.</summary>
    [JsonPropertyName("split_eval_fraction")] public double SplitEvalFraction { get; init; } = 0.2;
    /// <summary>SQuAD: overlap of consecutive context windows in tokens (null: max_length / 3, HF's 128 at 384).</summary>
    [JsonPropertyName("doc_stride")] public int? DocStride { get; init; }
    [JsonPropertyName("max_query_length")] public int MaxQueryLength { get; init; } = 64;
    /// <summary>
    /// Text/pair classification and regression: null truncates inputs longer than <see cref="MaxLength"/> (counted and
    /// reported); a value splits them into max_length windows overlapping by this many tokens (training uses every
    /// window with the example's label; evaluation averages the windows' logits).
    /// </summary>
    [JsonPropertyName("stride")] public int? Stride { get; init; }
    [JsonPropertyName("max_answer_length")] public int MaxAnswerLength { get; init; } = 30;
    /// <summary>
    /// Take only the config and the vocabulary from <see cref="Model"/> and start from HF-initialised random weights
    /// (transformers' <c>from_config</c>): the random-init baseline of a recipe.
    /// </summary>
    [JsonPropertyName("random_init")] public bool RandomInit { get; init; }
    /// <summary>csv task: column (or JSONL field) names.</summary>
    [JsonPropertyName("text_column")] public string TextColumn { get; init; } = "text";
    [JsonPropertyName("text_pair_column")] public string? TextPairColumn { get; init; }
    [JsonPropertyName("label_column")] public string LabelColumn { get; init; } = "label";

    public static readonly Configuration.ConfigSection<FineTuneTaskConfig> Flags = new Configuration.ConfigSection<FineTuneTaskConfig>("task_cfg")
        .Flag("--task", c => c.Task, "Task name (mrpc, sst2, stsb, cola, rte, wnli, qnli, snli, imdb, csv, conll-ner, conll-pos, ud-pos, ud-xpos, squad)", "NAME")
        .Flag("--model", c => c.Model, "Model directory to start from (encoder, pretraining or fine-tuned checkpoint)", "DIR")
        .Flag("--train", c => c.Train, "Training file", "FILE")
        .Flag("--dev", c => c.Dev, "Dev file, scored with the task's metrics every --eval-every updates (0: each epoch)", "FILE")
        .Flag("--max-length", c => c.MaxLength, "Tokens per window")
        .Flag("--early-stopping-patience", c => c.EarlyStoppingPatience, "Stop after N dev evaluations without improvement (0: off)", "N")
        .Flag("--seeds", c => c.Seeds, "Comma-separated seeds: one run each into OUTPUT/seed-N, then mean ± std", "LIST")
        .Switch("--split-by-article", c => c.SplitByArticle, true, "squad: split --train by article into train/eval (instead of --dev)")
        .Flag("--split-eval-fraction", c => c.SplitEvalFraction, "squad: fraction of articles for eval with --split-by-article")
        .Flag("--doc-stride", c => c.DocStride, "squad: window overlap in tokens (default max-length / 3)")
        .Flag("--stride", c => c.Stride, "text/pair classification and regression: split inputs longer than --max-length into windows overlapping by S tokens (train on every window, average their logits to evaluate) instead of cutting them", "S")
        .Flag("--max-query-length", c => c.MaxQueryLength, "squad: question tokens kept")
        .Flag("--max-answer-length", c => c.MaxAnswerLength, "squad: longest answer in tokens")
        .Switch("--random-init", c => c.RandomInit, true, "Use only --model's config and vocabulary; start from HF-initialised random weights (a baseline)")
        .Flag("--text-column", c => c.TextColumn, "csv: text column", "NAME")
        .Flag("--text-pair-column", c => c.TextPairColumn, "csv: second text column (sentence pairs)", "NAME")
        .Flag("--label-column", c => c.LabelColumn, "csv: label column", "NAME");

    /// <summary>BERT fine-tuning defaults (Devlin et al.): lr 2e-5, 3 epochs, warm-up 0.1, batch 32, weight decay 0.01.</summary>
    public static TrainConfig DefaultTrain => new() { LearningRate = 2e-5, Epochs = 3, WarmupProportion = 0.1, BatchSize = 32, WeightDecay = 0.01 };

    /// <summary>Every flag of <c>bert finetune</c>: task_cfg then train_cfg.</summary>
    public static readonly Configuration.ConfigTable Table = new(Flags, TrainConfig.Flags);

    /// <summary>The window overlap SQuAD features use.</summary>
    public int EffectiveDocStride => DocStride ?? MaxLength / 3;

    public SquadFeatureOptions SquadFeatures => new() { MaxLength = MaxLength, DocStride = EffectiveDocStride, MaxQueryLength = MaxQueryLength };

    /// <summary>Text/pair features: truncation, or windows with <see cref="Stride"/>.</summary>
    public TextFeatureOptions TextFeatures => new() { MaxLength = MaxLength, Windows = Stride is not null, Stride = Stride ?? 0 };

    public GenericTextOptions GenericText(IReadOnlyList<string>? labels = null) =>
        new() { TextColumn = TextColumn, TextPairColumn = TextPairColumn, LabelColumn = LabelColumn, Labels = labels };

    /// <summary>The seeds of <see cref="Seeds"/>, or null when not given.</summary>
    public IReadOnlyList<long>? ParseSeeds()
    {
        if (Seeds is null) return null;
        var parts = Seeds.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var list = new List<long>();
        foreach (var p in parts)
        {
            if (!long.TryParse(p, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var s) || s < 0)
                throw new ArgumentException($"--seeds: expected comma-separated non-negative integers like 1,2,3 (got '{Seeds}')");
            list.Add(s);
        }
        if (list.Count == 0) throw new ArgumentException($"--seeds: expected comma-separated non-negative integers like 1,2,3 (got '{Seeds}')");
        if (list.Distinct().Count() != list.Count) throw new ArgumentException($"--seeds: each seed once (got '{Seeds}')");
        return list;
    }

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
        task.Validate();
        train.Validate();
        return (task, train);
    }

    public void Validate()
    {
        if (Task.Length == 0) throw new ArgumentException("--task NAME is required");
        var spec = FineTuneTasks.Get(Task);
        if (Model.Length == 0) throw new ArgumentException("--model DIR is required");
        if (Train.Length == 0) throw new ArgumentException("--train FILE is required");
        if (MaxLength < 8) throw new ArgumentException($"--max-length must be at least 8 (got {MaxLength})");
        if (EarlyStoppingPatience < 0) throw new ArgumentException($"--early-stopping-patience must be >= 0 (got {EarlyStoppingPatience})");
        if (SplitByArticle && spec.Kind != TaskKind.QuestionAnswering) throw new ArgumentException("--split-by-article is for --task squad");
        if (SplitByArticle && Dev is not null) throw new ArgumentException("--split-by-article makes the eval set from --train; do not also give --dev");
        if (!(SplitEvalFraction > 0 && SplitEvalFraction < 1)) throw new ArgumentException($"--split-eval-fraction must be between 0 and 1 (got {SplitEvalFraction})");
        if (DocStride is < 1) throw new ArgumentException($"--doc-stride must be positive (got {DocStride})");
        if (Stride is { } stride)
        {
            if (spec.Kind is not (TaskKind.SequenceClassification or TaskKind.Regression))
                throw new ArgumentException(spec.Kind == TaskKind.QuestionAnswering
                    ? "--stride is for text classification and regression; squad windows its contexts with --doc-stride"
                    : "--stride is for text classification and regression; tagging tasks always window long sentences");
            if (stride < 0 || stride >= MaxLength - 2)
                throw new ArgumentException($"--stride must be at least 0 and below --max-length − 2 = {MaxLength - 2} (got {stride})");
        }
        if (MaxQueryLength < 1) throw new ArgumentException($"--max-query-length must be positive (got {MaxQueryLength})");
        if (MaxAnswerLength < 1) throw new ArgumentException($"--max-answer-length must be positive (got {MaxAnswerLength})");
        if (EarlyStoppingPatience > 0 && Dev is null && !SplitByArticle) throw new ArgumentException("--early-stopping-patience needs dev data (--dev FILE)");
        ParseSeeds();
    }
}

/// <summary>
/// The best dev evaluation so far by the task's main metric (<see cref="TaskScores.Primary"/>; higher is better, NaN
/// counts as worst) and the early-stopping count: <see cref="Observe"/> says whether an evaluation is a new best
/// and whether <see cref="Patience"/> evaluations in a row failed to improve. Saved in every checkpoint
/// (<see cref="FileName"/>) so a resumed run continues the same bookkeeping.
/// </summary>
public sealed class BestTracker
{
    public const string FileName = "best_state.json";

    public BestTracker(string metric, int patience)
    {
        Metric = metric;
        Patience = patience;
    }

    public string Metric { get; }
    public int Patience { get; }
    public long? BestStep { get; private set; }
    public double BestScore { get; private set; } = double.NegativeInfinity;
    public Dictionary<string, double>? BestScores { get; private set; }
    public int EvaluationsWithoutImprovement { get; private set; }
    public int Evaluations { get; private set; }

    public (bool Improved, bool Stop) Observe(long step, IReadOnlyDictionary<string, double> scores)
    {
        if (!scores.TryGetValue(Metric, out var v)) throw new InvalidOperationException($"the evaluation has no '{Metric}'");
        if (double.IsNaN(v)) v = double.NegativeInfinity;
        Evaluations++;
        if (BestStep is null || v > BestScore)
        {
            BestStep = step;
            BestScore = v;
            BestScores = new Dictionary<string, double>(scores);
            EvaluationsWithoutImprovement = 0;
            return (true, false);
        }
        EvaluationsWithoutImprovement++;
        return (false, Patience > 0 && EvaluationsWithoutImprovement >= Patience);
    }

    public void Save(string dir)
    {
        var o = new JsonObject
        {
            ["metric"] = Metric, ["best_step"] = BestStep, ["best_score"] = double.IsFinite(BestScore) ? BestScore : null,
            ["evaluations"] = Evaluations, ["evaluations_without_improvement"] = EvaluationsWithoutImprovement,
        };
        if (BestScores is not null)
        {
            var s = new JsonObject();
            foreach (var (k, x) in BestScores) s[k] = double.IsFinite(x) ? x : null;
            o["best_scores"] = s;
        }
        File.WriteAllText(Path.Combine(dir, FileName), o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
    }

    /// <summary>Restores what <see cref="Save"/> wrote in <paramref name="dir"/> (nothing when the file is absent).</summary>
    public void Load(string dir)
    {
        var p = Path.Combine(dir, FileName);
        if (!File.Exists(p)) return;
        try
        {
            var o = JsonNode.Parse(File.ReadAllText(p))!.AsObject();
            if ((string?)o["metric"] != Metric) throw new FormatException($"{p}: metric '{(string?)o["metric"]}', this run ranks by '{Metric}'");
            BestStep = (long?)o["best_step"];
            BestScore = (double?)o["best_score"] ?? double.NegativeInfinity;
            Evaluations = (int?)o["evaluations"] ?? 0;
            EvaluationsWithoutImprovement = (int?)o["evaluations_without_improvement"] ?? 0;
            BestScores = o["best_scores"] is JsonObject s ? s.ToDictionary(kv => kv.Key, kv => (double?)kv.Value ?? double.NaN) : null;
        }
        catch (Exception e) when (e is JsonException or InvalidOperationException or NullReferenceException)
        {
            throw new FormatException($"{p}: invalid best-checkpoint state ({e.Message})");
        }
    }
}

/// <summary>
/// Fine-tunes a model directory on a text (classification/regression), token-classification or SQuAD task with the
/// shared <see cref="Trainer{TBatch}"/>. With dev data it scores the dev set with <see cref="TaskScores"/> every
/// <c>eval_every</c> updates (0: each epoch) and at the end, logs each evaluation to metrics.jsonl, keeps
/// OUTPUT/best (an HF directory naming the task class and its id2label, written atomically) at the best
/// evaluation of the task's main metric, writes OUTPUT/dev_metrics.json for it and stops early after
/// <c>early_stopping_patience</c> evaluations without improvement. Without dev data best/ is the final model.
/// </summary>
public static class FineTuner
{
    public sealed record Result(TrainingResult Training, IReadOnlyDictionary<string, double>? DevScores, string BestDir, LoadReport Init,
        long? BestStep = null, string? Metric = null);

    public const string DevMetricsFile = "dev_metrics.json";
    public const string SplitFile = "split.json";

    /// <summary>Training features and the dev scorer of one task.</summary>
    sealed record Prepared(List<TaskFeature> Train, IReadOnlyList<string>? Labels, Func<TaskModelRunner, Dictionary<string, double>>? Score);

    public static Result Run(FineTuneTaskConfig cfg, TrainConfig train, string outputDir, IReadOnlyList<ITrainingObserver>? observers = null,
        Action<string>? log = null, CancellationToken cancel = default, bool resume = false)
    {
        log ??= _ => { };
        cfg.Validate();
        var spec = FineTuneTasks.Get(cfg.Task);
        var source = ModelDirectory.Open(cfg.Model);
        var tokenizer = source.LoadTokenizer();
        Directory.CreateDirectory(outputDir);
        var data = Prepare(spec, cfg, tokenizer, train.MicroBatchSize, outputDir, log);

        var config = source.Config;
        if (spec.Kind == TaskKind.Regression) config = config.WithNumLabels(1) with { ProblemType = "regression" };
        else if (spec.Kind == TaskKind.QuestionAnswering) { if (config.NumLabels != 2) config = config.WithNumLabels(2); }
        else if (data.Labels is not null) config = config.WithLabels(data.Labels);
        else throw new ArgumentException($"{cfg.Train}: the training file has no labels");
        var architecture = FineTuneTask.ArchitectureFor(spec.Kind);
        var model = BertTaskModels.Create(architecture, config);
        ModelUtils.InitWeights(model, config, train.Seed);
        LoadReport report;
        if (cfg.RandomInit)
        {
            report = new LoadReport(model.state_dict().Keys.Where(k => !ModelUtils.IsTiedAlias(k)).ToList(), [], 0);
            log($"init: random (HF init, seed {train.Seed}); config and vocabulary from {cfg.Model}, its weights unused");
        }
        else
        {
            report = source.LoadWeightsInto(model);
            log(report.IsComplete ? $"init: every weight from {source.WeightsPath}"
                : $"init: {report.Loaded} tensors from {source.WeightsPath}; newly initialised (HF init): {string.Join(", ", report.Missing)}");
        }
        if (train.DType == Precision.BFloat16) model.to(ScalarType.BFloat16);

        var task = new FineTuneTask(model, spec.Kind, config, tokenizer);
        var trainSource = new TaskBatchSource(data.Train, train.MicroBatchSize, tokenizer.PadId, spec.Kind, (ulong)train.Seed);
        if (data.Score is not null && train.EvalEvery == 0)
            train = train with { EvalEvery = (trainSource.BatchesPerEpoch + train.GradAccumSteps - 1) / train.GradAccumSteps };
        var effective = new JsonObject
        {
            ["task_cfg"] = JsonSerializer.SerializeToNode(cfg, TrainConfig.Json),
            ["train_cfg"] = JsonSerializer.SerializeToNode(train, TrainConfig.Json),
        };
        var primary = TaskScores.Primary(spec);
        var tracker = new BestTracker(primary, cfg.EarlyStoppingPatience);
        var best = Path.Combine(outputDir, "best");
        var stepText = (long s) => s.ToString(CultureInfo.InvariantCulture);
        void SaveBest(long step, IReadOnlyDictionary<string, double>? scores)
        {
            var meta = new Dictionary<string, string> { ["task"] = spec.Name, ["global_step"] = stepText(step) };
            if (scores is not null) meta["metric"] = $"{primary}={scores[primary].ToString("R", CultureInfo.InvariantCulture)}";
            ModelDirectory.Save(model, ((IBertTaskModel)model).Describe(config), tokenizer, best, meta);
            if (scores is null) return;
            var json = new JsonObject { ["task"] = spec.Name, ["primary"] = primary, ["step"] = step, ["best_step"] = step };
            foreach (var (k, v) in scores) json[k] = double.IsFinite(v) ? v : null;
            var tmp = Path.Combine(outputDir, DevMetricsFile + ".tmp");
            File.WriteAllText(tmp, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
            File.Move(tmp, Path.Combine(outputDir, DevMetricsFile), overwrite: true);
        }

        using var devRunner = TaskModelRunner.Wrap(model);
        var trainer = new Trainer<TaskBatch>(task, trainSource, null, new TrainerOptions
        {
            Config = train, OutputDir = outputDir, Observers = observers ?? [], EffectiveConfig = effective,
            Evaluator = data.Score is null ? null : _ => data.Score(devRunner),
            AfterEval = data.Score is null ? null : (step, scores) =>
            {
                var (improved, stop) = tracker.Observe(step, scores);
                if (improved)
                {
                    SaveBest(step, scores);
                    log(string.Create(CultureInfo.InvariantCulture, $"new best {primary} {scores[primary]:0.0000} at step {step} -> {best}"));
                }
                else if (cfg.EarlyStoppingPatience > 0)
                    log(string.Create(CultureInfo.InvariantCulture,
                        $"no improvement on {primary} {tracker.BestScore:0.0000} (step {tracker.BestStep}): {tracker.EvaluationsWithoutImprovement}/{cfg.EarlyStoppingPatience}"));
                return stop;
            },
            SaveExtraState = tracker.Save,
            LoadExtraState = tracker.Load,
        });
        var result = trainer.Run(resume ? outputDir : null, cancel);

        if (data.Score is null)
        {
            if (!result.Interrupted) SaveBest(result.Step, null);
            return new Result(result, null, best, report);
        }
        if (tracker.BestStep is { } bs)
            log(string.Create(CultureInfo.InvariantCulture,
                $"best: step {bs}, {primary} {tracker.BestScore:0.0000} ({tracker.Evaluations} evaluations{(result.StoppedEarly ? $"; early stopping at step {result.Step}" : "")}) -> {best}"));
        return new Result(result, tracker.BestScores, best, report, tracker.BestStep, primary);
    }

    static Prepared Prepare(TaskSpec spec, FineTuneTaskConfig cfg, BertTokenizer tokenizer, int batchSize, string outputDir, Action<string> log)
    {
        switch (spec.Kind)
        {
            case TaskKind.TokenClassification:
            {
                var trainSet = TaskData.ReadTokens(spec, cfg.Train);
                var devSet = cfg.Dev is null ? null : TaskData.ReadTokens(spec, cfg.Dev);
                var labels = devSet is null ? TaskData.TokenLabels(spec, trainSet) : TaskData.TokenLabels(spec, trainSet, devSet);
                var opt = new TokenFeatureOptions { MaxLength = cfg.MaxLength };
                var trainFeatures = TokenFeaturizer.Featurize(tokenizer, trainSet.Examples, trainSet.TagIds(labels), opt);
                if (devSet is null) return new Prepared(trainFeatures, labels, null);
                var refs = devSet.TagIds(labels);
                var feats = TokenFeaturizer.Featurize(tokenizer, devSet.Examples, refs, opt);
                var counts = devSet.Examples.Select(e => e.Words.Length).ToArray();
                return new Prepared(trainFeatures, labels, m =>
                {
                    var (logits, _) = m.Predict(feats, tokenizer.PadId, spec.Kind, batchSize);
                    var words = TokenFeaturizer.WordLogits(feats, logits, counts);
                    return TaskScores.Tokens(spec, TokenFeaturizer.WordPredictions(words), refs, labels);
                });
            }
            case TaskKind.QuestionAnswering:
            {
                var all = SquadReader.Read(cfg.Train);
                SquadDataset trainSet;
                SquadDataset? devSet;
                if (cfg.SplitByArticle)
                {
                    var split = SquadSplit.ByArticle(all, cfg.SplitEvalFraction);
                    log(split.Describe());
                    WriteSplit(split, outputDir);
                    (trainSet, devSet) = (split.Train, split.Eval);
                }
                else (trainSet, devSet) = (all, cfg.Dev is null ? null : SquadReader.Read(cfg.Dev));
                var opt = cfg.SquadFeatures;
                var trainFeatures = SquadFeaturizer.Featurize(tokenizer, trainSet.Examples, opt);
                log(string.Create(CultureInfo.InvariantCulture, $"squad: {trainSet.Count} training questions -> {trainFeatures.Count} windows (max length {opt.MaxLength}, doc stride {opt.DocStride})"));
                if (devSet is null) return new Prepared(trainFeatures, null, null);
                return new Prepared(trainFeatures, null, SquadScorer(devSet, tokenizer, opt, cfg.MaxAnswerLength, batchSize));
            }
            default:
            {
                var generic = cfg.GenericText();
                var trainSet = TaskData.ReadText(spec, cfg.Train, generic);
                var devSet = cfg.Dev is null ? null : TaskData.ReadText(spec, cfg.Dev, generic);
                var labels = devSet is null ? TaskData.TextLabels(spec, trainSet) : TaskData.TextLabels(spec, trainSet, devSet);
                if (spec.Labels is null && labels is not null)
                {
                    // csv: re-read both files against the union of their labels so that train and dev share ids.
                    trainSet = TaskData.ReadText(spec, cfg.Train, cfg.GenericText(labels));
                    if (devSet is not null) devSet = TaskData.ReadText(spec, cfg.Dev!, cfg.GenericText(labels));
                }
                if (!trainSet.HasLabels) throw new ArgumentException($"{cfg.Train}: the training file has no labels (column '{cfg.LabelColumn}')");
                var opt = cfg.TextFeatures;
                var trainFeatures = TextFeaturizer.Featurize(tokenizer, trainSet.Examples, opt, out var trainReport);
                log("train: " + trainReport.Describe());
                if (devSet is null) return new Prepared(trainFeatures, labels, null);
                if (!devSet.HasLabels) throw new ArgumentException($"{cfg.Dev}: the dev file has no labels (column '{cfg.LabelColumn}')");
                var feats = TextFeaturizer.Featurize(tokenizer, devSet.Examples, opt, out var devReport);
                log("dev: " + devReport.Describe() + (opt.Windows ? "; an input's prediction averages its windows' logits" : ""));
                var dev = devSet;
                return new Prepared(trainFeatures, labels, m => ScoreText(spec, m, feats, dev, tokenizer.PadId, batchSize));
            }
        }
    }

    static Dictionary<string, double> ScoreText(TaskSpec spec, TaskModelRunner model, List<TaskFeature> feats, TextDataset set, int padId, int batchSize)
    {
        var (logits, _) = model.Predict(feats, padId, spec.Kind, batchSize);
        var byExample = WindowAggregation.MeanByExample(feats, logits.Select(l => l[0]).ToArray(), set.Count);
        if (spec.Kind == TaskKind.Regression)
            return TaskScores.Regression(byExample.Select(l => (double)l[0]).ToArray(), set.Examples.Select(e => (double)e.Score!.Value).ToArray());
        return TaskScores.Classification(spec, byExample.Select(l => WindowAggregation.ArgMax(l)).ToArray(), set.Examples.Select(e => e.Label!.Value).ToArray());
    }

    static Func<TaskModelRunner, Dictionary<string, double>> SquadScorer(SquadDataset set, BertTokenizer tokenizer, SquadFeatureOptions opt, int maxAnswerLength, int batchSize)
    {
        var feats = SquadFeaturizer.Featurize(tokenizer, set.Examples, opt);
        var post = new SquadPostProcessOptions { MaxAnswerLength = maxAnswerLength, VersionTwoWithNegative = set.HasImpossible };
        return m =>
        {
            var (starts, ends) = m.Predict(feats, tokenizer.PadId, TaskKind.QuestionAnswering, batchSize);
            var preds = SquadPostProcessor.Predict(set.Examples, feats, starts.Select(s => s[0]).ToList(), ends!, post);
            return TaskScores.Squad(preds, set.Examples);
        };
    }

    /// <summary>OUTPUT/split.json: the seed, fraction and article titles of each side of a SQuAD article split.</summary>
    static void WriteSplit(SquadSplit split, string outputDir)
    {
        var o = new JsonObject
        {
            ["seed"] = split.Seed, ["source"] = split.Train.Source,
            ["train_questions"] = split.Train.Count, ["eval_questions"] = split.Eval.Count,
            ["train_articles"] = new JsonArray([.. split.TrainTitles.Select(t => (JsonNode)JsonValue.Create(t)!)]),
            ["eval_articles"] = new JsonArray([.. split.EvalTitles.Select(t => (JsonNode)JsonValue.Create(t)!)]),
        };
        var tmp = Path.Combine(outputDir, SplitFile + ".tmp");
        File.WriteAllText(tmp, o.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.Move(tmp, Path.Combine(outputDir, SplitFile), overwrite: true);
    }

    /// <summary>One seed's run in a <see cref="RunSeeds"/> summary.</summary>
    public sealed record SeedRun(long Seed, string OutputDir, Result Result);

    /// <summary>Mean and sample standard deviation (n − 1; 0 for one run) of each dev metric over the seeds.</summary>
    public sealed record SeedSummary(string Metric, IReadOnlyList<SeedRun> Runs, IReadOnlyDictionary<string, (double Mean, double Std)> Stats)
    {
        public string Describe()
        {
            var inv = CultureInfo.InvariantCulture;
            return $"{Runs.Count} seeds ({string.Join(", ", Runs.Select(r => r.Seed.ToString(inv)))}): " +
                string.Join(", ", Stats.Select(kv => $"{kv.Key} {kv.Value.Mean.ToString("0.0000", inv)} ± {kv.Value.Std.ToString("0.0000", inv)}")) +
                $" (sample std); main metric {Metric}";
        }
    }

    public const string SeedSummaryFile = "seeds_summary.json";

    /// <summary>
    /// One <see cref="Run"/> per seed into OUTPUT/seed-N (train_cfg seed = N), then the mean ± std of every dev metric,
    /// written to OUTPUT/seeds_summary.json. Needs dev data. <paramref name="host"/> runs each seed's body with the
    /// observers it supplies (a progress display per seed); the body's log lines go to those observers' OnMessage.
    /// </summary>
    public static SeedSummary RunSeeds(FineTuneTaskConfig cfg, TrainConfig train, string outputDir, IReadOnlyList<long> seeds,
        Func<Func<IReadOnlyList<ITrainingObserver>, Result>, Result>? host = null, Action<string>? log = null,
        CancellationToken cancel = default, bool resume = false)
    {
        log ??= _ => { };
        if (cfg.Dev is null && !cfg.SplitByArticle) throw new ArgumentException("--seeds needs dev data (--dev FILE) to compare the runs");
        var one = cfg with { Seeds = null };
        var runs = new List<SeedRun>();
        foreach (var seed in seeds)
        {
            var dir = Path.Combine(outputDir, "seed-" + seed.ToString(CultureInfo.InvariantCulture));
            log($"seed {seed} -> {dir}");
            bool resumeThis = resume && Checkpoint.List(dir).Count > 0;
            var seedTrain = train with { Seed = seed };
            var r = host is null ? Run(one, seedTrain, dir, null, log, cancel, resumeThis)
                : host(obs => Run(one, seedTrain, dir, obs, m => { foreach (var o in obs) o.OnMessage(m); }, cancel, resumeThis));
            if (r.Training.Interrupted) throw new OperationCanceledException($"interrupted during seed {seed}");
            runs.Add(new SeedRun(seed, dir, r));
        }
        var primary = TaskScores.Primary(FineTuneTasks.Get(cfg.Task));
        var stats = new Dictionary<string, (double, double)>();
        foreach (var key in runs[0].Result.DevScores!.Keys)
        {
            var xs = runs.Select(r => r.Result.DevScores![key]).ToArray();
            stats[key] = MeanStd(xs);
        }
        var summary = new SeedSummary(primary, runs, stats);
        var json = new JsonObject
        {
            ["task"] = cfg.Task, ["primary"] = primary, ["std"] = "sample (n - 1)",
            ["seeds"] = new JsonArray([.. runs.Select(r => (JsonNode)JsonValue.Create(r.Seed)!)]),
        };
        var mean = new JsonObject();
        var std = new JsonObject();
        foreach (var (k, (m, s)) in stats) { mean[k] = double.IsFinite(m) ? m : null; std[k] = double.IsFinite(s) ? s : null; }
        json["mean"] = mean;
        json["stddev"] = std;
        json["runs"] = new JsonArray([.. runs.Select(r =>
        {
            var o = new JsonObject { ["seed"] = r.Seed, ["output"] = Path.GetFileName(r.OutputDir), ["best_step"] = r.Result.BestStep };
            foreach (var (k, v) in r.Result.DevScores!) o[k] = double.IsFinite(v) ? v : null;
            return (JsonNode)o;
        })]);
        var tmp = Path.Combine(outputDir, SeedSummaryFile + ".tmp");
        File.WriteAllText(tmp, json.ToJsonString(new JsonSerializerOptions { WriteIndented = true }));
        File.Move(tmp, Path.Combine(outputDir, SeedSummaryFile), overwrite: true);
        log(summary.Describe());
        return summary;
    }

    /// <summary>Mean and sample standard deviation (n − 1; 0 for a single value).</summary>
    public static (double Mean, double Std) MeanStd(IReadOnlyList<double> xs)
    {
        if (xs.Count == 0) throw new ArgumentException("no values");
        double mean = xs.Average();
        if (xs.Count == 1) return (mean, 0);
        double ss = xs.Sum(x => (x - mean) * (x - mean));
        return (mean, Math.Sqrt(ss / (xs.Count - 1)));
    }

    /// <summary>
    /// Scores a fine-tuned model directory (config.json <c>architectures</c> names the task class) on a labelled
    /// file of <paramref name="taskName"/> with the task's metrics (the same computation as the dev scores of a run).
    /// <paramref name="options"/>: csv columns, SQuAD window/answer options and, with <c>SplitByArticle</c>, the eval side of
    /// the same article split a run made; <c>Stride</c>: windows for long text inputs (their logits averaged), else they
    /// are truncated. <paramref name="log"/> hears how many inputs were cut or windowed, and the engine.
    /// <paramref name="engine"/>/<paramref name="quantize"/>: TorchSharp, or ONNX Runtime on the cached task export
    /// (float32 or dynamic int8; <see cref="TaskModelRunner.Open"/>).
    /// </summary>
    public static Dictionary<string, double> Evaluate(string modelDir, string taskName, string dataFile, int maxLength = 128, int batchSize = 32,
        FineTuneTaskConfig? options = null, Action<string>? log = null, InferenceEngine engine = InferenceEngine.Torch,
        OnnxQuantization quantize = OnnxQuantization.None)
    {
        var spec = FineTuneTasks.Get(taskName);
        options ??= new FineTuneTaskConfig();
        options = options with { MaxLength = maxLength };
        var dir = ModelDirectory.Open(modelDir);
        var architecture = dir.Config.Architectures is [var a, ..] ? a
            : throw new ArgumentException($"{dir.ConfigPath}: no 'architectures' entry; expected a fine-tuned task model");
        if (architecture != FineTuneTask.ArchitectureFor(spec.Kind))
            throw new ArgumentException($"{dir.ConfigPath}: the model is a {architecture}, task '{spec.Name}' needs a {FineTuneTask.ArchitectureFor(spec.Kind)}");
        var tokenizer = dir.LoadTokenizer();
        using var model = TaskModelRunner.Open(dir, architecture, engine, quantize);
        log?.Invoke(model.Engine == InferenceEngine.Onnx ? $"engine onnx ({model.OnnxPath})"
            : model.FallbackReason is { } why ? $"engine torch (the ONNX export is not possible: {why})" : "engine torch");
        var labels = dir.Config.Labels;
        if (spec.Kind == TaskKind.QuestionAnswering)
        {
            var set = SquadReader.Read(dataFile);
            if (options.SplitByArticle) set = SquadSplit.ByArticle(set, options.SplitEvalFraction).Eval;
            return SquadScorer(set, tokenizer, options.SquadFeatures, options.MaxAnswerLength, batchSize)(model);
        }
        if (spec.Kind == TaskKind.TokenClassification)
        {
            var set = TaskData.ReadTokens(spec, dataFile);
            var refs = set.TagIds(labels);
            var feats = TokenFeaturizer.Featurize(tokenizer, set.Examples, refs, new TokenFeatureOptions { MaxLength = maxLength });
            var (logits, _) = model.Predict(feats, tokenizer.PadId, spec.Kind, batchSize);
            var words = TokenFeaturizer.WordLogits(feats, logits, set.Examples.Select(e => e.Words.Length).ToArray());
            return TaskScores.Tokens(spec, TokenFeaturizer.WordPredictions(words), refs, labels);
        }
        if (spec.Labels is { } fixedLabels && !fixedLabels.SequenceEqual(labels))
            throw new ArgumentException($"{dir.ConfigPath}: id2label ({string.Join(", ", labels)}) is not task '{spec.Name}''s ({string.Join(", ", fixedLabels)})");
        var text = TaskData.ReadText(spec, dataFile, options.GenericText(spec.Kind == TaskKind.Regression ? null : labels));
        if (!text.HasLabels) throw new ArgumentException($"{dataFile}: no labels to score against");
        var tf = TextFeaturizer.Featurize(tokenizer, text.Examples, options.TextFeatures, out var report);
        log?.Invoke(report.Describe());
        return ScoreText(spec, model, tf, text, tokenizer.PadId, batchSize);
    }
}
