using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Serving;

/// <summary>The tasks a served model answers; each is one route.</summary>
public static class ServeTasks
{
    public const string Embeddings = "embeddings", FillMask = "fill-mask", Nsp = "nsp", Classify = "classify", Ner = "ner", Qa = "qa", Tokenize = "tokenize";
}

// ---- results (serialised snake_case) ----

public sealed record LabelScore(string Label, double Score);
public sealed record ClassifyResult(string? Label, double Score, IReadOnlyList<LabelScore> Scores);
public sealed record NerWord(string Word, string Label, double Score, int Start, int End);
public sealed record NerEntity(string EntityGroup, double Score, string Word, int Start, int End);
public sealed record NerResult(IReadOnlyList<NerEntity> Entities, IReadOnlyList<NerWord> Words);
public sealed record QaResult(string Answer, double Score, int Start, int End, bool Truncated);
public sealed record EmbedOutput(float[][] Vectors, int[] Tokens);

/// <summary>Inputs of the batched tasks.</summary>
sealed record PairInput(IReadOnlyList<string> Texts, IReadOnlyList<string?>? Pairs);
sealed record QaInput(IReadOnlyList<string> Questions, IReadOnlyList<string> Contexts);
sealed record FillMaskInput(string Text, int TopK);
sealed record NspInput(string TextA, string TextB);

/// <summary>
/// One loaded model and its worker. What it answers follows from the checkpoint: a
/// <c>BertForSequenceClassification</c> directory classifies, <c>BertForTokenClassification</c> tags words,
/// <c>BertForQuestionAnswering</c> extracts spans; any other BERT (a bare encoder, a pretraining checkpoint,
/// sentence-transformers) gives embeddings, and fill-mask / NSP when its checkpoint has those heads. Every model
/// tokenizes. All libtorch work runs on the worker thread of <see cref="BatchQueue"/>.
/// </summary>
public sealed class ServedModel : IDisposable
{
    readonly Embedder? _embedder;
    readonly BertPipeline? _pipeline;
    readonly nn.Module? _task;
    readonly BatchQueue _queue;
    readonly int _maxBatch;
    readonly Device _device = CPU;

    public string Name { get; }
    public string Path { get; }
    public string? Architecture { get; }
    public BertConfig Config { get; }
    public BertTokenizer Tokenizer { get; }
    public IReadOnlyList<string> Tasks { get; }
    public IReadOnlyList<string> Labels { get; }
    /// <summary>Tokens per input the model accepts (embedding models: the Embedder's max length).</summary>
    public int MaxLength { get; }
    public int? Dimensions => _embedder?.Dimensions;
    public string? Pooling => _embedder?.Pooling.ToString().ToLowerInvariant();
    public bool? Normalize => _embedder?.Normalize;
    public DateTimeOffset Created { get; } = DateTimeOffset.UtcNow;
    public int QueueDepth => _queue.Depth;

    ServedModel(string name, string path, BertConfig config, BertTokenizer tokenizer, string? architecture, Embedder? embedder,
        BertPipeline? pipeline, nn.Module? task, IReadOnlyList<string> tasks, ServeOptions options, ServeMetrics metrics)
    {
        Name = name;
        Path = path;
        Config = config;
        Tokenizer = tokenizer;
        Architecture = architecture;
        _embedder = embedder;
        _pipeline = pipeline;
        _task = task;
        Tasks = tasks;
        Labels = config.Labels;
        MaxLength = embedder?.MaxLength ?? config.MaxPositionEmbeddings;
        _maxBatch = options.MaxBatch;
        _queue = new BatchQueue(name, options.MaxQueue, options.MaxBatch, TimeSpan.FromMilliseconds(options.MaxWaitMs),
            kind => kind is ServeTasks.Embeddings or ServeTasks.Classify or ServeTasks.Ner or ServeTasks.Qa,
            Execute, (kind, size) => metrics.ObserveBatch(name, kind, size));
    }

