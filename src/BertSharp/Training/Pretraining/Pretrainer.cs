using System.Text.Json.Nodes;
using BertSharp.Checkpoints;
using BertSharp.Data;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training.Pretraining;

/// <summary>What <see cref="Pretrainer.Run"/> needs besides the configuration.</summary>
public sealed record PretrainRunOptions
{
    public required string OutputDir { get; init; }
    /// <summary>A checkpoint directory or an output directory to continue from.</summary>
    public string? Resume { get; init; }
    /// <summary>Texts with [MASK] whose top-5 predictions are printed at each evaluation.</summary>
    public IReadOnlyList<string> Probes { get; init; } = [];
    public IReadOnlyList<ITrainingObserver> Observers { get; init; } = [];
    /// <summary>Score the weights of <see cref="Resume"/> (or of the config's <c>init</c>) on the held-out data and stop:
    /// no update, no checkpoint. <c>eval_max_batches</c> 0 = every held-out batch.</summary>
    public bool EvaluateOnly { get; init; }
    /// <summary>Progress lines about data preparation (tokenizing, caches, splits).</summary>
    public Action<string>? Log { get; init; }
}

/// <summary>
/// Pretraining from scratch (or from <c>init</c> weights): builds the tokenizer, the train/held-out datasets (the
/// data pipeline with its on-disk caches), the model and the <see cref="PretrainingTask"/>, and runs the
/// <see cref="Trainer{TBatch}"/>. The <c>bert pretrain</c> verb is a thin wrapper around this.
/// </summary>
public static class Pretrainer
{
    /// <summary>Reads the effective configuration of a checkpoint (for resuming with the same settings).</summary>
    public static JsonObject? CheckpointConfig(string resume)
    {
        var dir = Checkpoint.Resolve(resume);
        var p = Path.Combine(dir, Checkpoint.ConfigFile);
        return File.Exists(p) ? PretrainConfig.ReadFile(p) : null;
    }

    public static TrainingResult Run(PretrainConfig config, PretrainRunOptions run, CancellationToken cancel = default)
    {
        var log = run.Log ?? (_ => { });
        var train = config.Train;
        var data = config.Data;
        train.Validate();
        data.Validate();
        string? resumeDir = run.Resume is null ? null : Checkpoint.Resolve(run.Resume);

        var tokenizer = LoadTokenizer(config, resumeDir, run.OutputDir, log);
        var modelConfig = ResolveModelConfig(config, resumeDir, tokenizer.Vocab.Count);

        var cacheRoot = data.CacheDir ?? Path.Combine(run.OutputDir, "cache");
        var dataOptions = data.ToDataOptions(train.Seed);
        if (data.MaxSeqLength > modelConfig.MaxPositionEmbeddings)
            throw new ArgumentException($"max_seq_length {data.MaxSeqLength} exceeds the model's max_position_embeddings {modelConfig.MaxPositionEmbeddings}");
        var (trainData, evalData) = BuildDatasets(data, tokenizer, dataOptions, cacheRoot, log);
        using var trainDataset = trainData;
        using var evalDataset = evalData;
        log($"data: {trainData.Count:N0} training examples" + (evalData is null ? ", no held-out split" : $", {evalData.Count:N0} held-out examples"));

        using var model = new BertForPreTraining(modelConfig);
        ModelUtils.InitWeights(model, modelConfig, train.Seed);
        if (config.Init is not null && resumeDir is null) LoadInit(model, config.Init, log);
        if (train.DType == Precision.BFloat16) model.to(ScalarType.BFloat16);

        var task = new PretrainingTask(model, modelConfig, tokenizer);
        var batching = new BatchingOptions
        {
            BatchSize = train.MicroBatchSize, DropLast = true, Shuffle = true, BucketWindowBatches = data.BucketWindowBatches,
        };
        var trainSource = new DatasetBatchSource(trainData, batching);
        if (trainSource.BatchesPerEpoch == 0)
            throw new ArgumentException($"the corpus gives {trainData.Count} training examples, fewer than one batch of {train.MicroBatchSize}");
        var evalSource = evalData is null ? null
            : new DatasetBatchSource(evalData, new BatchingOptions { BatchSize = train.MicroBatchSize, DropLast = false, Shuffle = false });

        var observers = new List<ITrainingObserver>(run.Observers);
        if (run.Probes.Count > 0) observers.Add(new MaskProbe(model, tokenizer, run.Probes, observers));
        var trainer = new Trainer<PretrainingBatch>(task, trainSource, evalSource, new TrainerOptions
        {
            Config = train, OutputDir = run.OutputDir, Observers = observers,
            EffectiveConfig = config.ToJson(modelConfig),
        });
        if (run.EvaluateOnly) return EvaluateOnly(trainer, task, evalSource, config, resumeDir, log);
        return trainer.Run(resumeDir, cancel);
    }

