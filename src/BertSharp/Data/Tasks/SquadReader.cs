using System.Globalization;
using System.Text;
using System.Text.Json;
using BertSharp.Tokenization;

namespace BertSharp.Data.Tasks;

/// <summary>
/// SQuAD v1.1 / v2.0 JSON: <c>{"version", "data": [{"title", "paragraphs": [{"context", "qas": [{"id", "question",
/// "answers": [{"text", "answer_start"}], "is_impossible"?}]}]}]}</c>. Errors name the JSON path
/// (<c>FILE: data[3].paragraphs[0].qas[2].answers[0].answer_start: …</c>) or, for broken JSON, FILE:LINE.
/// Each answer must be found at its <c>answer_start</c> in the context.
/// </summary>
public static class SquadReader
{
    public static SquadDataset Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"data file not found: {path}", path);
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions { AllowTrailingCommas = false });
        }
        catch (JsonException e)
        {
            throw new FormatException($"{path}:{(e.LineNumber ?? 0) + 1}: invalid JSON ({JsonLines.FirstSentence(e.Message)})");
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw Error(path, "$", "expected a JSON object with \"data\"");
            string version = root.TryGetProperty("version", out var v) && v.ValueKind == JsonValueKind.String ? v.GetString()! : "";
            var data = Array(path, "data", root, "data");
            var titles = new List<string>();
            var examples = new List<SquadExample>();
            int a = 0;
            foreach (var article in data.EnumerateArray())
            {
                string ap = $"data[{a}]";
                if (article.ValueKind != JsonValueKind.Object) throw Error(path, ap, "expected an article object");
                string title = article.TryGetProperty("title", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString()! : $"article-{a}";
                titles.Add(title);
                int p = 0;
                foreach (var para in Array(path, ap + ".paragraphs", article, "paragraphs").EnumerateArray())
                {
                    string pp = $"{ap}.paragraphs[{p}]";
                    var context = Str(path, pp + ".context", para, "context");
                    int q = 0;
                    foreach (var qa in Array(path, pp + ".qas", para, "qas").EnumerateArray())
                    {
                        string qp = $"{pp}.qas[{q}]";
                        var id = qa.TryGetProperty("id", out var idv) && idv.ValueKind == JsonValueKind.String ? idv.GetString()! : throw Error(path, qp + ".id", "expected a string");
                        var question = Str(path, qp + ".question", qa, "question");
                        bool impossible = false;
                        if (qa.TryGetProperty("is_impossible", out var imp))
                            impossible = imp.ValueKind switch
                            {
                                JsonValueKind.True => true,
                                JsonValueKind.False => false,
                                _ => throw Error(path, qp + ".is_impossible", "expected true or false"),
                            };
                        var answers = new List<SquadAnswer>();
                        int k = 0;
                        foreach (var ans in Array(path, qp + ".answers", qa, "answers").EnumerateArray())
                        {
                            string kp = $"{qp}.answers[{k}]";
                            var text = Str(path, kp + ".text", ans, "text");
                            if (!ans.TryGetProperty("answer_start", out var st) || st.ValueKind != JsonValueKind.Number || !st.TryGetInt32(out var cp) || cp < 0)
                                throw Error(path, kp + ".answer_start", "expected a non-negative integer");
                            int start = CodePoints.ToUtf16(context, cp);
                            if (start + text.Length > context.Length || string.CompareOrdinal(context, start, text, 0, text.Length) != 0)
                                throw Error(path, kp, $"the answer '{Clip(text)}' is not at answer_start {cp} of the context");
                            answers.Add(new SquadAnswer(text, start));
                            k++;
                        }
                        if (!impossible && answers.Count == 0) throw Error(path, qp + ".answers", "expected at least one answer (or \"is_impossible\": true)");
                        if (impossible) answers.Clear();
                        examples.Add(new SquadExample(id, title, a, context, question, answers, impossible));
                        q++;
                    }
                    p++;
                }
                a++;
            }
            return new SquadDataset(path, version, titles, examples);
        }
    }

    static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "…";

    static FormatException Error(string path, string where, string what) => new($"{path}: {where}: {what}");

    static JsonElement Array(string path, string where, JsonElement obj, string name)
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.Array)
            throw Error(path, where, "expected an array");
        return v;
    }

    static string Str(string path, string where, JsonElement obj, string name)
    {
        if (obj.ValueKind != JsonValueKind.Object || !obj.TryGetProperty(name, out var v) || v.ValueKind != JsonValueKind.String)
            throw Error(path, where, "expected a string");
        return v.GetString()!;
    }

    /// <summary>
    /// Writes a dataset as SQuAD JSON (articles in the order of first appearance, paragraphs grouped by context),
    /// answer starts converted back to code points. Written to a temporary file, then renamed.
    /// </summary>
    public static void Write(SquadDataset dataset, string path)
    {
        var tmp = path + ".tmp";
        using (var stream = File.Create(tmp))
        using (var w = new Utf8JsonWriter(stream, new JsonWriterOptions { Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping }))
        {
            w.WriteStartObject();
            w.WriteString("version", dataset.Version.Length > 0 ? dataset.Version : dataset.HasImpossible ? "v2.0" : "1.1");
            w.WriteStartArray("data");
            foreach (var article in dataset.Examples.GroupBy(e => e.ArticleIndex))
            {
                w.WriteStartObject();
                w.WriteString("title", article.First().Title);
                w.WriteStartArray("paragraphs");
                foreach (var para in article.GroupBy(e => e.Context))
                {
                    w.WriteStartObject();
                    w.WriteString("context", para.Key);
                    w.WriteStartArray("qas");
                    foreach (var e in para)
                    {
                        w.WriteStartObject();
                        w.WriteString("id", e.Id);
                        w.WriteString("question", e.Question);
                        w.WriteStartArray("answers");
                        foreach (var ans in e.Answers)
                        {
                            w.WriteStartObject();
                            w.WriteString("text", ans.Text);
                            w.WriteNumber("answer_start", CodePoints.FromUtf16(e.Context, ans.Start));
                            w.WriteEndObject();
                        }
                        w.WriteEndArray();
                        if (dataset.HasImpossible) w.WriteBoolean("is_impossible", e.IsImpossible);
                        w.WriteEndObject();
                    }
                    w.WriteEndArray();
                    w.WriteEndObject();
                }
                w.WriteEndArray();
                w.WriteEndObject();
            }
            w.WriteEndArray();
            w.WriteEndObject();
        }
        File.Move(tmp, path, overwrite: true);
    }
}

