using System.Globalization;
using BertSharp.Data.Tasks;
using BertSharp.Evaluation;
using BertSharp.Inference;
using Microsoft.ML.OnnxRuntime;
using Xunit;

namespace BertSharp.Tests.Inference;

/// <summary>
/// all-MiniLM-L6-v2 sentence vectors from <see cref="Embedder"/> (padded, length-sorted batches) against ONNX Runtime
/// running the same shared ONNX file one text at a time (mean over the tokens, as sentence-transformers): SST-2 dev
/// sentences (max |Δ|) and the STS-B dev Spearman correlation of cosine similarities, which must be the same number
/// for both. Fast by default (the first 96 sentences / pairs); BERTSHARP_FULL_PARITY=1 runs every dev row (the
/// numbers in docs/embeddings.md).
/// </summary>
public class MiniLmParityTests(Xunit.Abstractions.ITestOutputHelper log)
{
    const string Dir = "assets/models/all-MiniLM-L6-v2";
    const string Sst2 = "assets/data/glue/SST-2/dev.tsv";
    const string Stsb = "assets/data/glue/STS-B/dev.tsv";
    static bool Full => Environment.GetEnvironmentVariable("BERTSHARP_FULL_PARITY") == "1";
    static int Limit => Full ? int.MaxValue : 96;

    static float[] OrtMean(InferenceSession session, int[] ids)
    {
        long[] shape = [1, ids.Length];
        using var idsV = OrtValue.CreateTensorValueFromMemory(ids.Select(x => (long)x).ToArray(), shape);
        using var maskV = OrtValue.CreateTensorValueFromMemory(Enumerable.Repeat(1L, ids.Length).ToArray(), shape);
        using var typesV = OrtValue.CreateTensorValueFromMemory(new long[ids.Length], shape);
        using var runOptions = new RunOptions();
        using var outputs = session.Run(runOptions, ["input_ids", "attention_mask", "token_type_ids"], [idsV, maskV, typesV], ["last_hidden_state"]);
        var h = outputs[0].GetTensorDataAsSpan<float>();
        int d = h.Length / ids.Length;
        var mean = new double[d];
        for (int t = 0; t < ids.Length; t++)
            for (int j = 0; j < d; j++) mean[j] += h[t * d + j];
        return mean.Select(x => (float)(x / ids.Length)).ToArray();
    }

    static List<string[]> Tsv(string path, params string[] columns)
    {
        var rows = new List<string[]>();
        DelimitedRecord? header = null;
        int[] at = [];
        foreach (var r in DelimitedText.ReadTsvLines(path, skipBlank: true))
        {
            if (header is null) { header = r; at = columns.Select(c => DelimitedText.Column(path, r, c)).ToArray(); continue; }
            rows.Add(at.Select(i => r.Fields[i]).ToArray());
        }
        return rows;
    }

    [AssetFact(Dir, Sst2)]
    public void Sst2DevVectorsEqualOnnxRuntime()
    {
        var texts = Tsv(TestAssets.Path(Sst2), "sentence").Select(r => r[0]).Take(Limit).ToList();
        using var embedder = Embedder.Load(TestAssets.Path(Dir), new EmbedderOptions { BatchSize = 32 });
        var clock = System.Diagnostics.Stopwatch.StartNew();
        var ours = embedder.Embed(texts);
        double oursSeconds = clock.Elapsed.TotalSeconds;
        using var session = new InferenceSession(TestAssets.Path(Dir + "/model.onnx"));
        double worst = 0;
        for (int i = 0; i < texts.Count; i++)
            worst = Math.Max(worst, EmbedderTests.MaxDiff(OrtMean(session, embedder.Encode(texts[i], out _)), ours[i]));
        log.WriteLine($"SST-2 dev: {texts.Count} sentences, max |Δ| vs ONNX Runtime = {worst:E2}; ours {texts.Count / oursSeconds:F1} texts/s");
        Assert.True(worst <= 1e-4, $"max |Δ| = {worst:E2}");
    }

    [AssetFact(Dir, Stsb)]
    public void StsbDevSpearmanEqualsOnnxRuntimes()
    {
        var rows = Tsv(TestAssets.Path(Stsb), "sentence1", "sentence2", "score").Take(Limit).ToList();
        var gold = rows.Select(r => double.Parse(r[2], CultureInfo.InvariantCulture)).ToList();
        using var embedder = Embedder.Load(TestAssets.Path(Dir), new EmbedderOptions { BatchSize = 32 });
        var a = embedder.Embed(rows.Select(r => r[0]).ToList());
        var b = embedder.Embed(rows.Select(r => r[1]).ToList());
        using var session = new InferenceSession(TestAssets.Path(Dir + "/model.onnx"));
        var oursCos = new List<double>();
        var ortCos = new List<double>();
        double worst = 0;
        for (int i = 0; i < rows.Count; i++)
        {
            var oa = OrtMean(session, embedder.Encode(rows[i][0], out _));
            var ob = OrtMean(session, embedder.Encode(rows[i][1], out _));
            worst = Math.Max(worst, Math.Max(EmbedderTests.MaxDiff(oa, a[i]), EmbedderTests.MaxDiff(ob, b[i])));
            oursCos.Add(Similarity.Cosine(a[i], b[i]));
            ortCos.Add(Similarity.Cosine(oa, ob));
        }
        double ours = Metrics.Spearman(oursCos, gold), ort = Metrics.Spearman(ortCos, gold);
        double cosDiff = oursCos.Zip(ortCos, (x, y) => Math.Abs(x - y)).Max();
        log.WriteLine($"STS-B dev: {rows.Count} pairs, Spearman ours {ours:F6}, ORT {ort:F6}; max |Δ| vectors {worst:E2}, cosines {cosDiff:E2}");
        Assert.True(worst <= 1e-4, $"max |Δ| vectors = {worst:E2}");
        Assert.True(Math.Abs(ours - ort) <= 1e-4, $"Spearman ours {ours} vs ORT {ort}");
        Assert.True(ours > 0.5, $"Spearman {ours}: MiniLM should correlate with the human scores");
    }
}
