using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Data.Tasks;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training.FineTuning;

/// <summary>One input of <c>bert predict</c>: a text (and optional second text), or a question and its context.</summary>
/// <param name="Line">Line of the input file (0 for a command-line input), for error messages and output.</param>
public sealed record PredictInput(string Text, string? TextPair = null, int Line = 0);

/// <summary>
/// A fine-tuned model directory (config.json <c>architectures</c> = the task class, id2label) used for prediction:
/// label and class probabilities (sequence classification, pairs), the value (regression, <c>problem_type</c>
/// regression or one label), word-level tags and entities with scores (token classification), or the answer span
/// (question answering; <see cref="PredictInput.Text"/> = question, <see cref="PredictInput.TextPair"/> = context).
/// Results are JSON objects; <see cref="Format"/> gives the one-line text form.
/// </summary>
public sealed class FineTunedPredictor : IDisposable
{
    readonly TaskModelRunner _model;
    readonly BertTokenizer _tokenizer;
    readonly int _maxLength, _batchSize;
    readonly int? _stride;

    /// <param name="stride">text classification/regression: split inputs longer than <paramref name="maxLength"/> into
    /// windows overlapping by this many tokens and average their logits (null: truncate)</param>
    /// <param name="engine">TorchSharp, or ONNX Runtime on the cached task export (<see cref="TaskModelRunner.Open"/>)</param>
    /// <param name="quantize">int8: the dynamically quantized export (ONNX engine)</param>
    public FineTunedPredictor(string modelDir, int maxLength = 128, int batchSize = 32, int? stride = null,
        InferenceEngine engine = InferenceEngine.Torch, Export.OnnxQuantization quantize = Export.OnnxQuantization.None)
    {
        var dir = ModelDirectory.Open(modelDir);
        Architecture = dir.Config.Architectures is [var a, ..] ? a
            : throw new ArgumentException($"{dir.ConfigPath}: no 'architectures' entry; expected a fine-tuned task model (bert finetune writes OUTPUT/best)");
        Kind = Architecture switch
        {
            nameof(BertForSequenceClassification) => dir.Config.ProblemType == "regression" || dir.Config.NumLabels == 1 ? TaskKind.Regression : TaskKind.SequenceClassification,
            nameof(BertForTokenClassification) => TaskKind.TokenClassification,
            nameof(BertForQuestionAnswering) => TaskKind.QuestionAnswering,
            _ => throw new ArgumentException($"{dir.ConfigPath}: '{Architecture}' is not a fine-tuned task model (expected BertForSequenceClassification, BertForTokenClassification or BertForQuestionAnswering)"),
        };
        if (stride is { } s)
        {
            if (Kind is not (TaskKind.SequenceClassification or TaskKind.Regression))
                throw new ArgumentException($"--stride is for text classification and regression models; this one is a {Architecture} (it windows long inputs itself)");
            if (s < 0 || s >= maxLength - 2) throw new ArgumentException($"--stride must be at least 0 and below --max-length − 2 = {maxLength - 2} (got {s})");
        }
        _stride = stride;
        _maxLength = maxLength;
        _batchSize = batchSize;
        _tokenizer = dir.LoadTokenizer();
        Labels = dir.Config.Labels;
        _model = TaskModelRunner.Open(dir, Architecture, engine, quantize);
    }

    /// <summary>The engine the forward passes run on.</summary>
    public InferenceEngine Engine => _model.Engine;

    public string Architecture { get; }
    public TaskKind Kind { get; }
    public IReadOnlyList<string> Labels { get; }
    /// <summary>Text models: how the inputs of the last <see cref="Predict"/> fitted max_length (cut or windowed).</summary>
    public TextWindowReport? LastReport { get; private set; }

    /// <summary>Predictions for <paramref name="inputs"/>, in order.</summary>
    public List<JsonObject> Predict(IReadOnlyList<PredictInput> inputs)
    {
        if (inputs.Count == 0) return [];
        return Kind switch
        {
            TaskKind.SequenceClassification or TaskKind.Regression => PredictText(inputs),
            TaskKind.TokenClassification => PredictTokens(inputs),
            _ => PredictQa(inputs),
        };
    }

    List<JsonObject> PredictText(IReadOnlyList<PredictInput> inputs)
    {
        var examples = inputs.Select((x, i) => new TextExample(i.ToString(CultureInfo.InvariantCulture), x.Text, x.TextPair, null, null, x.Line)).ToArray();
        var feats = TextFeaturizer.Featurize(_tokenizer, examples,
            new TextFeatureOptions { MaxLength = _maxLength, Windows = _stride is not null, Stride = _stride ?? 0 }, out var report);
        LastReport = report;
        var (logits, _) = _model.Predict(feats, _tokenizer.PadId, Kind, _batchSize);
        var byExample = WindowAggregation.MeanByExample(feats, logits.Select(l => l[0]).ToArray(), examples.Length);
        var result = new List<JsonObject>(inputs.Count);
        foreach (var l in byExample)
        {
            if (Kind == TaskKind.Regression) { result.Add(new JsonObject { ["score"] = l[0] }); continue; }
            var p = Softmax(l);
            int best = WindowAggregation.ArgMax(l);
            var scores = new JsonObject();
            for (int c = 0; c < p.Length; c++) scores[Labels[c]] = p[c];
            result.Add(new JsonObject { ["label"] = Labels[best], ["score"] = p[best], ["scores"] = scores });
        }
        return result;
    }

