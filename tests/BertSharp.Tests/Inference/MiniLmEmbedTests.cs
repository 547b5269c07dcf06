using System.Text.Json;
using BertSharp.Inference;
using BertSharp.Tests.Cli;
using Xunit;

namespace BertSharp.Tests.Inference;

/// <summary>
/// `bert embed` on the shared all-MiniLM-L6-v2 ONNX file against ONNX Runtime's vectors (golden/ort_outputs.jsonl,
/// one text per run), loaded through the ONNX importer.
/// </summary>
public class MiniLmEmbedTests
{
    const string Dir = "assets/models/all-MiniLM-L6-v2";

    [AssetFact(Dir)]
    public void EmbedEqualsOnnxRuntimeOnGoldenTexts()
    {
        var dir = TestAssets.Path(Dir);
        var texts = Path.Combine(dir, "golden", "texts.txt");
        var expected = File.ReadAllLines(Path.Combine(dir, "golden", "ort_outputs.jsonl"))
            .Select(l => JsonDocument.Parse(l).RootElement).ToList();
        foreach (var (pooling, key) in new[] { ("mean", "mean"), ("cls", "cls") })
        {
            var output = Path.Combine(Path.GetTempPath(), $"bertsharp-minilm-{Guid.NewGuid():N}.npy");
            try
            {
                var (exit, _, stderr) = CliHarness.Run("embed", "--model", dir, "--input", texts, "--output", output, "--pooling", pooling, "--batch-size", "5");
                Assert.True(exit == 0, stderr);
                var npy = BertSharp.Checkpoints.Npy.Read(output);
                Assert.Equal(new long[] { expected.Count, 384 }, npy.Shape);
                var flat = npy.ToFloat();
                double worst = 0;
                for (int i = 0; i < expected.Count; i++)
                {
                    var e = expected[i].GetProperty(key).EnumerateArray().Select(x => x.GetSingle()).ToArray();
                    worst = Math.Max(worst, EmbedderTests.MaxDiff(e, flat.AsSpan(i * 384, 384).ToArray()));
                }
                Assert.True(worst <= 1e-4, $"{pooling}: max |Δ| vs ONNX Runtime = {worst:E2}");
            }
            finally
            {
                File.Delete(output);
            }
        }
        using var embedder = Embedder.Load(dir);
        Assert.Equal((EmbeddingPooling.Mean, false, 384), (embedder.Pooling, embedder.Normalize, embedder.Dimensions));
    }
}
