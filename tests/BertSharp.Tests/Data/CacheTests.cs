using BertSharp.Data;
using BertSharp.Tokenization;
using Xunit;

namespace BertSharp.Tests.Data;

public class CacheTests
{
    const string Sample = "assets/data/bert_pretraining_sample/sample_text.txt";

    static string SyntheticCorpus(string dir, int documents = 25, int seed = 1)
    {
        var rng = new Random(seed);
        var path = Path.Combine(dir, "corpus.txt");
        using var w = new StreamWriter(path);
        for (int d = 0; d < documents; d++)
        {
            if (d > 0) w.WriteLine();
            int sentences = rng.Next(2, 12);
            for (int s = 0; s < sentences; s++)
                w.WriteLine(string.Join(' ', Enumerable.Range(0, rng.Next(1, 15)).Select(_ =>
                    rng.Next(3) == 0 ? $"w{rng.Next(200)}+{rng.Next(20)}" : $"w{rng.Next(200)}")) + ".");
        }
        return path;
    }

    static List<string> Dump(PretrainingDataset ds, int epoch) => Enumerable.Range(0, ds.Count).Select(i =>
    {
        var e = ds.Get(i, epoch);
        return $"{string.Join(',', e.InputIds)}|{string.Join(',', e.TokenTypeIds)}|{string.Join(',', e.MaskedPositions)}|{string.Join(',', e.MaskedLabels)}|{e.NextSentenceLabel}";
    }).ToList();

    static readonly CacheOptions Quiet = new() { ShowProgress = false };
    static readonly PretrainingDataOptions Options = new() { MaxSeqLength = 40, DupeFactor = 3, Masking = MaskingMode.Dynamic, WholeWordMask = true };

    [Fact]
    public void SecondBuildIsACacheHitWithIdenticalExamples()
    {
        using var tmp = new TempFolder("cache-hit");
        var dir = tmp.Path;
        var corpus = CorpusSpec.GoogleText(SyntheticCorpus(dir));
        var root = Path.Combine(dir, "cache");
        var encoder = new SyntheticEncoder();
        List<string> first;
        using (var ds = PretrainingDataset.Create(corpus, encoder, Options, root, Quiet))
        {
            Assert.False(ds.ExampleCacheHit);
            Assert.False(ds.TokenCacheHit);
            first = Dump(ds, 1);
        }
        using (var ds = PretrainingDataset.Create(corpus, encoder, Options, root, Quiet))
        {
            Assert.True(ds.ExampleCacheHit);
            Assert.Equal(first, Dump(ds, 1));
        }
        // Different example options reuse the token cache.
        using (var ds = PretrainingDataset.Create(corpus, encoder, Options with { Seed = 99 }, root, Quiet))
        {
            Assert.False(ds.ExampleCacheHit);
            Assert.True(ds.TokenCacheHit);
            Assert.NotEqual(first, Dump(ds, 1));
        }
        // Identical to the in-memory pipeline.
        var mem = InMemoryTokenizedCorpus.Tokenize(CorpusReader.Read(corpus), encoder);
        using (var ds = PretrainingDataset.InMemory(mem, encoder.Vocab, Options))
            Assert.Equal(first, Dump(ds, 1));
    }

    [Fact]
    public void TokenCacheMatchesCorpusAcrossShards()
    {
        using var tmp = new TempFolder("cache-shards");
        var dir = tmp.Path;
        var corpus = CorpusSpec.GoogleText(SyntheticCorpus(dir, documents: 40, seed: 2));
        var encoder = new SyntheticEncoder();
        var mem = InMemoryTokenizedCorpus.Tokenize(CorpusReader.Read(corpus), encoder);
        using var cache = TokenCache.OpenOrBuild(corpus, encoder, Path.Combine(dir, "cache"), Quiet with { ShardTokens = 100 });
        Assert.True(cache.ShardCount > 3);
        Assert.Equal(mem.DocumentCount, cache.DocumentCount);
        Assert.Equal(mem.TokenTotal, cache.TokenTotal);
        for (int d = 0; d < mem.DocumentCount; d++)
        {
            Assert.Equal(mem.SentenceCount(d), cache.SentenceCount(d));
            for (int s = 0; s < mem.SentenceCount(d); s++)
            {
                List<int> x = new(), y = new();
                mem.AppendSentence(d, s, x);
                cache.AppendSentence(d, s, y);
                Assert.Equal(x, y);
            }
        }
    }