    static TrainingResult EvaluateOnly(Trainer<PretrainingBatch> trainer, PretrainingTask task, DatasetBatchSource? evalSource,
        PretrainConfig config, string? resumeDir, Action<string> log)
    {
        if (evalSource is null)
            throw new ArgumentException("--eval-only needs held-out data: --eval-corpus FILE or --eval-fraction > 0");
        long step = 0;
        if (resumeDir is not null)
        {
            task.LoadModel(resumeDir);
            step = Checkpoint.LoadState(resumeDir).GlobalStep;
        }
        else if (config.Init is null)
            throw new ArgumentException("--eval-only scores existing weights: pass --resume CHECKPOINT or --init MODEL_DIR");
        log($"evaluating {resumeDir ?? config.Init} on {trainer.EvalBatchCount:N0} held-out batches of {evalSource.BatchSize}");
        var metrics = trainer.Evaluate(step);
        return new TrainingResult(step, step, false, metrics, resumeDir, []);
    }

    static BertTokenizer LoadTokenizer(PretrainConfig config, string? resumeDir, string outputDir, Action<string> log)
    {
        var data = config.Data;
        var options = new BertTokenizerOptions { DoLowerCase = data.Lowercase };
        if (resumeDir is not null && File.Exists(Path.Combine(resumeDir, "vocab.txt")))
            return BertTokenizer.FromDirectory(resumeDir);
        if (data.Vocab is not null) return BertTokenizer.FromVocabFile(data.Vocab, options);
        if (data.TrainVocab is int size)
        {
            // The IMDB recipe: learn a WordPiece vocabulary on the training corpus itself, then pretrain with it.
            var path = Path.Combine(outputDir, "vocab.txt");
            if (!File.Exists(path))
            {
                var corpus = new TextCorpusOptions { Format = data.CorpusFormat, Field = data.TextField };
                var vocabOptions = new WordPieceTrainerOptions { VocabSize = size, Lowercase = data.Lowercase };
                var result = WordPieceTrainer.TrainFiles(data.Corpus, corpus, vocabOptions);
                if (result.ShortfallWarning(vocabOptions.MinFrequency) is { } shortfall)
                    log($"warning: --train-vocab {size}: {shortfall}; the model's vocab_size is {result.Vocabulary.Count:N0}");
                Directory.CreateDirectory(outputDir);
                WordPieceTrainer.Save(result.Vocabulary, path);
                log($"vocabulary: trained {result.Vocabulary.Count:N0} WordPiece tokens on the corpus → {path}");
            }
            return BertTokenizer.FromVocabFile(path, options);
        }
        if (config.Init is not null)
        {
            log($"tokenizer: {config.Init}/vocab.txt");
            return ModelDirectory.Open(config.Init).LoadTokenizer();
        }
        throw new ArgumentException("no vocabulary: pass --vocab FILE (or --train-vocab SIZE, or --init DIR with a vocab.txt)");
    }

    static BertConfig ResolveModelConfig(PretrainConfig config, string? resumeDir, int vocabSize)
    {
        if (resumeDir is not null) return ModelDirectory.Open(resumeDir).Config;
        BertConfig c;
        bool explicitVocab;
        if (config.Init is not null)
        {
            c = ModelDirectory.Open(config.Init).Config;
            explicitVocab = true;
        }
        else
        {
            // Presets and model_cfg files take the vocabulary's size.
            c = config.Model ?? (config.ModelPreset is { } preset ? BertConfig.Preset(preset)
                : throw new ArgumentException("no model: pass --model-config tiny|mini|small|medium|base|large|FILE.json or --init DIR"));
            explicitVocab = false;
        }
        if (c.VocabSize != vocabSize)
        {
            if (explicitVocab)
                throw new ArgumentException($"the model's vocab_size is {c.VocabSize} but the vocabulary has {vocabSize} tokens");
            c = c with { VocabSize = vocabSize };
        }
        c.Validate();
        return c;
    }

