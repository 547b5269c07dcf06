using BertSharp.Data;
using TorchSharp;
using Xunit;

namespace BertSharp.Tests.Data;

public class DatasetTests
{
    static PretrainingDataset Dataset(MaskingMode masking, ulong seed = 11, ExampleMode mode = ExampleMode.NextSentencePrediction)
    {
        var (corpus, _, size) = DataTestUtil.UniqueCorpus(30, 3, 15, 1, 12, seed: 9);
        var o = new PretrainingDataOptions { MaxSeqLength = 48, DupeFactor = 2, Masking = masking, Seed = seed, Mode = mode };
        return PretrainingDataset.InMemory(corpus, DataTestUtil.Vocab(size), o);
    }

    static string Key(PretrainingExample e) =>
        $"{string.Join(',', e.InputIds)}|{string.Join(',', e.MaskedPositions)}|{string.Join(',', e.MaskedLabels)}|{e.NextSentenceLabel}";

    [Fact]
    public void StaticMaskingIgnoresEpochDynamicRemasks()
    {
        using var st = Dataset(MaskingMode.Static);
        using var dy = Dataset(MaskingMode.Dynamic);
        Assert.Equal(st.Count, dy.Count);
        int differentEpochs = 0, differentSeeds = 0;
        using var dyOther = Dataset(MaskingMode.Dynamic, seed: 12);
        for (int i = 0; i < st.Count; i++)
        {
            Assert.Equal(Key(st.Get(i, 0)), Key(st.Get(i, 3)));
            Assert.Equal(Key(dy.Get(i, 1)), Key(dy.Get(i, 1)));
            if (Key(dy.Get(i, 0)) != Key(dy.Get(i, 1))) differentEpochs++;
            var m = dy.Get(i, 0);
            var restored = (int[])m.InputIds.Clone();
            for (int k = 0; k < m.MaskedPositions.Length; k++) restored[m.MaskedPositions[k]] = m.MaskedLabels[k];
            Assert.Equal(dy.GetRaw(i).InputIds, restored);
            if (i < dyOther.Count && Key(dy.Get(i, 0)) != Key(dyOther.Get(i, 0))) differentSeeds++;
        }
        Assert.True(differentEpochs > st.Count * 9 / 10);
        Assert.True(differentSeeds > st.Count * 9 / 10);
    }

    [Fact]
    public void EpochOrderIsAPureFunctionOfSeedAndEpoch()
    {
        using var ds = Dataset(MaskingMode.Dynamic);
        var o0 = ds.EpochOrder(0);
        Assert.Equal(Enumerable.Range(0, ds.Count), o0.OrderBy(x => x));
        Assert.Equal(o0, ds.EpochOrder(0));
        Assert.NotEqual(o0, ds.EpochOrder(1));
        using var again = Dataset(MaskingMode.Dynamic);
        Assert.Equal(ds.EpochOrder(5), again.EpochOrder(5));
    }

    [Fact]
    public void ResumingMidEpochYieldsTheSameBatches()
    {
        using var ds = Dataset(MaskingMode.Dynamic);
        var b = new BatchingOptions { BatchSize = 8 };
        var full = ds.Batches(2, b).Select(x => { using (x) return string.Join(';', x.Indices) + "#" + string.Join(',', x.InputIds.data<long>().ToArray()); }).ToList();
        Assert.Equal(ds.StepsPerEpoch(b), full.Count);
        using var fresh = Dataset(MaskingMode.Dynamic);
        var resumed = fresh.Batches(2, b, startStep: 3).Select(x => { using (x) return string.Join(';', x.Indices) + "#" + string.Join(',', x.InputIds.data<long>().ToArray()); }).ToList();
        Assert.Equal(full.Skip(3), resumed);
    }