    List<JsonObject> PredictTokens(IReadOnlyList<PredictInput> inputs)
    {
        var spans = inputs.Select(x => Words(x.Text)).ToArray();
        var examples = inputs.Select((x, i) => new TokenExample(i.ToString(CultureInfo.InvariantCulture), spans[i].Select(s => x.Text[s.Start..s.End]).ToArray(), null, x.Line)).ToArray();
        var feats = TokenFeaturizer.Featurize(_tokenizer, examples, null, new TokenFeatureOptions { MaxLength = _maxLength });
        var (logits, _) = _model.Predict(feats, _tokenizer.PadId, Kind, _batchSize);
        var words = TokenFeaturizer.WordLogits(feats, logits, examples.Select(e => e.Words.Length).ToArray());
        bool iob = Labels.Any(l => l.StartsWith("B-", StringComparison.Ordinal) || l.StartsWith("I-", StringComparison.Ordinal));
        var result = new List<JsonObject>(inputs.Count);
        for (int e = 0; e < examples.Length; e++)
        {
            var tags = new string[examples[e].Words.Length];
            var probs = new double[tags.Length];
            var wordArray = new JsonArray();
            for (int w = 0; w < tags.Length; w++)
            {
                var l = words[e][w];
                if (l is null) { tags[w] = Labels[0]; probs[w] = double.NaN; }
                else
                {
                    var p = Softmax(l);
                    int k = WindowAggregation.ArgMax(l);
                    tags[w] = Labels[k];
                    probs[w] = p[k];
                }
                wordArray.Add(new JsonObject
                {
                    ["word"] = examples[e].Words[w], ["tag"] = tags[w], ["score"] = double.IsNaN(probs[w]) ? null : probs[w],
                    ["start"] = spans[e][w].Start, ["end"] = spans[e][w].End,
                });
            }
            var o = new JsonObject { ["words"] = wordArray };
            if (iob)
            {
                var entities = new JsonArray();
                foreach (var (type, a, b) in Entities(tags))
                {
                    var ps = probs[a..b].Where(double.IsFinite).ToArray();
                    entities.Add(new JsonObject
                    {
                        ["entity"] = type, ["text"] = inputs[e].Text[spans[e][a].Start..spans[e][b - 1].End],
                        ["start"] = spans[e][a].Start, ["end"] = spans[e][b - 1].End, ["first_word"] = a, ["words"] = b - a,
                        ["score"] = ps.Length == 0 ? null : ps.Average(),
                    });
                }
                o["entities"] = entities;
            }
            result.Add(o);
        }
        return result;
    }

    List<JsonObject> PredictQa(IReadOnlyList<PredictInput> inputs)
    {
        var examples = new List<SquadExample>(inputs.Count);
        for (int i = 0; i < inputs.Count; i++)
        {
            var x = inputs[i];
            if (x.TextPair is null) throw new ArgumentException($"input {(x.Line > 0 ? $"line {x.Line}" : (i + 1).ToString(CultureInfo.InvariantCulture))}: a question-answering model needs a question and a context");
            examples.Add(new SquadExample(i.ToString(CultureInfo.InvariantCulture), "", 0, x.TextPair, x.Text, [], false));
        }
        var opt = new SquadFeatureOptions { MaxLength = _maxLength, DocStride = _maxLength / 3 };
        var feats = SquadFeaturizer.Featurize(_tokenizer, examples, opt);
        var (starts, ends) = _model.Predict(feats, _tokenizer.PadId, TaskKind.QuestionAnswering, _batchSize);
        var preds = SquadPostProcessor.Predict(examples, feats, starts.Select(s => s[0]).ToList(), ends!, new SquadPostProcessOptions());
        return preds.Select(p => new JsonObject { ["answer"] = p.Text, ["start"] = p.Start, ["end"] = p.End, ["score"] = p.Probability }).ToList();
    }

    /// <summary>Whitespace-separated words of <paramref name="text"/> as UTF-16 [start, end) spans.</summary>
    public static List<(int Start, int End)> Words(string text)
    {
        var list = new List<(int, int)>();
        int i = 0;
        while (i < text.Length)
        {
            while (i < text.Length && char.IsWhiteSpace(text[i])) i++;
            int s = i;
            while (i < text.Length && !char.IsWhiteSpace(text[i])) i++;
            if (i > s) list.Add((s, i));
        }
        return list;
    }