    static void LoadInit(BertForPreTraining model, string dir, Action<string> log)
    {
        var source = ModelDirectory.Open(dir);
        var report = source.LoadWeightsInto(model);
        var missing = report.Missing;
        log($"init: {report.Loaded} tensors from {source.WeightsPath}" + (missing.Count > 0 ? $"; newly initialised: {string.Join(", ", missing.Take(6))}{(missing.Count > 6 ? ", …" : "")}" : ""));
    }

    static (PretrainingDataset Train, PretrainingDataset? Eval) BuildDatasets(PretrainDataConfig data, BertTokenizer tokenizer,
        PretrainingDataOptions options, string cacheRoot, Action<string> log)
    {
        // No nested progress display: the caller may already show a live one; cache steps are reported via log.
        var cache = new CacheOptions { Log = log, ShowProgress = false };
        var spec = data.ToCorpusSpec(data.Corpus);
        // Held-out examples keep fixed (static) masks so every evaluation scores the same predictions.
        var evalOptions = options with { Masking = MaskingMode.Static, DupeFactor = 1 };
        var encoder = new BertTokenizerEncoder(tokenizer);
        using var tokens = TokenCache.OpenOrBuild(spec, encoder, cacheRoot, cache);
        if (tokens.TokenTotal == 0)
            throw new InvalidDataException($"the corpus is empty: {string.Join(", ", data.Corpus)} hold{(data.Corpus.Count == 1 ? "s" : "")} no text ({data.CorpusFormat switch { CorpusFormat.Jsonl => $"no non-empty \"{data.TextField}\" field", _ => "only blank lines" }})");
        if (data.EvalCorpus.Count > 0)
        {
            var trainSet = PretrainingDataset.Create(spec, tokenizer, options, cacheRoot, cache);
            var evalSet = PretrainingDataset.Create(data.ToCorpusSpec(data.EvalCorpus), tokenizer, evalOptions, cacheRoot, cache);
            return (trainSet, evalSet);
        }
        if (data.EvalFraction <= 0)
            return (PretrainingDataset.Create(spec, tokenizer, options, cacheRoot, cache), null);

        // Hold out whole documents: a document goes to the held-out split when hash(seed, doc) < fraction.
        var trainDocs = new List<int>();
        var evalDocs = new List<int>();
        for (int d = 0; d < tokens.DocumentCount; d++)
        {
            double u = (DataRng.Mix(options.Seed, 0xE7A1, (ulong)d) >> 11) * (1.0 / (1UL << 53));
            (u < data.EvalFraction ? evalDocs : trainDocs).Add(d);
        }
        if (tokens.DocumentCount >= 2 && evalDocs.Count == 0) { evalDocs.Add(trainDocs[^1]); trainDocs.RemoveAt(trainDocs.Count - 1); }
        if (trainDocs.Count == 0) throw new ArgumentException("the corpus has too few documents to hold some out; pass --eval-corpus or --eval-fraction 0");
        log($"split: {trainDocs.Count:N0} training and {evalDocs.Count:N0} held-out documents (eval_fraction {data.EvalFraction})");
        var train = PretrainingDataset.InMemory(new DocumentSubset(tokens, trainDocs), encoder.Vocab, options);
        var eval = evalDocs.Count == 0 ? null : PretrainingDataset.InMemory(new DocumentSubset(tokens, evalDocs), encoder.Vocab, evalOptions);
        return (train, eval);
    }

    /// <summary>A subset of the documents of a tokenized corpus.</summary>
    sealed class DocumentSubset(ITokenizedCorpus inner, IReadOnlyList<int> documents) : ITokenizedCorpus
    {
        public int DocumentCount => documents.Count;
        public long SentenceTotal { get; } = documents.Sum(d => (long)inner.SentenceCount(d));
        public long TokenTotal { get; } = documents.Sum(d => Enumerable.Range(0, inner.SentenceCount(d)).Sum(s => (long)inner.SentenceLength(d, s)));
        public int SentenceCount(int document) => inner.SentenceCount(documents[document]);
        public int SentenceLength(int document, int sentence) => inner.SentenceLength(documents[document], sentence);
        public void AppendSentence(int document, int sentence, List<int> destination) => inner.AppendSentence(documents[document], sentence, destination);
    }
}
