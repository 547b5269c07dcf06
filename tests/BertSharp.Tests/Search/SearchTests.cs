using System.Text;
using System.Text.Json;
using BertSharp.Inference;
using BertSharp.Tests.Cli;
using Xunit;

namespace BertSharp.Tests.Search;

public class SearchTests : IDisposable
{
    static string Model => TestAssets.Path(TestAssets.TinyRandom);
    readonly string _dir = Directory.CreateTempSubdirectory("bertsharp-search-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    static float[][] Random(int n, int d, int seed, bool duplicates = false)
    {
        var rng = new System.Random(seed);
        var v = new float[n][];
        for (int i = 0; i < n; i++)
            v[i] = duplicates && i % 7 == 3 ? (float[])v[i - 1].Clone() : Enumerable.Range(0, d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        return v;
    }

    /// <summary>Brute force in double: cosine of every row, sorted by score then index.</summary>
    static (long Index, double Score)[] BruteForce(float[][] corpus, float[] q, int k) =>
        corpus.Select((v, i) => ((long)i, Similarity.Cosine(v, q))).OrderByDescending(x => x.Item2).ThenBy(x => x.Item1).Take(k).ToArray();

    [Theory]
    [InlineData(1000, 32, 1)]
    [InlineData(1000, 32, 10)]
    [InlineData(57, 8, 57)]
    [InlineData(57, 8, 100)]
    [InlineData(70_000, 16, 10)]   // parallel partitions
    public void TopKEqualsBruteForce(int n, int d, int k)
    {
        var corpus = Random(n, d, 7, duplicates: true);
        var index = VectorIndex.FromVectors(corpus, d);
        foreach (var q in Random(5, d, 11).Append(corpus[10]))
        {
            var got = index.Search(q, k);
            var want = BruteForce(corpus, q, k);
            Assert.Equal(Math.Min(k, n), got.Length);
            for (int r = 0; r < got.Length; r++)
            {
                Assert.True(Math.Abs(got[r].Score - want[r].Score) <= 1e-5, $"rank {r}: {got[r].Score} vs {want[r].Score}");
                // same row unless the two scores are a float32 near-tie
                if (got[r].Index != want[r].Index)
                    Assert.True(Math.Abs(Similarity.Cosine(corpus[got[r].Index], q) - want[r].Score) <= 1e-6, $"rank {r}: row {got[r].Index} vs {want[r].Index}");
            }
            for (int r = 1; r < got.Length; r++) Assert.True(got[r - 1].Score >= got[r].Score);
        }
        Assert.Throws<ArgumentException>(() => index.Search(new float[d + 1], 3));
        Assert.Throws<ArgumentException>(() => index.Search(new float[d], 0));
    }

    [Fact]
    public void TiesGoToTheLowerRow()
    {
        var v = new[] { new[] { 1f, 0 }, new[] { 0f, 1 }, new[] { 2f, 0 }, new[] { 3f, 0 } };
        var hits = VectorIndex.FromVectors(v, 2).Search([1f, 0], 2);
        Assert.Equal([0L, 2], hits.Select(h => h.Index));
        Assert.Equal(1f, hits[0].Score, 6);
    }

    string Corpus(string name, params string[] lines)
    {
        var p = Path.Combine(_dir, name);
        File.WriteAllText(p, string.Join("\n", lines) + "\n", new UTF8Encoding(false));
        return p;
    }

    static readonly string[] Lines =
    [
        "A man is playing a guitar.", "A woman is slicing an onion.", "Two dogs run in the park.",
        "The stock market fell today.", "Zürich café 你好", "He plays the violin on stage.",
    ];

    [AssetFact(TestAssets.TinyRandom)]
    public void BuildsReusesAndRefusesAnIndex()
    {
        var corpus = Corpus("corpus.txt", Lines);
        var index = Path.Combine(_dir, "idx");
        var (exit, stdout, stderr) = CliHarness.Run("search", "--model", Model, "--corpus", corpus, "--index", index, "--query", Lines[3], "--query", "dogs", "--top-k", "3", "--json");
        Assert.True(exit == 0, stderr);
        using (var doc = JsonDocument.Parse(stdout))
        {
            Assert.True(doc.RootElement.GetProperty("built").GetBoolean());
            var first = doc.RootElement.GetProperty("queries")[0].GetProperty("results");
            Assert.Equal(3, first.GetArrayLength());
            Assert.Equal(3, first[0].GetProperty("index").GetInt64());   // the query is corpus row 3 itself
            Assert.Equal(4, first[0].GetProperty("line").GetInt64());
            Assert.Equal(Lines[3], first[0].GetProperty("text").GetString());
            Assert.Equal(1.0, first[0].GetProperty("score").GetDouble(), 5);

            // the scores are the cosines of the embedder's own vectors
            using var e = Embedder.Load(Model);
            var corpusVectors = e.Embed(Lines);
            var q = e.Embed("dogs");
            var second = doc.RootElement.GetProperty("queries")[1].GetProperty("results");
            var want = BruteForce(corpusVectors, q, 3);
            for (int r = 0; r < 3; r++)
            {
                Assert.Equal(want[r].Index, second[r].GetProperty("index").GetInt64());
                Assert.Equal(want[r].Score, second[r].GetProperty("score").GetDouble(), 5);
            }
        }
        var info = VectorIndex.ReadInfo(index);
        Assert.Equal(Lines.Length, info.Count);
        Assert.Equal(128, info.Dimensions);
        Assert.Equal("mean", info.Pooling);
        Assert.Equal([Lines.Length, 128L], BertSharp.Checkpoints.Npy.Read(Path.Combine(index, "vectors.npy")).Shape);

        // reused: no corpus needed, same answer
        (exit, stdout, stderr) = CliHarness.Run("search", "--model", Model, "--index", index, "--query", Lines[3], "--top-k", "1", "--json");
        Assert.True(exit == 0, stderr);
        using (var doc = JsonDocument.Parse(stdout))
        {
            Assert.False(doc.RootElement.GetProperty("built").GetBoolean());
            Assert.Equal(3, doc.RootElement.GetProperty("queries")[0].GetProperty("results")[0].GetProperty("index").GetInt64());
        }

        // another pooling, another corpus: refused
        (exit, _, stderr) = CliHarness.Run("search", "--model", Model, "--index", index, "--query", "x", "--pooling", "cls");
        Assert.Equal(2, exit);
        Assert.Contains("was built with pooling mean, this run uses cls", stderr);
        var other = Corpus("other.txt", "something else");
        (exit, _, stderr) = CliHarness.Run("search", "--model", Model, "--index", index, "--corpus", other, "--query", "x");
        Assert.Equal(2, exit);
        Assert.Contains("was built from", stderr);

        // plain table output
        (exit, stdout, stderr) = CliHarness.Run("search", "--model", Model, "--index", index, "--query", "guitar", "--top-k", "2");
        Assert.True(exit == 0, stderr);
        Assert.Contains("query: guitar", stdout);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void WithoutAnIndexNothingIsWrittenAndMalformedCorpusIsOneLine()
    {
        var corpus = Corpus("c.csv", "text", "one", "\"two", "three");
        var (exit, stdout, stderr) = CliHarness.Run("search", "--model", Model, "--corpus", corpus, "--column", "text", "--index", Path.Combine(_dir, "idx"), "--query", "x");
        Assert.Equal(2, exit);
        Assert.StartsWith("bert: error: ", stderr);
        Assert.Contains("c.csv:3: unterminated quoted field", stderr);
        Assert.Equal("", stdout);
        Assert.Single(Directory.GetFileSystemEntries(_dir));   // no index, no temporary directory
        var good = Corpus("g.txt", Lines);
        (exit, _, stderr) = CliHarness.Run("search", "--model", Model, "--corpus", good, "--query", "guitar", "--json");
        Assert.True(exit == 0, stderr);
        Assert.Equal(2, Directory.GetFileSystemEntries(_dir).Length);
    }
}