    /// <summary>
    /// Entity chunks of a tag sequence as (type, first word, end word exclusive): B-X starts a chunk, I-X continues
    /// a chunk of type X and otherwise starts one (IOB1 and seqeval's lenient reading of IOB2), anything else ends it.
    /// </summary>
    public static List<(string Type, int Start, int End)> Entities(IReadOnlyList<string> tags)
    {
        var list = new List<(string, int, int)>();
        string? type = null;
        int start = 0;
        for (int i = 0; i <= tags.Count; i++)
        {
            var t = i < tags.Count ? tags[i] : "O";
            bool b = t.StartsWith("B-", StringComparison.Ordinal), inside = t.StartsWith("I-", StringComparison.Ordinal);
            var tt = b || inside ? t[2..] : null;
            if (type is not null && (b || tt != type))
            {
                list.Add((type, start, i));
                type = null;
            }
            if (tt is not null && type is null) { type = tt; start = i; }
        }
        return list;
    }

    static double[] Softmax(float[] l)
    {
        double m = l.Max();
        var e = l.Select(v => Math.Exp(v - m)).ToArray();
        double s = e.Sum();
        return e.Select(v => v / s).ToArray();
    }

    /// <summary>The one-line text form of a prediction: "label TAB score", the value, "word/TAG …" (plus entities), or "answer TAB score".</summary>
    public string Format(JsonObject p)
    {
        var inv = CultureInfo.InvariantCulture;
        string F(JsonNode? n) => n is null ? "-" : ((double)n).ToString("0.0000", inv);
        switch (Kind)
        {
            case TaskKind.SequenceClassification: return $"{(string)p["label"]!}\t{F(p["score"])}";
            case TaskKind.Regression: return F(p["score"]);
            case TaskKind.TokenClassification:
            {
                var words = string.Join(' ', p["words"]!.AsArray().Select(w => $"{(string)w!["word"]!}/{(string)w["tag"]!}"));
                if (p["entities"] is not JsonArray ents) return words;
                return words + "\t" + string.Join("; ", ents.Select(x => $"{(string)x!["entity"]!}: {(string)x["text"]!} ({F(x["score"])})"));
            }
            default: return $"{(string)p["answer"]!}\t{F(p["score"])}";
        }
    }

    /// <summary>
    /// Inputs from a file by extension: <c>.txt</c> one input per non-blank line (TAB separates the second text or,
    /// for QA, question TAB context); <c>.jsonl</c> objects with <c>text</c> [<c>text_pair</c>] or <c>question</c> and
    /// <c>context</c>; <c>.tsv</c>/<c>.csv</c> a header naming the same columns. Errors name FILE:LINE.
    /// </summary>
    public static List<PredictInput> ReadInputs(string path, TaskKind kind)
    {
        bool qa = kind == TaskKind.QuestionAnswering, tokens = kind == TaskKind.TokenClassification;
        string first = qa ? "question" : "text", second = qa ? "context" : "text_pair";
        var ext = Path.GetExtension(path).ToLowerInvariant();
        var list = new List<PredictInput>();
        switch (ext)
        {
            case ".txt":
                foreach (var (n, text) in DelimitedText.Lines(path))
                {
                    if (string.IsNullOrWhiteSpace(text)) continue;
                    int tab = tokens ? -1 : text.IndexOf('\t');
                    if (qa && tab < 0) throw new FormatException($"{path}:{n}: expected question<TAB>context");
                    list.Add(tab < 0 ? new PredictInput(text, null, n) : new PredictInput(text[..tab], text[(tab + 1)..], n));
                }
                break;
            case ".jsonl" or ".ndjson" or ".json":
                foreach (var (n, obj) in JsonLines.Read(path))
                {
                    var a = JsonLines.String(path, n, obj, first);
                    string? b = qa ? JsonLines.String(path, n, obj, second)
                        : !tokens && obj.TryGetProperty(second, out var v) && v.ValueKind != JsonValueKind.Null ? JsonLines.String(path, n, obj, second) : null;
                    list.Add(new PredictInput(a, b, n));
                }
                break;
            case ".tsv" or ".tab" or ".csv":
            {
                var rows = ext == ".csv" ? DelimitedText.ReadCsv(path) : DelimitedText.ReadCsv(path, '\t');
                int ia = -1, ib = -1;
                foreach (var r in DelimitedText.RowsWithHeader(path, rows, $"'{first}'", header =>
                         {
                             ia = DelimitedText.Column(path, header, first);
                             ib = qa ? DelimitedText.Column(path, header, second) : tokens ? -1 : Array.IndexOf(header.Fields, second);
                         }))
                    list.Add(new PredictInput(r.Fields[ia], ib < 0 ? null : r.Fields[ib], r.Line));
                break;
            }
            default:
                throw new FormatException($"{path}: unknown input extension '{ext}' (expected .txt, .jsonl, .tsv or .csv)");
        }
        if (list.Count == 0) throw new FormatException($"{path}: no inputs");
        return list;
    }

    public void Dispose() => _model.Dispose();
}