    [Fact]
    public void BucketingCoversEveryExampleOnceAndPadsLess()
    {
        using var ds = Dataset(MaskingMode.Static);
        var plain = new BatchingOptions { BatchSize = 8 };
        var bucketed = plain with { BucketWindowBatches = 20 };
        var batches = ds.EpochBatches(0, bucketed);
        Assert.Equal(Enumerable.Range(0, ds.Count), batches.SelectMany(x => x).OrderBy(x => x));
        long Padding(int[][] bs) => bs.Sum(x => (long)x.Max(ds.Length) * x.Length - x.Sum(ds.Length));
        Assert.True(Padding(batches) < Padding(ds.EpochBatches(0, plain)));
        Assert.Equal(batches, ds.EpochBatches(0, bucketed));
        var dropped = ds.EpochBatches(0, bucketed with { DropLast = true });
        Assert.All(dropped, x => Assert.Equal(8, x.Length));
        Assert.Equal(ds.StepsPerEpoch(bucketed with { DropLast = true }), dropped.Length);
    }

    [Fact]
    public void CollatePadsToLongestAndBuildsLabels()
    {
        using var ds = Dataset(MaskingMode.Static);
        var examples = Enumerable.Range(0, 6).Select(i => ds.Get(i, 0)).ToList();
        using var batch = PretrainingCollator.Collate(examples, DataTestUtil.Pad);
        int l = examples.Max(e => e.Length);
        Assert.Equal(new long[] { 6, l }, batch.InputIds.shape);
        Assert.Equal(new long[] { 6, l }, batch.TokenTypeIds.shape);
        Assert.Equal(new long[] { 6, l }, batch.AttentionMask.shape);
        using var dense = batch.DenseLabels();
        Assert.Equal(new long[] { 6, l }, dense.shape);
        Assert.Equal(new long[] { 6 }, batch.NextSentenceLabels!.shape);
        Assert.Equal(torch.ScalarType.Int64, batch.InputIds.dtype);
        var ids = batch.InputIds.data<long>().ToArray();
        var types = batch.TokenTypeIds.data<long>().ToArray();
        var att = batch.AttentionMask.data<long>().ToArray();
        var labels = dense.data<long>().ToArray();
        var flat = batch.MaskedFlatPositions.data<long>().ToArray();
        var flatLabels = batch.MaskedFlatLabels.data<long>().ToArray();
        var nsp = batch.NextSentenceLabels!.data<long>().ToArray();
        Assert.Equal(examples.Sum(e => e.MaskedPositions.Length), flat.Length);
        int f = 0;
        for (int r = 0; r < 6; r++)
        {
            var e = examples[r];
            for (int i = 0; i < l; i++)
            {
                bool real = i < e.Length;
                Assert.Equal(real ? e.InputIds[i] : DataTestUtil.Pad, ids[r * l + i]);
                Assert.Equal(real ? e.TokenTypeIds[i] : 0, types[r * l + i]);
                Assert.Equal(real ? 1 : 0, att[r * l + i]);
                int k = Array.IndexOf(e.MaskedPositions, i);
                Assert.Equal(k >= 0 ? e.MaskedLabels[k] : -100, labels[r * l + i]);
            }
            for (int k = 0; k < e.MaskedPositions.Length; k++)
            {
                Assert.Equal((long)r * l + e.MaskedPositions[k], flat[f]);
                Assert.Equal(e.MaskedLabels[k], flatLabels[f]);
                f++;
            }
            Assert.Equal(e.NextSentenceLabel, (int)nsp[r]);
        }
        using var padded = PretrainingCollator.Collate(examples, DataTestUtil.Pad, padToMultipleOf: 64);
        Assert.Equal(64, padded.SequenceLength);
    }

    [Fact]
    public void MlmOnlyBatchesHaveNoNextSentenceLabels()
    {
        using var ds = Dataset(MaskingMode.Dynamic, mode: ExampleMode.LineByLine);
        Assert.False(ds.HasNextSentenceLabels);
        using var batch = ds.GetBatch(0, 0, new BatchingOptions { BatchSize = 4 });
        Assert.Null(batch.NextSentenceLabels);
        Assert.Equal(0, batch.TokenTypeIds.sum().item<long>());
    }
}