    [Fact]
    public void TruncatedShardOrMissingManifestIsDetectedAndRebuilt()
    {
        using var tmp = new TempFolder("cache-corrupt");
        var dir = tmp.Path;
        var corpus = CorpusSpec.GoogleText(SyntheticCorpus(dir, seed: 3));
        var root = Path.Combine(dir, "cache");
        var encoder = new SyntheticEncoder();
        var notes = new List<string>();
        var options = Quiet with { ShardTokens = 200, Log = notes.Add };
        string cacheDir;
        List<List<int>> expected;
        using (var cache = TokenCache.OpenOrBuild(corpus, encoder, root, options))
        {
            Assert.False(cache.WasCacheHit);
            cacheDir = cache.Directory;
            expected = Sentences(cache);
        }
        var shard = Path.Combine(cacheDir, "shard-00001.bin");
        using (var fs = new FileStream(shard, FileMode.Open)) fs.SetLength(fs.Length - 7);
        using (var cache = TokenCache.OpenOrBuild(corpus, encoder, root, options))
        {
            Assert.False(cache.WasCacheHit);
            Assert.Contains(notes, n => n.Contains("truncated or corrupt"));
            Assert.Equal(expected, Sentences(cache));
        }
        using (var cache = TokenCache.OpenOrBuild(corpus, encoder, root, options)) Assert.True(cache.WasCacheHit);

        File.Delete(Path.Combine(cacheDir, "manifest.json"));
        using (var cache = TokenCache.OpenOrBuild(corpus, encoder, root, options))
        {
            Assert.False(cache.WasCacheHit);
            Assert.Equal(expected, Sentences(cache));
        }

        // Same size, flipped bytes: caught only with checksum verification.
        var bytes = File.ReadAllBytes(shard);
        bytes[^1] ^= 0xFF;
        File.WriteAllBytes(shard, bytes);
        using (var cache = TokenCache.OpenOrBuild(corpus, encoder, root, options with { VerifyChecksums = true }))
        {
            Assert.False(cache.WasCacheHit);
            Assert.Equal(expected, Sentences(cache));
        }
    }

    [Fact]
    public void ChangedCorpusChangesTheKey()
    {
        using var tmp = new TempFolder("cache-key");
        var dir = tmp.Path;
        var path = SyntheticCorpus(dir, seed: 4);
        var corpus = CorpusSpec.GoogleText(path);
        var encoder = new SyntheticEncoder();
        var k1 = TokenCache.ComputeKey(corpus, encoder);
        Assert.Equal(k1, TokenCache.ComputeKey(corpus, encoder));
        File.AppendAllText(path, "\nw1 w2.\n");
        Assert.NotEqual(k1, TokenCache.ComputeKey(corpus, encoder));
        Assert.NotEqual(TokenCache.ComputeKey(corpus, encoder), TokenCache.ComputeKey(corpus with { Format = CorpusFormat.WikiText }, encoder));
    }

    static List<List<int>> Sentences(TokenCache cache)
    {
        var all = new List<List<int>>();
        for (int d = 0; d < cache.DocumentCount; d++)
            for (int s = 0; s < cache.SentenceCount(d); s++)
            {
                var x = new List<int>();
                cache.AppendSentence(d, s, x);
                all.Add(x);
            }
        return all;
    }

    [AssetFact(Sample, TestAssets.UncasedVocab)]
    public void SampleTextWithRealVocab()
    {
        var tokenizer = BertTokenizer.FromVocabFile(TestAssets.Path(TestAssets.UncasedVocab), new BertTokenizerOptions { DoLowerCase = true });
        using var tmp = new TempFolder("sample");
        var dir = tmp.Path;
        var corpus = CorpusSpec.GoogleText(TestAssets.Path(Sample));
        var options = new PretrainingDataOptions { MaxSeqLength = 128, DupeFactor = 5, WholeWordMask = true };
        using var cache = TokenCache.OpenOrBuild(corpus, new BertTokenizerEncoder(tokenizer), Path.Combine(dir, "c"), Quiet);
        Assert.Equal(3, cache.DocumentCount);
        using var ds = PretrainingDataset.Create(corpus, tokenizer, options, Path.Combine(dir, "c"), Quiet);
        Assert.True(ds.Count > 20);
        var vocab = PretrainingVocab.From(tokenizer);
        int nsp = 0;
        for (int i = 0; i < ds.Count; i++)
        {
            var e = ds.Get(i, 0);
            var raw = ds.GetRaw(i);
            Assert.True(e.Length <= 128);
            Assert.Equal(tokenizer.ClsId, e.InputIds[0]);
            Assert.Equal(tokenizer.SepId, raw.InputIds[raw.SegmentALength + 1]);
            Assert.Equal(tokenizer.SepId, e.InputIds[^1]);
            Assert.True(e.MaskedPositions.Length <= options.MaxPredictionsPerSeq);
            Assert.DoesNotContain(0, e.MaskedPositions);
            foreach (var p in e.MaskedPositions)
                if (p + 1 < raw.Length && vocab.IsContinuation(raw.InputIds[p + 1])) Assert.Contains(p + 1, e.MaskedPositions);
            nsp += e.NextSentenceLabel!.Value;
        }
        Assert.InRange(nsp, 1, ds.Count - 1);
        using var batch = ds.GetBatch(0, 0, new BatchingOptions { BatchSize = 8 });
        Assert.Equal(8, batch.BatchSize);
    }
}