/// <summary>A reproducible train/eval split of a SQuAD file by article (no article is in both).</summary>
public sealed record SquadSplit(SquadDataset Train, SquadDataset Eval, IReadOnlyList<string> TrainTitles, IReadOnlyList<string> EvalTitles, ulong Seed)
{
    /// <summary>
    /// Shuffles the article indices with <see cref="DataRng"/>(<paramref name="seed"/>) and puts the first
    /// round(<paramref name="evalFraction"/> · articles) (at least 1, at most articles − 1) into eval; each side keeps
    /// the file's article and question order. The same file and seed always give the same split.
    /// </summary>
    public static SquadSplit ByArticle(SquadDataset dataset, double evalFraction = 0.2, ulong seed = 42)
    {
        if (!(evalFraction > 0 && evalFraction < 1)) throw new ArgumentOutOfRangeException(nameof(evalFraction), evalFraction, "the eval fraction must be between 0 and 1");
        int n = dataset.Titles.Count;
        if (n < 2) throw new ArgumentException($"{dataset.Source}: {n} article(s); a split by article needs at least 2");
        var order = Enumerable.Range(0, n).ToArray();
        new DataRng(seed).Shuffle<int>(order.AsSpan());
        int nEval = Math.Clamp((int)Math.Round(evalFraction * n, MidpointRounding.AwayFromZero), 1, n - 1);
        var evalSet = order.Take(nEval).ToHashSet();
        SquadDataset Part(bool eval) => dataset with
        {
            Titles = Enumerable.Range(0, n).Where(i => evalSet.Contains(i) == eval).Select(i => dataset.Titles[i]).ToArray(),
            Examples = dataset.Examples.Where(e => evalSet.Contains(e.ArticleIndex) == eval).ToArray(),
        };
        var train = Part(false);
        var ev = Part(true);
        return new SquadSplit(train, ev, train.Titles, ev.Titles, seed);
    }

    /// <summary>One line per side: how many articles and questions, and the article titles.</summary>
    public string Describe() => string.Create(CultureInfo.InvariantCulture,
        $"split by article (seed {Seed}): train {TrainTitles.Count} articles / {Train.Count} questions; eval {EvalTitles.Count} articles / {Eval.Count} questions: {string.Join(", ", EvalTitles)}");
}
