using System.Text;
using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Tests.Cli;
using BertSharp.Tests.Golden;
using Xunit;

namespace BertSharp.Tests.Inference;

/// <summary>Streaming inputs/outputs, earlier layers and windows of <c>bert embed</c>.</summary>
public class EmbedAtScaleTests(Xunit.Abstractions.ITestOutputHelper log) : IDisposable
{
    static string Model => TestAssets.Path(TestAssets.TinyRandom);
    readonly string _dir = Directory.CreateTempSubdirectory("bertsharp-embedscale-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    string File_(string name, string text)
    {
        var p = Path.Combine(_dir, name);
        File.WriteAllText(p, text, new UTF8Encoding(false));
        return p;
    }

    // ---- readers ----

    [Fact]
    public void CsvReaderHandlesQuotesDoubledQuotesEmbeddedNewlinesAndCrlf()
    {
        var p = File_("in.csv", "id,text,label\r\n1,plain,a\r\n2,\"with, comma\",b\r\n3,\"say \"\"hi\"\"\",a\r\n4,\"two\r\nlines\",b\r\n\r\n5,,a\r\n");
        var rows = TextInputs.ReadRows(p, "text", "label").ToList();
        Assert.Equal(["plain", "with, comma", "say \"hi\"", "two\nlines", ""], rows.Select(r => r.Text));
        Assert.Equal(["a", "b", "a", "b", "a"], rows.Select(r => r.Label));
        Assert.Equal([2L, 3, 4, 5, 8], rows.Select(r => r.Line));
        Assert.Equal(5, TextInputs.Count(p, column: "text"));
    }

    [Fact]
    public void JsonlAndTsvReaders()
    {
        var j = File_("in.jsonl", "{\"text\":\"first\",\"label\":1}\n\n{\"label\":\"neg\",\"text\":\"sec\\nond\"}\n");
        var rows = TextInputs.ReadRows(j, "text", "label").ToList();
        Assert.Equal(["first", "sec\nond"], rows.Select(r => r.Text));
        Assert.Equal(["1", "neg"], rows.Select(r => r.Label));
        Assert.Equal([1L, 3], rows.Select(r => r.Line));
        var t = File_("in.tsv", "sentence\tlabel\n\"quoted\" as is\t1\nplain\t0\n");
        Assert.Equal(["\"quoted\" as is", "plain"], TextInputs.Read(t, column: "sentence").Select(r => r.Text));
        var txt = File_("in.txt", "a\n\nc");
        Assert.Equal(["a", "", "c"], TextInputs.Read(txt).Select(r => r.Text));
    }

    [Theory]
    [InlineData("bad.csv", "text\n\"never closed\nmore\n", "bad.csv:2: unterminated quoted field")]
    [InlineData("bad.csv", "a,text\n1,\"x\"y\n", "bad.csv:2: unexpected 'y' after the closing quote")]
    [InlineData("bad.csv", "a,text\n1,x,extra\n", "bad.csv:2: expected 2 fields as in the header")]
    [InlineData("bad.csv", "a,b\n1,2\n", "bad.csv:1: the header has no column 'text'")]
    [InlineData("bad.csv", "", "bad.csv:1: empty file")]
    [InlineData("bad.tsv", "text\tb\nx\n", "bad.tsv:2: expected 2 fields as in the header")]
    [InlineData("bad.jsonl", "{\"text\":\"ok\"}\n{\"text\": 5}\n", "bad.jsonl:2: field \"text\" must be a string")]
    [InlineData("bad.jsonl", "{\"text\":\"ok\"}\n{\"other\":\"x\"}\n", "bad.jsonl:2: the object has no field \"text\"")]
    [InlineData("bad.jsonl", "{\"text\":\"ok\"}\n\n{broken\n", "bad.jsonl:3: invalid JSON")]
    [InlineData("bad.jsonl", "[1,2]\n", "bad.jsonl:1: expected a JSON object")]
    public void MalformedInputNamesFileAndLine(string name, string content, string expected)
    {
        var p = File_(name, content);
        var e = Assert.Throws<FormatException>(() => TextInputs.Read(p, name.EndsWith(".jsonl") ? "text" : null, name.EndsWith(".jsonl") ? null : "text").ToList());
        Assert.Contains(expected, e.Message);
    }

    // ---- the streaming writer ----

    [Theory]
    [InlineData("v.npy")]
    [InlineData("v.jsonl")]
    [InlineData("v.csv")]
    public void WriterStreamsRowsAndLeavesNothingWithoutCommit(string name)
    {
        var path = Path.Combine(_dir, name);
        var rows = Enumerable.Range(0, 5).Select(i => new[] { i, -i / 3f, 1e-8f * i }).ToArray();
        using (var w = new EmbeddingFileWriter(path, 3))
        {
            w.Append(rows[..2]);
            w.Append(rows[2..]);
        }   // no Commit: as after an error or Ctrl-C
        Assert.Empty(Directory.GetFiles(_dir));
        using (var w = new EmbeddingFileWriter(path, 3))
        {
            w.Append(rows[..2]);
            w.Append(rows[2..]);
            w.Commit();
        }
        Assert.Single(Directory.GetFiles(_dir));
        float[] back = name switch
        {
            "v.npy" => Npy.Read(path) is var n && n.Shape.SequenceEqual([5L, 3]) ? n.ToFloat() : throw new Exception("shape"),
            "v.jsonl" => File.ReadAllLines(path).SelectMany(l => JsonDocument.Parse(l).RootElement.GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle())).ToArray(),
            _ => File.ReadAllLines(path) is var ls && ls[0] == "e0,e1,e2" ? ls.Skip(1).SelectMany(l => l.Split(',').Select(x => float.Parse(x, System.Globalization.CultureInfo.InvariantCulture))).ToArray() : throw new Exception("header"),
        };
        Assert.Equal(rows.SelectMany(r => r).Select(BitConverter.SingleToInt32Bits), back.Select(BitConverter.SingleToInt32Bits));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void CancellingMidwayLeavesNoFile()
    {
        // as Ctrl-C: the token is cancelled after the first chunk was written to the temporary file
        using var e = Embedder.Load(Model);
        using var cts = new CancellationTokenSource();
        var input = Enumerable.Range(0, 10).Select(i => new TextRecord($"text {i}", i + 1));
        var path = Path.Combine(_dir, "c.npy");
        int done = 0;
        Assert.ThrowsAny<OperationCanceledException>(() => EmbeddingJob.Run(e, input, path, chunkSize: 3, progress: n => { if ((done += n) >= 3) cts.Cancel(); }, cancellationToken: cts.Token));
        Assert.True(done >= 3);
        Assert.Empty(Directory.GetFiles(_dir));
        var r = EmbeddingJob.Run(e, input, path, chunkSize: 3);
        Assert.Equal(10, r.Rows);
        Assert.Equal([10L, 128], Npy.Read(path).Shape);
    }

    // ---- layers ----

    /// <summary>Mean over the real tokens of HF's hidden_states[k] (k = 0 embeddings output … L last layer), in double.</summary>
    static List<(string Text, float[][] MeanPerLayer)> GoldenLayerMeans()
    {
        var list = new List<(string, float[][])>();
        foreach (var c in GoldenCase.All())
        {
            if (!c.Has("hidden_states")) continue;
            var hs = Npy.Read(Path.Combine(c.Dir, "hidden_states.npy"));
            var mask = Npy.Read(Path.Combine(c.Dir, "attention_mask.npy")).ToInt64();
            int layers = (int)hs.Shape[0], l = (int)hs.Shape[2], h = (int)hs.Shape[3], batch = (int)hs.Shape[1];
            var v = hs.ToFloat();
            for (int b = 0; b < batch; b++)
            {
                if (c.Items[b].B is not null) continue;
                var per = new float[layers][];
                for (int k = 0; k < layers; k++)
                {
                    per[k] = new float[h];
                    int n = 0;
                    var acc = new double[h];
                    for (int t = 0; t < l; t++)
                    {
                        if (mask[b * l + t] == 0) continue;
                        n++;
                        for (int d = 0; d < h; d++) acc[d] += v[(((long)k * batch + b) * l + t) * h + d];
                    }
                    for (int d = 0; d < h; d++) per[k][d] = (float)(acc[d] / n);
                }
                list.Add((c.Items[b].A, per));
            }
        }
        return list;
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void EarlierLayersAndLayerAveragesMatchHuggingFaceHiddenStates()
    {
        var golden = GoldenLayerMeans();
        Assert.True(golden.Count >= 5, $"only {golden.Count} single-text golden items with hidden_states");
        var texts = golden.Select(g => g.Text).ToList();
        foreach (var (layer, expected) in new (EmbeddingLayer, Func<float[][], float[]>)[]
        {
            (EmbeddingLayer.Parse("-1"), p => p[2]),
            (EmbeddingLayer.Parse("-2"), p => p[1]),
            (EmbeddingLayer.Parse("-3"), p => p[0]),
            (new EmbeddingLayer(0, 2), p => p[1].Zip(p[2], (a, b) => (a + b) / 2).ToArray()),
        })
        {
            using var e = Embedder.Load(Model, new EmbedderOptions { Pooling = EmbeddingPooling.Mean, Layer = layer, BatchSize = 3 });
            var vectors = e.Embed(texts);
            double worst = golden.Select((g, i) => EmbedderTests.MaxDiff(vectors[i], expected(g.MeanPerLayer))).Max();
            log.WriteLine($"layer {layer}: max |Δ| vs HF hidden_states = {worst:E2}");
            Assert.True(worst <= 1e-5, $"layer {layer}: max |Δ| = {worst:E2}");
        }
        Assert.Contains("the model has 2 layers", Assert.Throws<ArgumentException>(() => Embedder.Load(Model, new EmbedderOptions { Layer = EmbeddingLayer.Parse("-4") })).Message);
        Assert.Contains("the model has 2 layers", Assert.Throws<ArgumentException>(() => Embedder.Load(Model, new EmbedderOptions { Layer = EmbeddingLayer.AverageOfLast4 })).Message);
        Assert.Throws<ArgumentException>(() => EmbeddingLayer.Parse("2"));
    }

    // ---- windows ----

    [Fact]
    public void WindowsCoverTheTextWithTheGivenOverlap()
    {
        int[] ids = [101, .. Enumerable.Range(1, 40), 102];
        var w = Embedder.Windows(ids, 16, 4).ToList();
        Assert.Equal(4, w.Count);   // text tokens 1-14, 11-24, 21-34, 31-40
        Assert.All(w, x => { Assert.Equal(101, x[0]); Assert.Equal(102, x[^1]); });
        Assert.Equal(Enumerable.Range(1, 14), w[0][1..^1]);
        Assert.Equal(Enumerable.Range(11, 14), w[1][1..^1]);
        Assert.Equal(Enumerable.Range(31, 10), w[3][1..^1]);
        Assert.Single(Embedder.Windows([101, 5, 6, 102], 16, 4));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void LongTextsAreTokenWeightedAveragesOfTheirWindows()
    {
        // "word" × 40 → [CLS] word×40 [SEP]; max length 16, overlap 4: windows of 14, 14, 14 and 10 words, each of
        // which is exactly the encoding of the text "word" × k.
        string Words(int k) => string.Join(" ", Enumerable.Repeat("word", k));
        using var plain = Embedder.Load(Model, new EmbedderOptions { Pooling = EmbeddingPooling.Mean, Normalize = false });
        var w14 = plain.Embed(Words(14));
        var w10 = plain.Embed(Words(10));
        var expected = w14.Select((x, j) => (float)((3.0 * 16 * x + 12.0 * w10[j]) / (3 * 16 + 12))).ToArray();
        using var windowed = Embedder.Load(Model, new EmbedderOptions { Pooling = EmbeddingPooling.Mean, Normalize = false, MaxLength = 16, Stride = 4 });
        var r = windowed.EmbedWithReport([Words(40), "short text"]);
        Assert.Equal([0], r.Windowed);
        Assert.Equal(4, r.Windows);
        Assert.Empty(r.Truncated);
        Assert.True(EmbedderTests.MaxDiff(expected, r.Vectors[0]) <= 1e-5, $"{EmbedderTests.MaxDiff(expected, r.Vectors[0]):E2}");
        Assert.True(EmbedderTests.MaxDiff(plain.Embed("short text"), r.Vectors[1]) <= 1e-5);
        Assert.Throws<ArgumentException>(() => Embedder.Load(Model, new EmbedderOptions { MaxLength = 16, Stride = 14 }));
    }

    // ---- the command ----

    [AssetFact(TestAssets.TinyRandom)]
    public void CsvAndJsonlInputsStreamInChunksInRowOrder()
    {
        string[] texts = ["A man is playing a guitar.", "with, a comma", "say \"hi\"", "two\nlines", "", "Zürich café 你好", "The quick brown fox jumps over the lazy dog."];
        string Quote(string s) => "\"" + s.Replace("\"", "\"\"") + "\"";
        var csv = File_("in.csv", "id,text\r\n" + string.Concat(texts.Select((t, i) => $"{i},{Quote(t)}\r\n")));
        var jsonl = File_("in.jsonl", string.Concat(texts.Select(t => JsonSerializer.Serialize(new { text = t, label = 1 }) + "\n")));
        var a = Path.Combine(_dir, "a.npy");
        var b = Path.Combine(_dir, "b.npy");
        var (exit, stdout, stderr) = CliHarness.Run("embed", "--model", Model, "--input", csv, "--column", "text", "--output", a, "--chunk-size", "3", "--batch-size", "2", "--json");
        Assert.True(exit == 0, stderr);
        Assert.Equal(7, JsonDocument.Parse(stdout).RootElement.GetProperty("rows").GetInt32());
        (exit, _, stderr) = CliHarness.Run("embed", "--model", Model, "--input", jsonl, "--field", "text", "--output", b);
        Assert.True(exit == 0, stderr);
        var fa = Npy.Read(a);
        Assert.Equal([7L, 128], fa.Shape);
        var va = fa.ToFloat();
        var vb = Npy.Read(b).ToFloat();
        using var e = Embedder.Load(Model);
        for (int i = 0; i < texts.Length; i++)
        {
            var expected = e.Embed(texts[i]);
            Assert.True(EmbedderTests.MaxDiff(expected, va.AsSpan(i * 128, 128).ToArray()) <= 1e-5, $"csv row {i}");
            Assert.True(EmbedderTests.MaxDiff(expected, vb.AsSpan(i * 128, 128).ToArray()) <= 1e-5, $"jsonl row {i}");
        }
        Assert.Equal(2, Directory.GetFiles(_dir, "*.npy").Length);
    }

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData("bad.csv", "text\nok\n\"open\n", "--column", "bad.csv:3: unterminated quoted field")]
    [InlineData("bad.jsonl", "{\"text\":\"ok\"}\n{\"text\":null}\n", "--field", "bad.jsonl:2: field \"text\" must be a string")]
    [InlineData("ok.jsonl", "{\"text\":\"ok\"}\n", "--column", "a .jsonl input needs --field")]
    [InlineData("ok.csv", "text\nok\n", "--field", "a .csv/.tsv input needs --column")]
    public void MalformedInputIsOneLineExitTwoAndNoOutput(string name, string content, string flag, string expected)
    {
        var p = File_(name, content);
        // a chunk of 1: the first record is embedded and written before the bad one is read
        var (exit, stdout, stderr) = CliHarness.Run("embed", "--model", Model, "--input", p, flag, "text", "--output", Path.Combine(_dir, "out.npy"), "--chunk-size", "1");
        Assert.Equal(2, exit);
        Assert.StartsWith("bert: error: ", stderr);
        Assert.Contains(expected, stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Equal("", stdout);
        Assert.Single(Directory.GetFiles(_dir));   // only the input: no output, no temporary file
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void LayerAndStrideFlagsReachTheEmbedder()
    {
        var p = File_("in.txt", "short\n" + string.Join(" ", Enumerable.Repeat("word", 40)) + "\n");
        var o = Path.Combine(_dir, "o.npy");
        var (exit, stdout, stderr) = CliHarness.Run("embed", "--model", Model, "--input", p, "--output", o, "--layer", "-2", "--max-length", "16", "--stride", "4", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal("-2", doc.RootElement.GetProperty("layer").GetString());
        Assert.Equal(1, doc.RootElement.GetProperty("windowed").GetInt32());
        Assert.Equal(4, doc.RootElement.GetProperty("windows").GetInt32());
        Assert.Equal(0, doc.RootElement.GetProperty("truncated").GetInt32());
        using var e = Embedder.Load(Model, new EmbedderOptions { Layer = EmbeddingLayer.Parse("-2"), MaxLength = 16, Stride = 4 });
        var expected = e.Embed(["short", string.Join(" ", Enumerable.Repeat("word", 40))]);
        var got = Npy.Read(o).ToFloat();
        Assert.True(EmbedderTests.MaxDiff(expected[1], got.AsSpan(128, 128).ToArray()) <= 1e-5);
        (exit, _, stderr) = CliHarness.Run("embed", "--model", Model, "--input", p, "--output", o, "--stride", "4");
        Assert.Equal(2, exit);
        Assert.Contains("--stride needs --max-length", stderr);
    }
}
