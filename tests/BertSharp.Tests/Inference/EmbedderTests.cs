using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Tests.Golden;
using Microsoft.Extensions.AI;
using Xunit;

namespace BertSharp.Tests.Inference;

public class EmbedderTests(Xunit.Abstractions.ITestOutputHelper log)
{
    static string Model => TestAssets.Path(TestAssets.TinyRandom);

    /// <summary>The single-text items of the golden cases, with HF's hidden states, mask and pooler output for them.</summary>
    static IEnumerable<(string Text, long[] Ids, float[,] Hidden, float[] Pooler)> GoldenSingles()
    {
        foreach (var c in GoldenCase.All())
        {
            var ids = Npy.Read(Path.Combine(c.Dir, "input_ids.npy"));
            var mask = Npy.Read(Path.Combine(c.Dir, "attention_mask.npy")).ToInt64();
            var types = Npy.Read(Path.Combine(c.Dir, "token_type_ids.npy")).ToInt64();
            var hidden = Npy.Read(Path.Combine(c.Dir, "last_hidden_state.npy"));
            var pooler = Npy.Read(Path.Combine(c.Dir, "pooler_output.npy")).ToFloat();
            int l = (int)ids.Shape[1], h = (int)hidden.Shape[2];
            var idv = ids.ToInt64();
            var hv = hidden.ToFloat();
            for (int b = 0; b < c.Items.Count; b++)
            {
                if (c.Items[b].B is not null) continue;
                int n = Enumerable.Range(0, l).Count(t => mask[b * l + t] == 1);
                Assert.All(Enumerable.Range(0, n), t => Assert.Equal(0, types[b * l + t]));
                var hs = new float[n, h];
                for (int t = 0; t < n; t++)
                    for (int k = 0; k < h; k++) hs[t, k] = hv[(b * l + t) * h + k];
                yield return (c.Items[b].A, idv.Skip(b * l).Take(n).ToArray(), hs, pooler.Skip(b * h).Take(h).ToArray());
            }
        }
    }

    /// <summary>Pooling computed independently (in double) from HF's last_hidden_state over the real tokens.</summary>
    static float[] Reference(float[,] hs, EmbeddingPooling pooling)
    {
        int n = hs.GetLength(0), h = hs.GetLength(1);
        var r = new float[h];
        for (int k = 0; k < h; k++)
        {
            double acc = pooling == EmbeddingPooling.Max ? double.NegativeInfinity : 0;
            for (int t = 0; t < n; t++)
                acc = pooling == EmbeddingPooling.Max ? Math.Max(acc, hs[t, k]) : acc + hs[t, k];
            r[k] = pooling switch
            {
                EmbeddingPooling.Mean => (float)(acc / n),
                EmbeddingPooling.Max => (float)acc,
                _ => hs[0, k],
            };
        }
        return r;
    }