    /// <summary>Loads <paramref name="spec"/> (a local directory or Hub id, resolved by <see cref="ModelResolver"/>).</summary>
    public static ServedModel Load(ServedModelSpec spec, ServeOptions options, ServeMetrics metrics)
    {
        var path = ModelResolver.Resolve(spec.Path);
        var dir = ModelDirectory.Open(path);
        var arch = dir.Config.Architectures is { Count: > 0 } a ? a[0] : null;
        var tokenizer = dir.LoadTokenizer();
        var tasks = new List<string>();
        Embedder? embedder = null;
        BertPipeline? pipeline = null;
        nn.Module? task = null;
        try
        {
            switch (arch)
            {
                case nameof(BertForSequenceClassification):
                case nameof(BertForTokenClassification):
                case nameof(BertForQuestionAnswering):
                {
                    var (model, report) = dir.LoadModel(c => BertTaskModels.Create(arch, c), options.DType);
                    task = model;
                    var heads = report.MissingHeads.ToList();
                    if (heads.Count > 0)
                        throw new InvalidDataException($"{dir.WeightsPath}: the {arch} head weights are missing ({string.Join(", ", heads.Take(4))}); its answers would be random");
                    tasks.Add(arch switch
                    {
                        nameof(BertForSequenceClassification) => ServeTasks.Classify,
                        nameof(BertForTokenClassification) => ServeTasks.Ner,
                        _ => ServeTasks.Qa,
                    });
                    break;
                }
                default:
                {
                    embedder = Embedder.Load(path, new EmbedderOptions { BatchSize = options.MaxBatch, DType = options.DType });
                    tasks.Add(ServeTasks.Embeddings);
                    pipeline = BertPipeline.Load(path, options.DType);
                    bool mlm = !pipeline.Report.Missing.Any(k => k.StartsWith("cls.predictions", StringComparison.Ordinal));
                    bool nsp = !pipeline.Report.Missing.Any(k => k.StartsWith("cls.seq_relationship", StringComparison.Ordinal) || k.StartsWith("bert.pooler", StringComparison.Ordinal));
                    if (mlm) tasks.Add(ServeTasks.FillMask);
                    if (nsp) tasks.Add(ServeTasks.Nsp);
                    if (!mlm && !nsp)
                    {
                        pipeline.Dispose();
                        pipeline = null;
                    }
                    break;
                }
            }
        }
        catch
        {
            embedder?.Dispose();
            pipeline?.Dispose();
            task?.Dispose();
            throw;
        }
        tasks.Add(ServeTasks.Tokenize);
        return new ServedModel(spec.Name, path, dir.Config, tokenizer, arch, embedder, pipeline, task, tasks, options, metrics);
    }

    public bool Supports(string task) => Tasks.Contains(task);

    internal Task<object> Submit(string kind, object input, int size, CancellationToken cancellation) =>
        _queue.Submit(kind, input, size, cancellation);

    // ---- on the worker thread ----

    object[] Execute(string kind, IReadOnlyList<Job> jobs) => kind switch
    {
        ServeTasks.Embeddings => Embed(jobs),
        ServeTasks.Classify => Chunked(jobs, j => ((PairInput)j.Input).Texts.Count, ClassifyRows, j => Rows((PairInput)j.Input)),
        ServeTasks.Ner => Chunked(jobs, j => ((PairInput)j.Input).Texts.Count, NerRows, j => Rows((PairInput)j.Input)),
        ServeTasks.Qa => Chunked(jobs, j => ((QaInput)j.Input).Questions.Count, QaRows,
            j => { var q = (QaInput)j.Input; return q.Questions.Select((x, i) => (x, (string?)q.Contexts[i])).ToList(); }),
        ServeTasks.FillMask => jobs.Select(j => { var f = (FillMaskInput)j.Input; return (object)_pipeline!.FillMask(f.Text, f.TopK); }).ToArray(),
        ServeTasks.Nsp => jobs.Select(j => { var n = (NspInput)j.Input; return (object)_pipeline!.NextSentence(n.TextA, n.TextB); }).ToArray(),
        _ => throw new InvalidOperationException($"unknown task {kind}"),
    };

    static List<(string, string?)> Rows(PairInput p) => p.Texts.Select((t, i) => (t, p.Pairs?[i])).ToList();

    object[] Embed(IReadOnlyList<Job> jobs)
    {
        var all = jobs.SelectMany(j => (IReadOnlyList<string>)j.Input).ToList();
        var vectors = _embedder!.EmbedWithReport(all).Vectors;
        var results = new object[jobs.Count];
        int at = 0;
        for (int j = 0; j < jobs.Count; j++)
        {
            var texts = (IReadOnlyList<string>)jobs[j].Input;
            var tokens = texts.Select(t => _embedder.Encode(t, out _).Length).ToArray();
            results[j] = new EmbedOutput(vectors[at..(at + texts.Count)], tokens);
            at += texts.Count;
        }
        return results;
    }

