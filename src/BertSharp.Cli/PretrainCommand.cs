using System.CommandLine;
using System.Text.Json.Nodes;
using BertSharp.Training;
using BertSharp.Training.Pretraining;

namespace BertSharp.Cli;

/// <summary><c>bert pretrain</c>: MLM (+ NSP) pretraining from scratch. All logic is in <see cref="Pretrainer"/>.</summary>
public static class PretrainCommand
{
    public static Command Create()
    {
        var corpus = new Option<string[]>("--corpus") { Description = "Training corpus file(s) (or one folder with --corpus-format dir)", AllowMultipleArgumentsPerToken = true };
        var corpusFormat = new Option<string?>("--corpus-format") { Description = "text (one sentence per line, blank line between documents), wikitext, jsonl or dir" };
        var textField = new Option<string?>("--text-field") { Description = "JSONL field holding the text (default text)" };
        var vocab = new Option<string?>("--vocab") { Description = "WordPiece vocab.txt" };
        var trainVocab = new Option<int?>("--train-vocab") { Description = "Train a WordPiece vocabulary of this size on the corpus first" };
        var cased = new Option<bool>("--cased") { Description = "Do not lowercase (a cased vocabulary)" };
        var modelConfig = new Option<string?>("--model-config") { Description = "tiny|mini|small|medium|base|large or an HF config.json" };
        var init = new Option<string?>("--init") { Description = "Start from the weights of this model directory" };
        var trainConfig = new Option<string[]>("--train-config") { Description = "JSON config: {\"model_cfg\":…,\"train_cfg\":…,\"data_cfg\":…} or a bare train_cfg (repeatable; later files win)" };
        var maxSeq = new Option<int?>("--max-seq-length") { Description = "Tokens per example (default 128)" };
        var maxPred = new Option<int?>("--max-pred") { Description = "Max masked positions per example (default 20)" };
        var maskProb = new Option<double?>("--mask-prob") { Description = "Masking probability (default 0.15)" };
        var noNsp = new Option<bool>("--no-nsp") { Description = "MLM only, on packed blocks of contiguous text (no next-sentence prediction)" };
        var wwm = new Option<bool>("--whole-word-mask") { Description = "Mask whole words" };
        var masking = new Option<string?>("--masking") { Description = "dynamic (re-mask every epoch, default) or static (Google)" };
        var dupe = new Option<int?>("--dupe-factor") { Description = "Passes over the corpus when creating examples (default 1)" };
        var batch = new Option<int?>("--batch-size") { Description = "Sequences per update (default 32)" };
        var accum = new Option<int?>("--grad-accum") { Description = "Micro-batches per update (default 1)" };
        var lr = new Option<double?>("--lr") { Description = "Peak learning rate (default 1e-4)" };
        var steps = new Option<long?>("--steps") { Description = "Number of updates" };
        var epochs = new Option<double?>("--epochs") { Description = "Number of epochs (when --steps is not given; default 1)" };
        var warmup = new Option<double?>("--warmup") { Description = "Warm-up proportion of the updates (default 0.1)" };
        var warmupSteps = new Option<long?>("--warmup-steps") { Description = "Warm-up updates (instead of --warmup)" };
        var evalCorpus = new Option<string[]>("--eval-corpus") { Description = "Held-out corpus file(s)", AllowMultipleArgumentsPerToken = true };
        var evalFraction = new Option<double?>("--eval-fraction") { Description = "Fraction of documents held out when no --eval-corpus (default 0.05; 0 = none)" };
        var evalEvery = new Option<long?>("--eval-every") { Description = "Evaluate every N updates (default: at the end)" };
        var evalBatches = new Option<long?>("--eval-batches") { Description = "Cap on held-out batches per evaluation" };
        var saveEvery = new Option<long?>("--save-every") { Description = "Checkpoint every N updates (default: at the end)" };
        var keep = new Option<int?>("--keep") { Description = "Checkpoints to keep (default 3)" };
        var logEvery = new Option<long?>("--log-every") { Description = "Log every N updates (default 10)" };
        var probe = new Option<string[]>("--probe") { Description = "Text with [MASK] whose top-5 predictions are printed at each evaluation (repeatable)" };
        var seed = new Option<long?>("--seed") { Description = "Seed for weights, data order, masking, dropout (default 42)" };
        var threads = new Option<int?>("--threads") { Description = "Torch threads (default: all cores)" };
        var dtype = new Option<string?>("--dtype") { Description = "float32 (default) or bfloat16 (bf16 compute, float32 master weights)" };
        var cacheDir = new Option<string?>("--cache-dir") { Description = "Token/example caches (default OUTPUT/cache)" };
        var noTb = new Option<bool>("--no-tensorboard") { Description = "Do not write TensorBoard event files" };
        var noPlots = new Option<bool>("--no-plots") { Description = "Do not write PNG plots" };
        var output = new Option<string?>("--output", "-o") { Description = "Output directory (checkpoints, metrics, plots)" };
        var evalOnly = new Option<bool>("--eval-only") { Description = "Only score the weights of --resume CHECKPOINT (or --init DIR) on the held-out data (--eval-batches 0 = all of it)" };
        var resume = new Option<string?>("--resume") { Description = "Continue exactly from a checkpoint (or the newest one of an output directory)" };

        var cmd = new Command("pretrain", "Pretrain BERT from scratch with masked-LM (+ next-sentence) objectives")
        {
            corpus, corpusFormat, textField, vocab, trainVocab, cased, modelConfig, init, trainConfig, maxSeq, maxPred, maskProb,
            noNsp, wwm, masking, dupe, batch, accum, lr, steps, epochs, warmup, warmupSteps, evalCorpus, evalFraction, evalEvery,
            evalBatches, saveEvery, keep, logEvery, probe, seed, threads, dtype, cacheDir, noTb, noPlots, output, resume, evalOnly,
        };
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var resumeDir = parse.GetValue(resume);
            var layers = new List<JsonObject>();
            if (resumeDir is not null && Pretrainer.CheckpointConfig(resumeDir) is { } saved) layers.Add(saved);
            foreach (var f in parse.GetValue(trainConfig) ?? []) layers.Add(PretrainConfig.ReadFile(f));

            var model = parse.GetValue(modelConfig);
            var initDir = parse.GetValue(init);
            if (model is not null && initDir is not null) throw new ArgumentException("give either --model-config or --init, not both");
            var flags = new JsonObject();
            var train = new JsonObject();
            var data = new JsonObject();
            void Set<T>(JsonObject o, string key, T? value) where T : struct { if (value is { } v) o[key] = JsonValue.Create(v); }
            void SetS(JsonObject o, string key, string? value) { if (value is not null) o[key] = value; }
            var corpora = parse.GetValue(corpus) ?? [];
            if (corpora.Length > 0) data["corpus"] = new JsonArray([.. corpora.Select(c => (JsonNode)c)]);
            var evalCorpora = parse.GetValue(evalCorpus) ?? [];
            if (evalCorpora.Length > 0) data["eval_corpus"] = new JsonArray([.. evalCorpora.Select(c => (JsonNode)c)]);
            SetS(data, "corpus_format", parse.GetValue(corpusFormat));
            SetS(data, "text_field", parse.GetValue(textField));
            SetS(data, "vocab", parse.GetValue(vocab));
            Set(data, "train_vocab", parse.GetValue(trainVocab));
            if (parse.GetValue(cased)) data["lowercase"] = false;
            Set(data, "max_seq_length", parse.GetValue(maxSeq));
            Set(data, "max_predictions_per_seq", parse.GetValue(maxPred));
            Set(data, "masked_lm_prob", parse.GetValue(maskProb));
            if (parse.GetValue(noNsp)) data["mode"] = "packed";
            if (parse.GetValue(wwm)) data["whole_word_mask"] = true;
            SetS(data, "masking", parse.GetValue(masking));
            Set(data, "dupe_factor", parse.GetValue(dupe));
            Set(data, "eval_fraction", parse.GetValue(evalFraction));
            SetS(data, "cache_dir", parse.GetValue(cacheDir));
            Set(train, "batch_size", parse.GetValue(batch));
            Set(train, "grad_accum_steps", parse.GetValue(accum));
            Set(train, "lr", parse.GetValue(lr));
            Set(train, "total_steps", parse.GetValue(steps));
            Set(train, "epochs", parse.GetValue(epochs));
            Set(train, "warmup_proportion", parse.GetValue(warmup));
            Set(train, "warmup_steps", parse.GetValue(warmupSteps));
            Set(train, "eval_every", parse.GetValue(evalEvery));
            Set(train, "eval_max_batches", parse.GetValue(evalBatches));
            Set(train, "save_every", parse.GetValue(saveEvery));
            Set(train, "keep_checkpoints", parse.GetValue(keep));
            Set(train, "log_every", parse.GetValue(logEvery));
            Set(train, "seed", parse.GetValue(seed));
            Set(train, "threads", parse.GetValue(threads));
            SetS(train, "dtype", parse.GetValue(dtype));
            if (parse.GetValue(noTb)) train["tensorboard"] = false;
            if (parse.GetValue(noPlots)) train["plots"] = false;
            if (parse.GetValue(steps) is not null && parse.GetValue(epochs) is null) train["epochs"] = null;
            if (parse.GetValue(epochs) is not null && parse.GetValue(steps) is null) train["total_steps"] = null;
            if (parse.GetValue(warmupSteps) is not null && parse.GetValue(warmup) is null) train["warmup_proportion"] = null;
            if (parse.GetValue(warmup) is not null && parse.GetValue(warmupSteps) is null) train["warmup_steps"] = null;
            flags["train_cfg"] = train;
            flags["data_cfg"] = data;
            layers.Add(flags);

            var merged = PretrainConfig.Merge(layers);
            if (model is not null)
            {
                merged.Remove("init");
                if (File.Exists(model)) merged["model_cfg"] = PretrainConfig.ReadFile(model, asModelConfig: true)["model_cfg"]!.DeepClone();
                else { merged.Remove("model_cfg"); merged["model_preset"] = model; }
            }
            if (initDir is not null) { merged.Remove("model_cfg"); merged.Remove("model_preset"); merged["init"] = initDir; }
            var config = PretrainConfig.FromJson(merged);

            var outDir = parse.GetValue(output) ?? (resumeDir is null ? null : OutputOf(resumeDir))
                ?? throw new ArgumentException("--output DIR is required");
            using var cancel = new ConsoleCancellation();
            var result = TrainingConsole.Run(observer => Pretrainer.Run(config, new PretrainRunOptions
            {
                OutputDir = outDir, Resume = resumeDir, Probes = parse.GetValue(probe) ?? [],
                Observers = [observer], Log = observer.OnMessage, EvaluateOnly = parse.GetValue(evalOnly),
            }, cancel.Token));
            return result.Interrupted ? 130 : 0;
        }));
        return cmd;
    }

    /// <summary>The output directory a checkpoint (or output directory) belongs to.</summary>
    static string OutputOf(string resume)
    {
        var dir = Path.GetFullPath(resume).TrimEnd(Path.DirectorySeparatorChar);
        return Path.GetFileName(dir).StartsWith(Checkpoint.Prefix, StringComparison.Ordinal) ? Path.GetDirectoryName(dir)! : dir;
    }
}
