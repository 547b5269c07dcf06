using System.Text.Json.Nodes;
using BertSharp.Data.Tasks;
using BertSharp.Export;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using BertSharp.Training.FineTuning;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Training.FineTuning;

/// <summary>
/// <see cref="FineTunedPredictor"/> and <c>bert predict</c> on task directories made from the tiny-random encoder
/// (randomly initialised heads, saved and re-opened), checked against a direct forward pass of the in-memory model
/// on the tokenizer's own encoding (no featurizer, no window code).
/// </summary>
public class PredictTests
{
    [Fact]
    public void Entities_follow_iob_chunking()
    {
        Assert.Equal([("PER", 0, 2), ("LOC", 3, 4)], FineTunedPredictor.Entities(["B-PER", "I-PER", "O", "B-LOC"]));
        Assert.Equal([("PER", 0, 1), ("PER", 1, 2)], FineTunedPredictor.Entities(["B-PER", "B-PER"]));
        Assert.Equal([("ORG", 1, 3), ("MISC", 3, 4)], FineTunedPredictor.Entities(["O", "I-ORG", "I-ORG", "I-MISC"])); // IOB1
        Assert.Empty(FineTunedPredictor.Entities(["O", "O"]));
        Assert.Equal([(2, 5), (8, 9)], FineTunedPredictor.Words("  abc \t d"));
    }

    static (string Dir, nn.Module Model, BertTokenizer Tok) Make(TinyTaskFiles files, string architecture, Func<BertConfig, BertConfig> configure)
    {
        var src = ModelDirectory.Open(TestAssets.Path(TestAssets.TinyRandom));
        var config = configure(src.Config);
        var model = BertTaskModels.Create(architecture, config);
        ModelUtils.InitWeights(model, config, 11);
        src.LoadWeightsInto(model);
        var tok = src.LoadTokenizer();
        var dir = files.PathOf(architecture);
        ModelDirectory.Save(model, ((IBertTaskModel)model).Describe(config), tok, dir);
        model.eval();
        return (dir, model, tok);
    }

