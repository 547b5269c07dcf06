using System.Text.Json;
using System.Text.RegularExpressions;
using BertSharp.Inference;
using Xunit;

namespace BertSharp.Tests.Cli;

/// <summary>
/// The README's first command (the main job) runs exactly as written, on the real MiniLM model, and its similarity
/// matrix equals the cosines of ONNX Runtime's own vectors for the same sentences (golden/ort_outputs.jsonl).
/// </summary>
public class ReadmeMainJobTests
{
    const string MiniLm = "assets/models/all-MiniLM-L6-v2";

    static string[] MainJobArgs()
    {
        var root = SharedAssets.FindRepoRoot(AppContext.BaseDirectory)!;
        var line = File.ReadAllLines(Path.Combine(root, "README.md"))
            .First(l => l.StartsWith("dotnet run -c Release --project src/BertSharp.Cli -- ", StringComparison.Ordinal));
        var words = Regex.Matches(line, "\"([^\"]*)\"|(\\S+)").Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value).ToArray();
        return words[(Array.IndexOf(words, "--") + 1)..];
    }

    [AssetFact(MiniLm)]
    public void MainJobRunsOnTheRealModelAndMatchesOnnxRuntime()
    {
        var args = MainJobArgs();
        Assert.Equal("similarity", args[0]);
        // `../shared/…` is relative to the repository root, where the README's command runs.
        int m = Array.IndexOf(args, "--model");
        Assert.Equal("../shared/" + MiniLm, args[m + 1]);
        args[m + 1] = TestAssets.Path(MiniLm);
        var texts = args.Skip(1).Where((_, i) => i + 1 != m && i + 1 != m + 1).ToArray();

        var table = CliHarness.Run(args);
        Assert.True(table.Exit == 0, table.Err);
        foreach (var t in texts) Assert.Contains(t, table.Out);

        var (exit, stdout, stderr) = CliHarness.Run([.. args, "--json"]);
        Assert.True(exit == 0, stderr);
        var got = JsonDocument.Parse(stdout).RootElement.GetProperty("similarity").EnumerateArray()
            .Select(r => r.EnumerateArray().Select(v => v.GetDouble()).ToArray()).ToArray();

        var golden = File.ReadAllLines(TestAssets.Path(MiniLm + "/golden/texts.txt"));
        var ort = File.ReadAllLines(TestAssets.Path(MiniLm + "/golden/ort_outputs.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement.GetProperty("mean").EnumerateArray().Select(x => x.GetSingle()).ToArray()).ToArray();
        var vectors = texts.Select(t => ort[Array.IndexOf(golden, t)]).ToArray();   // every README sentence is a golden text
        var expected = Similarity.Matrix(vectors);
        for (int i = 0; i < texts.Length; i++)
            for (int j = 0; j < texts.Length; j++)
                Assert.True(Math.Abs(expected[i][j] - got[i][j]) <= 1e-5, $"[{i},{j}]: {got[i][j]} vs ORT {expected[i][j]}");
        Assert.True(got[0][1] > 0.5 && got[0][2] < 0.3, "guitar sentences are close, the onion one is not");
    }

    [Fact]
    public void CosineByHand()
    {
        Assert.Equal(1.0, Similarity.Cosine([1, 2, 3], [2, 4, 6]), 12);
        Assert.Equal(0.0, Similarity.Cosine([1, 0], [0, 5]), 12);
        Assert.Equal(-1.0, Similarity.Cosine([1, -1], [-2, 2]), 12);
        Assert.Equal(0.6, Similarity.Cosine([3, 4], [1, 0]), 12);   // 3 / (5 · 1)
        Assert.Equal(0.0, Similarity.Cosine([0, 0], [1, 1]), 12);   // a zero vector has no direction
        Assert.Throws<ArgumentException>(() => Similarity.Cosine([1], [1, 2]));
    }
}