    internal static double MaxDiff(float[] a, float[] b)
    {
        Assert.Equal(a.Length, b.Length);
        return a.Zip(b, (x, y) => Math.Abs((double)x - y)).Max();
    }

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData(EmbeddingPooling.Mean)]
    [InlineData(EmbeddingPooling.Cls)]
    [InlineData(EmbeddingPooling.Max)]
    [InlineData(EmbeddingPooling.Pooler)]
    public void PoolingMatchesHuggingFaceHiddenStates(EmbeddingPooling pooling)
    {
        var singles = GoldenSingles().ToList();
        Assert.True(singles.Count >= 7, $"only {singles.Count} single-text golden items");
        using var embedder = Embedder.Load(Model, new EmbedderOptions { Pooling = pooling, BatchSize = 4 });
        Assert.Equal(pooling, embedder.Pooling);
        Assert.False(embedder.Normalize);
        var vectors = embedder.Embed(singles.Select(s => s.Text).ToList());
        double worst = 0;
        for (int i = 0; i < singles.Count; i++)
        {
            Assert.Equal(singles[i].Ids, embedder.Encode(singles[i].Text, out _).Select(x => (long)x));
            var expected = pooling == EmbeddingPooling.Pooler ? singles[i].Pooler : Reference(singles[i].Hidden, pooling);
            worst = Math.Max(worst, MaxDiff(vectors[i], expected));
        }
        log.WriteLine($"{pooling}: {singles.Count} texts, max |Δ| vs HF = {worst:E2}");
        Assert.True(worst <= 1e-5, $"max |Δ| vs HF = {worst:E2}");
    }

    static readonly string[] Texts =
    [
        "A man is playing a guitar.",
        "",
        "The quick brown fox jumps over the lazy dog, and then it runs far away into the deep green forest.",
        "Hi.",
        "Zürich café naïve 你好 😀 Ångström!",
        "Two dogs run.",
        "A woman is slicing an onion on a wooden board in the kitchen.",
    ];

    [AssetFact(TestAssets.TinyRandom)]
    public void PaddedBatchesEqualOneTextAtATimeInInputOrder()
    {
        using var batched = Embedder.Load(Model, new EmbedderOptions { BatchSize = 3 });
        var together = batched.Embed(Texts);
        foreach (var pooling in new[] { EmbeddingPooling.Mean, EmbeddingPooling.Max })
        {
            using var a = Embedder.Load(Model, new EmbedderOptions { Pooling = pooling, BatchSize = 3 });
            using var one = Embedder.Load(Model, new EmbedderOptions { Pooling = pooling, BatchSize = 1 });
            var batch = a.Embed(Texts);
            double worst = 0;
            for (int i = 0; i < Texts.Length; i++)
            {
                var single = one.Embed(Texts[i]);
                worst = Math.Max(worst, MaxDiff(batch[i], single));
                Assert.True(MaxDiff(batch[i], single) <= 1e-5, $"{pooling} text {i}: max |Δ| {MaxDiff(batch[i], single):E2}");
            }
            log.WriteLine($"{pooling}: padded batches of 3 vs one text at a time, max |Δ| = {worst:E2}");
        }
        // Different texts give different vectors (row order is not scrambled into identical rows).
        Assert.True(MaxDiff(together[0], together[5]) > 1e-3);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void NormalizeGivesUnitVectorsInTheSameDirection()
    {
        using var raw = Embedder.Load(Model);
        using var unit = Embedder.Load(Model, new EmbedderOptions { Normalize = true });
        var r = raw.Embed(Texts);
        var u = unit.Embed(Texts);
        for (int i = 0; i < Texts.Length; i++)
        {
            double norm = Math.Sqrt(r[i].Sum(x => (double)x * x));
            Assert.Equal(1.0, Math.Sqrt(u[i].Sum(x => (double)x * x)), 5);
            Assert.True(MaxDiff(u[i], r[i].Select(x => (float)(x / norm)).ToArray()) <= 1e-6);
        }
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void LongTextsAreCutAtMaxLengthAndReported()
    {
        using var e = Embedder.Load(Model, new EmbedderOptions { MaxLength = 6 });
        Assert.Equal(6, e.MaxLength);
        var ids = e.Encode(Texts[2], out bool cut);
        Assert.True(cut);
        Assert.Equal(6, ids.Length);
        Assert.Equal(e.Tokenizer.ClsId, ids[0]);
        Assert.Equal(e.Tokenizer.SepId, ids[^1]);
        Assert.Equal(e.Tokenizer.EncodeIds(Texts[2])[..5], ids[..5]);
        var r = e.EmbedWithReport(Texts);
        // Texts 0, 2, 4 and 6 are longer than 6 tokens with [CLS]/[SEP].
        Assert.Equal(Texts.Select((t, i) => (t, i)).Where(x => e.Tokenizer.EncodeIds(x.t).Length > 6).Select(x => x.i), r.Truncated);
        Assert.Contains(2, r.Truncated);
        Assert.DoesNotContain(3, r.Truncated);
        Assert.Equal(r.Truncated.Count, e.TruncatedTotal);
        // Default: max_position_embeddings of tiny-random's config (its tokenizer_config has no model_max_length).
        using var d = Embedder.Load(Model);
        Assert.Equal(512, d.MaxLength);
        Assert.Throws<ArgumentException>(() => Embedder.Load(Model, new EmbedderOptions { MaxLength = 513 }));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public async Task WorksThroughMicrosoftExtensionsAiInterface()
    {
        using var concrete = Embedder.Load(Model, new EmbedderOptions { Normalize = true });
        var expected = concrete.Embed(Texts);
        using IEmbeddingGenerator<string, Embedding<float>> generator = Embedder.Load(Model, new EmbedderOptions { Normalize = true });
        var metadata = generator.GetService<EmbeddingGeneratorMetadata>();
        Assert.NotNull(metadata);
        Assert.Equal("BertSharp", metadata!.ProviderName);
        Assert.Equal(Model, metadata.DefaultModelId);
        Assert.Equal(128, metadata.DefaultModelDimensions);
        var result = await generator.GenerateAsync(Texts);
        Assert.Equal(Texts.Length, result.Count);
        for (int i = 0; i < Texts.Length; i++)
        {
            Assert.Equal(128, result[i].Dimensions);
            Assert.True(MaxDiff(expected[i], result[i].Vector.ToArray()) <= 1e-6);
        }
        Assert.True(result.Usage?.InputTokenCount > Texts.Length * 2);
        var one = await generator.GenerateVectorAsync("Two dogs run.");
        Assert.True(MaxDiff(expected[5], one.ToArray()) <= 1e-6);
        await Assert.ThrowsAsync<NotSupportedException>(() => generator.GenerateAsync(Texts, new EmbeddingGenerationOptions { Dimensions = 64 }));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void PoolerPoolingNeedsPoolerWeights()
    {
        using var dir = new TempModelDir().Link(Model, "config.json", "vocab.txt", "tokenizer_config.json");
        var weights = CheckpointFiles.LoadWeights(Path.Combine(Model, "model.safetensors"));
        SafeTensors.Save(Path.Combine(dir.Path, "model.safetensors"), weights.Where(kv => !kv.Key.Contains("pooler.")));
        foreach (var t in weights.Values) t.Dispose();
        var ex = Assert.Throws<ArgumentException>(() => Embedder.Load(dir.Path, new EmbedderOptions { Pooling = EmbeddingPooling.Pooler }));
        Assert.Contains("pooler weights", ex.Message);
        using var mean = Embedder.Load(dir.Path);
        using var full = Embedder.Load(Model);
        Assert.True(MaxDiff(full.Embed(Texts[0]), mean.Embed(Texts[0])) <= 1e-6);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void MissingEncoderWeightsAreAnError()
    {
        using var dir = new TempModelDir().Link(Model, "config.json", "vocab.txt", "tokenizer_config.json");
        var weights = CheckpointFiles.LoadWeights(Path.Combine(Model, "model.safetensors"));
        SafeTensors.Save(Path.Combine(dir.Path, "model.safetensors"), weights.Where(kv => !kv.Key.Contains("layer.1.output.dense")));
        foreach (var t in weights.Values) t.Dispose();
        var ex = Assert.Throws<InvalidDataException>(() => Embedder.Load(dir.Path));
        Assert.Contains("encoder.layer.1.output.dense.weight", ex.Message);
    }

    const string Modules = """
        [
          {"idx": 0, "name": "0", "path": "", "type": "sentence_transformers.models.Transformer"},
          {"idx": 1, "name": "1", "path": "1_Pooling", "type": "sentence_transformers.models.Pooling"},
          {"idx": 2, "name": "2", "path": "2_Normalize", "type": "sentence_transformers.models.Normalize"}
        ]
        """;

    static string PoolingConfig(string mode) => $$"""
        {"word_embedding_dimension": 128, "pooling_mode_cls_token": {{(mode == "cls" ? "true" : "false")}},
         "pooling_mode_mean_tokens": {{(mode == "mean" ? "true" : "false")}}, "pooling_mode_max_tokens": {{(mode == "max" ? "true" : "false")}},
         "pooling_mode_mean_sqrt_len_tokens": false}
        """;

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData("cls", EmbeddingPooling.Cls)]
    [InlineData("max", EmbeddingPooling.Max)]
    [InlineData("mean", EmbeddingPooling.Mean)]
    public void SentenceTransformersFilesSetTheDefaults(string mode, EmbeddingPooling expected)
    {
        using var dir = TempModelDir.TinyRandom()
            .Write("modules.json", Modules)
            .Write("1_Pooling/config.json", PoolingConfig(mode))
            .Write("sentence_bert_config.json", """{"max_seq_length": 8, "do_lower_case": false}""");
        using var e = Embedder.Load(dir.Path);
        Assert.Equal(expected, e.Pooling);
        Assert.True(e.Normalize);
        Assert.Equal(8, e.MaxLength);
        using var explicitly = Embedder.Load(Model, new EmbedderOptions { Pooling = expected, Normalize = true, MaxLength = 8 });
        var (x, y) = (explicitly.Embed(Texts), e.Embed(Texts));
        for (int i = 0; i < Texts.Length; i++) Assert.True(MaxDiff(x[i], y[i]) <= 1e-6);
        // Explicit options win over the files.
        using var overridden = Embedder.Load(dir.Path, new EmbedderOptions { Pooling = EmbeddingPooling.Pooler, Normalize = false, MaxLength = 16 });
        Assert.Equal((EmbeddingPooling.Pooler, false, 16), (overridden.Pooling, overridden.Normalize, overridden.MaxLength));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void ModulesWithoutNormalizeMeanNoNormalization()
    {
        using var dir = TempModelDir.TinyRandom()
            .Write("modules.json", """[{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},{"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"}]""")
            .Write("1_Pooling/config.json", PoolingConfig("cls"));
        using var e = Embedder.Load(dir.Path);
        Assert.Equal((EmbeddingPooling.Cls, false, 512), (e.Pooling, e.Normalize, e.MaxLength));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void UnsupportedSentenceTransformersModulesAreRefusedUnlessOverridden()
    {
        using var dir = TempModelDir.TinyRandom()
            .Write("modules.json", """
                [{"idx":0,"name":"0","path":"","type":"sentence_transformers.models.Transformer"},
                 {"idx":1,"name":"1","path":"1_Pooling","type":"sentence_transformers.models.Pooling"},
                 {"idx":2,"name":"2","path":"2_Dense","type":"sentence_transformers.models.Dense"}]
                """)
            .Write("1_Pooling/config.json", PoolingConfig("mean"));
        var ex = Assert.Throws<NotSupportedException>(() => Embedder.Load(dir.Path));
        Assert.Contains("sentence_transformers.models.Dense", ex.Message);
        using var e = Embedder.Load(dir.Path, new EmbedderOptions { Pooling = EmbeddingPooling.Mean, Normalize = false });
        Assert.Equal(EmbeddingPooling.Mean, e.Pooling);

        using var two = TempModelDir.TinyRandom().Write("modules.json", Modules)
            .Write("1_Pooling/config.json", """{"pooling_mode_cls_token": true, "pooling_mode_mean_tokens": true}""");
        Assert.Contains("concatenates", Assert.Throws<NotSupportedException>(() => Embedder.Load(two.Path)).Message);

        using var bad = TempModelDir.TinyRandom().Write("modules.json", "{not json");
        Assert.Contains("modules.json: invalid JSON", Assert.Throws<FormatException>(() => Embedder.Load(bad.Path)).Message);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void Bfloat16StaysCloseToFloat32()
    {
        using var f32 = Embedder.Load(Model);
        using var bf16 = Embedder.Load(Model, new EmbedderOptions { DType = TorchSharp.torch.ScalarType.BFloat16 });
        var a = f32.Embed(Texts);
        var b = bf16.Embed(Texts);
        for (int i = 0; i < Texts.Length; i++)
        {
            double dot = 0, na = 0, nb = 0;
            for (int k = 0; k < a[i].Length; k++) { dot += a[i][k] * b[i][k]; na += a[i][k] * a[i][k]; nb += b[i][k] * b[i][k]; }
            double cos = dot / Math.Sqrt(na * nb);
            Assert.InRange(cos, 0.999, 1.0 + 1e-9);
            Assert.True(MaxDiff(a[i], b[i]) > 0, "bf16 run gave float32's exact numbers: the dtype was not applied");
        }
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void EmptyInputGivesNoVectors()
    {
        using var e = Embedder.Load(Model);
        Assert.Empty(e.Embed(Array.Empty<string>()));
    }
}