    static (Tensor Ids, Tensor Types) Encode(BertTokenizer tok, string a, string? b, out BertEncoding enc)
    {
        enc = tok.Encode(a, b);
        return (tensor(enc.InputIds.Select(i => (long)i).ToArray()).unsqueeze(0), tensor(enc.TokenTypeIds.Select(i => (long)i).ToArray()).unsqueeze(0));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void Pair_classification_matches_a_direct_forward_pass_and_survives_save_load()
    {
        using var files = new TinyTaskFiles();
        var (dir, model, tok) = Make(files, nameof(BertForSequenceClassification), c => c.WithLabels(["no", "maybe", "yes"]));
        using var predictor = new FineTunedPredictor(dir);
        Assert.Equal(TaskKind.SequenceClassification, predictor.Kind);
        var inputs = new[] { new PredictInput("the cat sat on the mat .", "a cat is sitting ."), new PredictInput("stocks fell sharply", "markets rose") };
        var preds = predictor.Predict(inputs);
        for (int i = 0; i < inputs.Length; i++)
        {
            using var scope = NewDisposeScope();
            using var noGrad = inference_mode();
            var (ids, types) = Encode(tok, inputs[i].Text, inputs[i].TextPair, out _);
            var p = ((BertForSequenceClassification)model).forward(ids, types).Logits.softmax(-1)[0].data<float>().ToArray();
            int best = Array.IndexOf(p, p.Max());
            Assert.Equal(new[] { "no", "maybe", "yes" }[best], (string)preds[i]["label"]!);
            Assert.Equal(p[best], (double)preds[i]["score"]!, 5);
            Assert.Equal(p[0], (double)preds[i]["scores"]!["no"]!, 5);
        }
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void Tagging_gives_word_tags_from_the_first_sub_token_and_entities_with_char_spans()
    {
        using var files = new TinyTaskFiles();
        var (dir, model, tok) = Make(files, nameof(BertForTokenClassification), c => c.WithLabels(FineTuneTasks.ConllNerLabels));
        using var predictor = new FineTunedPredictor(dir);
        const string text = "John Smithfield visited Montreal yesterday with unbelievably nice friends";
        var pred = predictor.Predict([new PredictInput(text)])[0];
        var words = pred["words"]!.AsArray();
        var spans = FineTunedPredictor.Words(text);
        Assert.Equal(spans.Count, words.Count);

        using var scope = NewDisposeScope();
        using var noGrad = inference_mode();
        var (ids, types) = Encode(tok, text, null, out var enc);
        var logits = ((BertForTokenClassification)model).forward(ids, types).Logits[0];
        var tags = new List<string>();
        for (int w = 0; w < spans.Count; w++)
        {
            int t = Enumerable.Range(0, enc.Length).First(k => enc.SequenceIds[k] == 0 && enc.Offsets[k].Start == spans[w].Start);
            var row = logits[t].data<float>().ToArray();
            var tag = FineTuneTasks.ConllNerLabels[Array.IndexOf(row, row.Max())];
            tags.Add(tag);
            Assert.Equal(tag, (string)words[w]!["tag"]!);
            Assert.Equal(text[spans[w].Start..spans[w].End], (string)words[w]!["word"]!);
        }
        var expected = FineTunedPredictor.Entities(tags);
        var ents = pred["entities"]!.AsArray();
        Assert.Equal(expected.Count, ents.Count);
        for (int i = 0; i < ents.Count; i++)
        {
            Assert.Equal(expected[i].Type, (string)ents[i]!["entity"]!);
            Assert.Equal(text[spans[expected[i].Start].Start..spans[expected[i].End - 1].End], (string)ents[i]!["text"]!);
        }
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void Qa_answer_is_the_best_scoring_span_of_the_context()
    {
        using var files = new TinyTaskFiles();
        var (dir, model, tok) = Make(files, nameof(BertForQuestionAnswering), c => c);
        using var predictor = new FineTunedPredictor(dir);
        const string q = "who wrote the book ?", ctx = "the book was written by alice in the spring of that year .";
        var pred = predictor.Predict([new PredictInput(q, ctx)])[0];

        using var scope = NewDisposeScope();
        using var noGrad = inference_mode();
        var (ids, types) = Encode(tok, q, ctx, out var enc);
        var o = ((BertForQuestionAnswering)model).forward(ids, types);
        var s = o.StartLogits[0].data<float>().ToArray();
        var e = o.EndLogits[0].data<float>().ToArray();
        double best = double.NegativeInfinity;
        (int, int) span = default;
        for (int i = 0; i < enc.Length; i++)
            for (int j = i; j < enc.Length && j - i + 1 <= 30; j++)
                if (enc.SequenceIds[i] == 1 && enc.SequenceIds[j] == 1 && s[i] + e[j] > best) { best = s[i] + e[j]; span = (enc.Offsets[i].Start, enc.Offsets[j].End); }
        Assert.Equal(ctx[span.Item1..span.Item2], (string)pred["answer"]!);
        Assert.Equal(span.Item1, (int)pred["start"]!);
    }

    static void AssertSameJson(JsonNode? a, JsonNode? b, double tol, string path = "$")
    {
        switch (a)
        {
            case JsonObject o:
                var ob = Assert.IsType<JsonObject>(b);
                Assert.Equal(o.Select(kv => kv.Key).Order(), ob.Select(kv => kv.Key).Order());
                foreach (var (k, v) in o) AssertSameJson(v, ob[k], tol, path + "." + k);
                break;
            case JsonArray arr:
                var ab = Assert.IsType<JsonArray>(b);
                Assert.Equal(arr.Count, ab.Count);
                for (int i = 0; i < arr.Count; i++) AssertSameJson(arr[i], ab[i], tol, $"{path}[{i}]");
                break;
            case JsonValue v when v.GetValueKind() == System.Text.Json.JsonValueKind.Number:
                double x = double.Parse(v.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);
                double y = double.Parse(b!.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);
                Assert.True(Math.Abs(x - y) <= tol, $"{path}: torch {x}, onnx {y}");
                break;
            default:
                Assert.Equal(a?.ToJsonString(), b?.ToJsonString());
                break;
        }
    }

    /// <summary>The ONNX engine (the task graph exported into a temporary cache) gives the torch engine's predictions:
    /// same labels, tags, entities and answers, scores within 1e-5; auto picks onnx; int8 runs the quantized export.</summary>
    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData(nameof(BertForSequenceClassification))]
    [InlineData("regression")]
    [InlineData(nameof(BertForTokenClassification))]
    [InlineData(nameof(BertForQuestionAnswering))]
    public void Onnx_engine_predicts_what_the_torch_engine_predicts(string kind)
    {
        using var files = new TinyTaskFiles();
        var arch = kind == "regression" ? nameof(BertForSequenceClassification) : kind;
        var (dir, _, _) = Make(files, arch, c => kind switch
        {
            "regression" => c.WithLabels(["score"]) with { ProblemType = "regression" },
            nameof(BertForSequenceClassification) => c.WithLabels(["no", "maybe", "yes"]),
            nameof(BertForTokenClassification) => c.WithLabels(FineTuneTasks.ConllNerLabels),
            _ => c,
        });
        PredictInput[] inputs = arch == nameof(BertForQuestionAnswering)
            ? [new("who wrote the book ?", "the book was written by alice in the spring of that year ."), new("when ?", "in the spring of 1999 , long ago")]
            : [new("John Smithfield visited Montreal yesterday", kind == nameof(BertForTokenClassification) ? null : "with friends"),
               new("stocks fell sharply in unbelievably nervous trading"), new("a")];
        using var torchPredictor = new FineTunedPredictor(dir);
        using var onnxPredictor = new FineTunedPredictor(dir, engine: InferenceEngine.Onnx);
        using var autoPredictor = new FineTunedPredictor(dir, engine: InferenceEngine.Auto);
        Assert.Equal(InferenceEngine.Torch, torchPredictor.Engine);
        Assert.Equal(InferenceEngine.Onnx, onnxPredictor.Engine);
        Assert.Equal(InferenceEngine.Onnx, autoPredictor.Engine);
        var expected = torchPredictor.Predict(inputs);
        var actual = onnxPredictor.Predict(inputs);
        for (int i = 0; i < inputs.Length; i++) AssertSameJson(expected[i], actual[i], 1e-5);

        using var int8 = new FineTunedPredictor(dir, engine: InferenceEngine.Auto, quantize: OnnxQuantization.Int8Dynamic);
        Assert.Equal(InferenceEngine.Onnx, int8.Engine);
        Assert.Equal(inputs.Length, int8.Predict(inputs).Count);
        Assert.Throws<ArgumentException>(() => new FineTunedPredictor(dir, engine: InferenceEngine.Torch, quantize: OnnxQuantization.Int8Dynamic));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void Cli_reads_files_writes_json_lines_and_rejects_bad_input()
    {
        using var files = new TinyTaskFiles();
        var (dir, _, _) = Make(files, nameof(BertForSequenceClassification), c => c.WithLabels(["negative", "positive"]));
        var jsonl = files.PathOf("in.jsonl");
        File.WriteAllLines(jsonl, ["{\"text\": \"a fine film\"}", "", "{\"text\": \"a dull film\", \"text_pair\": \"boring\"}"]);
        var outFile = files.PathOf("out.jsonl");
        var (code, _, err) = Cli.CliHarness.Run(["predict", "--model", dir, "--input", jsonl, "--json", "--output", outFile]);
        Assert.True(code == 0, err);
        var lines = File.ReadAllLines(outFile).Select(l => JsonNode.Parse(l)!).ToArray();
        Assert.Equal([1, 3], lines.Select(l => (int)l["line"]!));
        Assert.All(lines, l => Assert.Contains((string)l["label"]!, new[] { "negative", "positive" }));

        // The same inputs from a TSV and a single --text agree with the JSONL run.
        var tsv = files.PathOf("in.tsv");
        File.WriteAllLines(tsv, ["text\ttext_pair", "a dull film\tboring"]);
        (code, var text, err) = Cli.CliHarness.Run(["predict", "--model", dir, "--input", tsv]);
        Assert.True(code == 0, err);
        Assert.Equal($"{(string)lines[1]["label"]!}\t{(double)lines[1]["score"]!:0.0000}", text.Trim());

        File.WriteAllLines(jsonl, ["{\"text\": 3}"]);
        (code, _, err) = Cli.CliHarness.Run(["predict", "--model", dir, "--input", jsonl]);
        Assert.Equal(2, code);
        Assert.Contains("in.jsonl:1/text: expected a string", err);
        // Delimited inputs: a row with more fields than the header, a header without the text column.
        File.WriteAllLines(tsv, ["text\ttext_pair", "a dull film\tboring\textra"]);
        (code, _, err) = Cli.CliHarness.Run(["predict", "--model", dir, "--input", tsv]);
        Assert.Equal(2, code);
        Assert.Contains("in.tsv:2: expected 2 fields as in the header (line 1), found 3", err);
        File.WriteAllLines(tsv, ["sentence", "a dull film"]);
        (code, _, err) = Cli.CliHarness.Run(["predict", "--model", dir, "--input", tsv]);
        Assert.Equal(2, code);
        Assert.Contains("in.tsv:1: the header has no column 'text'", err);
        (code, _, err) = Cli.CliHarness.Run(["predict", "--model", dir, "--question", "q", "--context", "c"]);
        Assert.Equal(2, code);
        Assert.Contains("question-answering model", err);
        (code, _, err) = Cli.CliHarness.Run(["predict", "--model", TestAssets.Path(TestAssets.TinyRandom), "--text", "x"]);
        Assert.Equal(2, code);
        Assert.Contains("not a fine-tuned task model", err);
    }
}
