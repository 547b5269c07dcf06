using System.Text;
using System.Text.Json;
using BertSharp.Inference;
using BertSharp.Tests.Cli;
using Xunit;

namespace BertSharp.Tests.Inference;

public class ClassifyDemoTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("bertsharp-classify-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    [Fact]
    public void ReportEqualsHandComputedValuesInScikitLearnsLayout()
    {
        // true a a a b b c / predicted a a b b c c
        //   a: TP 2, predicted 2, support 3 → P 1, R 2/3, F1 0.8
        //   b: TP 1, predicted 2, support 2 → P 1/2, R 1/2, F1 1/2
        //   c: TP 1, predicted 2, support 1 → P 1/2, R 1, F1 2/3
        //   accuracy 4/6; macro P 2/3, R 13/18, F1 59/90; weighted P 0.75, R 2/3, F1 (2.4 + 1 + 2/3)/6
        var r = new ClassificationReport(["a", "a", "a", "b", "b", "c"], ["a", "a", "b", "b", "c", "c"]);
        Assert.Equal(["a", "b", "c"], r.Labels);
        double[] p = [1, 0.5, 0.5], rc = [2.0 / 3, 0.5, 1], f = [0.8, 0.5, 2.0 / 3];
        for (int i = 0; i < 3; i++)
        {
            Assert.Equal(p[i], r.Classes[i].Precision, 12);
            Assert.Equal(rc[i], r.Classes[i].Recall, 12);
            Assert.Equal(f[i], r.Classes[i].F1, 12);
        }
        Assert.Equal([3, 2, 1], r.Classes.Select(c => c.Support));
        Assert.Equal(4.0 / 6, r.Accuracy, 12);
        Assert.Equal(2.0 / 3, r.MacroAvg.Precision, 12);
        Assert.Equal(13.0 / 18, r.MacroAvg.Recall, 12);
        Assert.Equal(59.0 / 90, r.MacroAvg.F1, 12);
        Assert.Equal(0.75, r.WeightedAvg.Precision, 12);
        Assert.Equal(2.0 / 3, r.WeightedAvg.Recall, 12);
        Assert.Equal((2.4 + 1 + 2.0 / 3) / 6, r.WeightedAvg.F1, 12);
        Assert.Equal([[2, 1, 0], [0, 1, 1], [0, 0, 1]], r.Confusion);
        const string expected =
            "              precision    recall  f1-score   support\n" +
            "\n" +
            "           a       1.00      0.67      0.80         3\n" +
            "           b       0.50      0.50      0.50         2\n" +
            "           c       0.50      1.00      0.67         1\n" +
            "\n" +
            "    accuracy                           0.67         6\n" +
            "   macro avg       0.67      0.72      0.66         6\n" +
            "weighted avg       0.75      0.67      0.68         6\n";
        Assert.Equal(expected, r.Format());
        Assert.Equal("true\\pred  a  b  c\na          2  1  0\nb          0  1  1\nc          0  0  1\n", r.FormatConfusion());
    }

    [Fact]
    public void ZeroDivisionGivesZeroAndNumericLabelsSortNumerically()
    {
        // label 10 is predicted but never true: P 0 (0/1), R 0 (support 0), F1 0; label 2 never predicted: P 0 (0/0).
        var r = new ClassificationReport(["9", "9", "2"], ["9", "10", "9"]);
        Assert.Equal(["2", "9", "10"], r.Labels);
        Assert.Equal((0.0, 0.0, 0.0, 1), (r.Classes[0].Precision, r.Classes[0].Recall, r.Classes[0].F1, r.Classes[0].Support));
        Assert.Equal((0.5, 0.5, 0.5, 2), (r.Classes[1].Precision, r.Classes[1].Recall, r.Classes[1].F1, r.Classes[1].Support));
        Assert.Equal((0.0, 0.0, 0.0, 0), (r.Classes[2].Precision, r.Classes[2].Recall, r.Classes[2].F1, r.Classes[2].Support));
        Assert.Equal(1.0 / 3, r.Accuracy, 12);
        Assert.Equal(0.5 / 3, r.MacroAvg.F1, 12);
        Assert.Equal(1.0 / 3, r.WeightedAvg.F1, 12);
    }

    [Fact]
    public void SplitIsSeededAndDisjoint()
    {
        var data = Enumerable.Range(0, 100).Select(i => new LabelledText($"t{i}", (i % 2).ToString())).ToList();
        var (train, test) = ClassifyDemo.Split(data, 50, 0.2, seed: 3);
        Assert.Equal(40, train.Count);
        Assert.Equal(10, test.Count);
        Assert.Empty(train.Select(t => t.Text).Intersect(test.Select(t => t.Text)));
        var again = ClassifyDemo.Split(data, 50, 0.2, seed: 3);
        Assert.Equal(train, again.Train);
        Assert.NotEqual(test, ClassifyDemo.Split(data, 50, 0.2, seed: 4).Test);
        Assert.Throws<ArgumentException>(() => ClassifyDemo.Split(data, 50, 1.5, 3));
    }

    [Theory]
    [InlineData(DemoClassifier.Logistic)]
    [InlineData(DemoClassifier.Sdca)]
    [InlineData(DemoClassifier.FastTree)]
    [InlineData(DemoClassifier.LightGbm)]
    public void TrainersSeparateSeparableClusters(DemoClassifier classifier)
    {
        // three well-separated Gaussian clusters in 6 dimensions: every trainer must get (nearly) all test points right
        var rng = new Random(5);
        (float[] X, string Y) Point(int c) => (Enumerable.Range(0, 6).Select(j => (float)((j == c ? 4 : 0) + rng.NextDouble() - 0.5)).ToArray(), $"class{c}");
        var train = Enumerable.Range(0, 150).Select(i => Point(i % 3)).ToArray();
        var test = Enumerable.Range(0, 60).Select(i => Point(i % 3)).ToArray();
        var r = ClassifyDemo.RunEmbeddings(train.Select(t => t.X).ToArray(), train.Select(t => t.Y).ToList(),
            test.Select(t => t.X).ToArray(), test.Select(t => t.Y).ToList(), classifier, seed: 1, featureSeconds: 0);
        Assert.True(r.Report.Accuracy >= 0.95, $"{classifier}: accuracy {r.Report.Accuracy}");
        Assert.Equal(["class0", "class1", "class2"], r.Report.Labels);
        Assert.Equal(60, r.Report.Confusion.Sum(row => row.Sum()));
    }

    [Fact]
    public void TfIdfBaselineLearnsKeywords()
    {
        string[] pos = ["great", "wonderful", "excellent"], neg = ["awful", "terrible", "boring"];
        var rng = new Random(2);
        LabelledText Make(int i) => i % 2 == 0
            ? new($"the film was {pos[rng.Next(3)]} and the cast {pos[rng.Next(3)]}", "pos")
            : new($"the film was {neg[rng.Next(3)]} and the cast {neg[rng.Next(3)]}", "neg");
        var train = Enumerable.Range(0, 60).Select(Make).ToList();
        var test = Enumerable.Range(0, 20).Select(Make).ToList();
        var r = ClassifyDemo.RunTfIdf(train, test, seed: 1);
        Assert.Equal(1.0, r.Report.Accuracy);
        Assert.Equal(["neg", "pos"], r.Report.Labels);
    }

    string Data(string name, string content)
    {
        var p = Path.Combine(_dir, name);
        File.WriteAllText(p, content, new UTF8Encoding(false));
        return p;
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void CommandPrintsReportsForEmbeddingsAndBaseline()
    {
        var lines = Enumerable.Range(0, 30).Select(i => JsonSerializer.Serialize(new { text = i % 2 == 0 ? $"a great film number {i}" : $"an awful film number {i}", label = i % 2 }));
        var data = Data("d.jsonl", string.Join("\n", lines) + "\n");
        var model = TestAssets.Path(TestAssets.TinyRandom);
        var (exit, stdout, stderr) = CliHarness.Run("classify-demo", "--model", model, "--data", data, "--n", "30", "--test-ratio", "0.3", "--baseline", "tfidf", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal(21, doc.RootElement.GetProperty("train").GetInt32());
        Assert.Equal(9, doc.RootElement.GetProperty("test").GetInt32());
        var results = doc.RootElement.GetProperty("results");
        Assert.Equal(2, results.GetArrayLength());
        foreach (var r in results.EnumerateArray())
        {
            Assert.Equal(9, r.GetProperty("classes").EnumerateArray().Sum(c => c.GetProperty("support").GetInt32()));
            Assert.Equal(9, r.GetProperty("confusion").GetProperty("matrix").EnumerateArray().Sum(row => row.EnumerateArray().Sum(v => v.GetInt32())));
            var acc = r.GetProperty("accuracy").GetDouble();
            var diag = r.GetProperty("confusion").GetProperty("matrix").EnumerateArray().Select((row, i) => row[i].GetInt32()).Sum();
            Assert.Equal(diag / 9.0, acc, 12);
        }
        Assert.Equal("tfidf", results[1].GetProperty("features").GetString());
        Assert.Equal("logistic", results[1].GetProperty("classifier").GetString());

        (exit, stdout, stderr) = CliHarness.Run("classify-demo", "--model", model, "--train", data, "--test", data, "--n", "10");
        Assert.True(exit == 0, stderr);
        Assert.Contains("precision    recall  f1-score   support", stdout);
        Assert.Contains("weighted avg", stdout);
        Assert.Contains("confusion matrix", stdout);
        Assert.Contains("0 of 40 texts were longer than", stderr);

        // Long texts: cut and counted, or windowed with --stride.
        (exit, _, stderr) = CliHarness.Run("classify-demo", "--model", model, "--train", data, "--test", data, "--n", "10", "--max-length", "5");
        Assert.True(exit == 0, stderr);
        Assert.Contains("40 of 40 texts were longer than 5 tokens and were cut (--stride windows them instead)", stderr);
        (exit, _, stderr) = CliHarness.Run("classify-demo", "--model", model, "--train", data, "--test", data, "--n", "10", "--max-length", "5", "--stride", "1", "--engine", "torch");
        Assert.True(exit == 0, stderr);
        Assert.Contains("engine torch; 40 of 40 texts were longer than 5 tokens and were split into", stderr);
        (exit, _, stderr) = CliHarness.Run("classify-demo", "--model", model, "--train", data, "--test", data, "--stride", "1");
        Assert.Equal(2, exit);
        Assert.Contains("--stride needs --max-length", stderr);
    }

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData("bad.jsonl", "{\"text\":\"a\",\"label\":1}\n{\"text\":\"b\"}\n", "bad.jsonl:2: the object has no label field \"label\"")]
    [InlineData("bad.csv", "text,label\na,1\nb,\n", "bad.csv:3: empty label")]
    [InlineData("one.jsonl", "{\"text\":\"a\",\"label\":1}\n{\"text\":\"b\",\"label\":1}\n{\"text\":\"c\",\"label\":1}\n", "only one label")]
    [InlineData("both", "", "give --data FILE, or --train FILE and --test FILE")]
    public void BadDataIsOneLineExitTwo(string name, string content, string expected)
    {
        var args = new List<string> { "classify-demo", "--model", TestAssets.Path(TestAssets.TinyRandom) };
        if (name == "both") args.AddRange(["--data", Data("x.jsonl", "{}"), "--train", Data("y.jsonl", "{}")]);
        else args.AddRange(["--data", Data(name, content), "--n", "3", "--test-ratio", "0.34"]);
        var (exit, stdout, stderr) = CliHarness.Run([.. args]);
        Assert.Equal(2, exit);
        Assert.StartsWith("bert: error: ", stderr);
        Assert.Contains(expected, stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Equal("", stdout);
    }
}