    /// <summary>Runs every row of every job through <paramref name="run"/> in forward passes of at most max-batch rows, then hands each job its rows.</summary>
    object[] Chunked<T>(IReadOnlyList<Job> jobs, Func<Job, int> count, Func<IReadOnlyList<(string, string?)>, T[]> run,
        Func<Job, List<(string, string?)>> rows)
    {
        var all = jobs.SelectMany(rows).ToList();
        // Length buckets: rows sorted by length (characters, a proxy for tokens) so each forward pass pads little.
        var order = Enumerable.Range(0, all.Count).OrderByDescending(i => all[i].Item1.Length + (all[i].Item2?.Length ?? 0)).ToArray();
        var outputs = new T[all.Count];
        for (int s = 0; s < order.Length; s += _maxBatch)
        {
            var chunk = order[s..Math.Min(order.Length, s + _maxBatch)];
            var results = run(chunk.Select(i => all[i]).ToList());
            for (int k = 0; k < chunk.Length; k++) outputs[chunk[k]] = results[k];
        }
        var perJob = new object[jobs.Count];
        int at = 0;
        for (int j = 0; j < jobs.Count; j++)
        {
            int n = count(jobs[j]);
            perJob[j] = outputs[at..(at + n)];
            at += n;
        }
        return perJob;
    }

    BertEncoding[] EncodeRows(IReadOnlyList<(string Text, string? Pair)> rows, TruncationStrategy truncation = TruncationStrategy.LongestFirst)
    {
        var opts = new EncodeOptions { MaxLength = Config.MaxPositionEmbeddings, Truncation = truncation };
        return rows.Select(r => Tokenizer.Encode(r.Text, r.Pair, opts)).ToArray();
    }

    (Tensor Ids, Tensor Types, Tensor Mask) Padded(BertEncoding[] encs)
    {
        int b = encs.Length, len = encs.Max(e => e.Length);
        var ids = new long[b * len];
        var types = new long[b * len];
        var mask = new long[b * len];
        if (Tokenizer.PadId != 0) Array.Fill(ids, Tokenizer.PadId);
        for (int r = 0; r < b; r++)
            for (int t = 0; t < encs[r].Length; t++)
            {
                ids[r * len + t] = encs[r].InputIds[t];
                types[r * len + t] = encs[r].TokenTypeIds[t];
                mask[r * len + t] = 1;
            }
        return (tensor(ids, [b, len], device: _device), tensor(types, [b, len], device: _device), tensor(mask, [b, len], device: _device));
    }

    ClassifyResult[] ClassifyRows(IReadOnlyList<(string, string?)> rows)
    {
        var model = (BertForSequenceClassification)_task!;
        var encs = EncodeRows(rows);
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var (ids, types, mask) = Padded(encs);
        var logits = model.forward(ids, types, mask).Logits.to(ScalarType.Float32).cpu();
        var problem = model.ProblemType ?? (model.NumLabels == 1 ? "regression" : "single_label_classification");
        var scores = problem switch
        {
            "regression" => logits,
            "multi_label_classification" => logits.sigmoid(),
            _ => logits.softmax(-1),
        };
        var flat = scores.contiguous().data<float>().ToArray();
        int n = model.NumLabels;
        var labels = Labels;
        var results = new ClassifyResult[rows.Count];
        for (int r = 0; r < rows.Count; r++)
        {
            var row = Enumerable.Range(0, n).Select(k => new LabelScore(k < labels.Count ? labels[k] : $"LABEL_{k}", flat[r * n + k]))
                .OrderByDescending(s => s.Score).ToList();
            results[r] = problem == "regression"
                ? new ClassifyResult(null, row[0].Score, row)
                : new ClassifyResult(row[0].Label, row[0].Score, row);
        }
        return results;
    }

