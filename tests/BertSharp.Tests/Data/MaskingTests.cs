using BertSharp.Data;
using Xunit;

namespace BertSharp.Tests.Data;

public class MaskingTests
{
    static RawExample LongExample(int length, int seed, int vocabSize)
    {
        var rng = new Random(seed);
        var ids = new int[length];
        ids[0] = DataTestUtil.Cls;
        int a = length / 2;
        for (int i = 1; i < length - 1; i++) ids[i] = rng.Next(DataTestUtil.FirstWord, vocabSize);
        ids[a + 1] = DataTestUtil.Sep;
        ids[^1] = DataTestUtil.Sep;
        return new RawExample(ids, a, 0);
    }

    [Fact]
    public void MaskRateSpecialsAndEightyTenTen()
    {
        const int vocabSize = 5000;
        var vocab = DataTestUtil.Vocab(vocabSize);
        long masked = 0, nonSpecial = 0, asMask = 0, unchanged = 0, random = 0;
        for (int n = 0; n < 1500; n++)
        {
            var raw = LongExample(128, n, vocabSize);
            var e = MlmMasking.Apply(raw, vocab, 0.15, 1000, wholeWordMask: false, new DataRng((ulong)n));
            Assert.Equal(MlmMasking.NumToPredict(128, 0.15, 1000), e.MaskedPositions.Length);
            Assert.Equal(e.MaskedPositions.OrderBy(p => p).Distinct(), e.MaskedPositions);
            foreach (var (p, label) in e.MaskedPositions.Zip(e.MaskedLabels))
            {
                Assert.NotEqual(DataTestUtil.Cls, raw.InputIds[p]);
                Assert.NotEqual(DataTestUtil.Sep, raw.InputIds[p]);
                Assert.Equal(raw.InputIds[p], label);
                if (e.InputIds[p] == DataTestUtil.Mask) asMask++;
                else if (e.InputIds[p] == label) unchanged++;
                else random++;
            }
            // Unmasked positions (specials included) are untouched.
            var maskedSet = e.MaskedPositions.ToHashSet();
            for (int i = 0; i < raw.Length; i++)
                if (!maskedSet.Contains(i)) Assert.Equal(raw.InputIds[i], e.InputIds[i]);
            masked += e.MaskedPositions.Length;
            nonSpecial += raw.Length - 3;
        }
        double rate = (double)masked / nonSpecial;
        Assert.InRange(rate, 0.145, 0.16);
        Assert.InRange((double)asMask / masked, 0.78, 0.82);
        Assert.InRange((double)unchanged / masked, 0.085, 0.115);
        Assert.InRange((double)random / masked, 0.085, 0.115);
    }

    [Theory]
    [InlineData(10, 0.15, 20, 2)]   // round(1.5) = 2 (half to even)
    [InlineData(30, 0.15, 20, 4)]   // round(4.5) = 4 (half to even, as Python)
    [InlineData(5, 0.15, 20, 1)]    // at least one
    [InlineData(512, 0.15, 20, 20)] // capped
    public void NumToPredictFollowsGoogle(int length, double p, int max, int expected) =>
        Assert.Equal(expected, MlmMasking.NumToPredict(length, p, max));

    [Fact]
    public void MaxPredictionsRespected()
    {
        var vocab = DataTestUtil.Vocab(1000);
        for (int n = 0; n < 200; n++)
        {
            var e = MlmMasking.Apply(LongExample(200, n, 1000), vocab, 0.15, 5, n % 2 == 0, new DataRng((ulong)n));
            Assert.Equal(5, e.MaskedPositions.Length);
        }
    }

    [Fact]
    public void WholeWordMaskingKeepsPiecesWithTheirWord()
    {
        // ids >= 500 are "##" pieces.
        var vocab = DataTestUtil.Vocab(1000, id => id >= 500);
        int groupsSeen = 0;
        for (int n = 0; n < 400; n++)
        {
            var rng = new Random(n);
            var ids = new List<int> { DataTestUtil.Cls };
            while (ids.Count < 100)
            {
                ids.Add(rng.Next(DataTestUtil.FirstWord, 500));
                int pieces = rng.Next(0, 4);
                for (int k = 0; k < pieces; k++) ids.Add(rng.Next(500, 1000));
            }
            int a = ids.Count - 1;
            ids.Add(DataTestUtil.Sep);
            ids.Add(rng.Next(500, 1000)); // B starts with a piece (front truncation): must not join A's last word
            ids.Add(rng.Next(DataTestUtil.FirstWord, 500));
            ids.Add(DataTestUtil.Sep);
            var raw = new RawExample(ids.ToArray(), a, 0);
            var e = MlmMasking.Apply(raw, vocab, 0.15, 20, wholeWordMask: true, new DataRng((ulong)n));
            var masked = e.MaskedPositions.ToHashSet();
            Assert.True(masked.Count <= MlmMasking.NumToPredict(ids.Count, 0.15, 20));
            Assert.NotEmpty(masked);
            foreach (var p in masked)
            {
                // A masked word start takes all its pieces; a masked piece has its word start masked.
                if (p + 1 < ids.Count && vocab.IsContinuation(ids[p + 1])) Assert.Contains(p + 1, masked);
                if (vocab.IsContinuation(ids[p]) && ids[p - 1] != DataTestUtil.Sep) Assert.Contains(p - 1, masked);
                if (vocab.IsContinuation(ids[p]) && !vocab.IsContinuation(ids[p - 1])) groupsSeen++;
            }
        }
        Assert.True(groupsSeen > 100);
    }

    [Fact]
    public void WithoutWholeWordMaskingPiecesAreMaskedIndependently()
    {
        var vocab = DataTestUtil.Vocab(1000, id => id >= 500);
        int lonelyPieces = 0;
        for (int n = 0; n < 200; n++)
        {
            var ids = new List<int> { DataTestUtil.Cls };
            var rng = new Random(n);
            while (ids.Count < 100) { ids.Add(rng.Next(5, 500)); ids.Add(rng.Next(500, 1000)); ids.Add(rng.Next(500, 1000)); }
            ids.Add(DataTestUtil.Sep);
            var e = MlmMasking.Apply(new RawExample(ids.ToArray(), ids.Count - 2, null), vocab, 0.15, 20, false, new DataRng((ulong)n));
            var masked = e.MaskedPositions.ToHashSet();
            lonelyPieces += masked.Count(p => vocab.IsContinuation(ids[p]) && !masked.Contains(p - 1));
        }
        Assert.True(lonelyPieces > 100); // the WWM test above can fail: this shows the property is not automatic
    }
}