    NerResult[] NerRows(IReadOnlyList<(string, string?)> rows)
    {
        var model = (BertForTokenClassification)_task!;
        var encs = EncodeRows(rows);
        float[] probs;
        int len;
        using (var scope = NewDisposeScope())
        using (var _ = inference_mode())
        {
            var (ids, types, mask) = Padded(encs);
            var p = model.forward(ids, types, mask).Logits.to(ScalarType.Float32).softmax(-1).cpu().contiguous();
            len = (int)p.shape[1];
            probs = p.data<float>().ToArray();
        }
        int n = model.NumLabels;
        var labels = Labels;
        var results = new NerResult[rows.Count];
        for (int r = 0; r < rows.Count; r++)
        {
            var (text, _) = rows[r];
            var enc = encs[r];
            var words = new List<NerWord>();
            int lastWord = -1;
            for (int t = 0; t < enc.Length; t++)
            {
                if (enc.SequenceIds[t] != 0 || enc.WordIds[t] is not int w) continue;
                var (start, end) = enc.Offsets[t];
                if (w == lastWord)
                {
                    // later sub-tokens extend the word's span; its label is the first sub-token's (as in fine-tuning)
                    var prev = words[^1];
                    words[^1] = prev with { End = end, Word = text[prev.Start..end] };
                    continue;
                }
                lastWord = w;
                int best = 0;
                int o = (r * len + t) * n;
                for (int k = 1; k < n; k++) if (probs[o + k] > probs[o + best]) best = k;
                words.Add(new NerWord(text[start..end], best < labels.Count ? labels[best] : $"LABEL_{best}", probs[o + best], start, end));
            }
            results[r] = new NerResult(Entities(text, words), words);
        }
        return results;
    }

    /// <summary>IOB2 words → entities: B-X starts one, I-X continues an X (or starts one after another type), O ends it; labels without a prefix group runs of the same label.</summary>
    static List<NerEntity> Entities(string text, List<NerWord> words)
    {
        var entities = new List<NerEntity>();
        string? type = null;
        int start = 0, end = 0;
        var scores = new List<double>();
        void Close()
        {
            if (type is not null) entities.Add(new NerEntity(type, scores.Average(), text[start..end], start, end));
            type = null;
            scores.Clear();
        }
        foreach (var w in words)
        {
            var label = w.Label;
            if (label == "O") { Close(); continue; }
            bool begin = label.StartsWith("B-", StringComparison.Ordinal) || label.StartsWith("S-", StringComparison.Ordinal);
            var t = label.Length > 2 && label[1] == '-' ? label[2..] : label;
            if (begin || t != type) { Close(); type = t; start = w.Start; }
            end = w.End;
            scores.Add(w.Score);
        }
        Close();
        return entities;
    }

    /// <summary>Longest answer span considered, in tokens (HF's max_answer_len default).</summary>
    const int MaxAnswerTokens = 30;

    QaResult[] QaRows(IReadOnlyList<(string, string?)> rows)
    {
        var model = (BertForQuestionAnswering)_task!;
        var encs = EncodeRows(rows, TruncationStrategy.OnlySecond);
        float[] start, end;
        int len;
        using (var scope = NewDisposeScope())
        using (var _ = inference_mode())
        {
            var (ids, types, mask) = Padded(encs);
            var output = model.forward(ids, types, mask);
            var pad = mask.eq(0);
            var s = output.StartLogits.to(ScalarType.Float32).masked_fill(pad, float.NegativeInfinity).softmax(-1).cpu().contiguous();
            var e = output.EndLogits.to(ScalarType.Float32).masked_fill(pad, float.NegativeInfinity).softmax(-1).cpu().contiguous();
            len = (int)s.shape[1];
            start = s.data<float>().ToArray();
            end = e.data<float>().ToArray();
        }
        var results = new QaResult[rows.Count];
        for (int r = 0; r < rows.Count; r++)
        {
            var (question, context) = rows[r];
            var enc = encs[r];
            var ctx = Enumerable.Range(0, enc.Length).Where(t => enc.SequenceIds[t] == 1).ToArray();
            double best = -1;
            int bs = -1, be = -1;
            foreach (var s in ctx)
                foreach (var e in ctx)
                {
                    if (e < s || e - s + 1 > MaxAnswerTokens) continue;
                    double p = (double)start[r * len + s] * end[r * len + e];
                    if (p > best) (best, bs, be) = (p, s, e);
                }
            var truncated = Tokenizer.Encode(question, context).Length > enc.Length;
            if (bs < 0) { results[r] = new QaResult("", 0, 0, 0, truncated); continue; }
            int cs = enc.Offsets[bs].Start, ce = enc.Offsets[be].End;
            results[r] = new QaResult(context![cs..ce], best, cs, ce, truncated);
        }
        return results;
    }

    public void Dispose()
    {
        _queue.Dispose();
        _embedder?.Dispose();
        _pipeline?.Dispose();
        _task?.Dispose();
    }
}
