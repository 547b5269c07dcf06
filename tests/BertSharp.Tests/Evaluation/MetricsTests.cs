using BertSharp.Evaluation;
using Xunit;

namespace BertSharp.Tests.Evaluation;

/// <summary>Metrics against hand-computed cases (arithmetic in the comments).</summary>
public class MetricsTests
{
    // pred: 1 1 0 1 0 0 1 0
    // gold: 1 0 0 1 1 0 1 1
    static readonly int[] P = [1, 1, 0, 1, 0, 0, 1, 0];
    static readonly int[] G = [1, 0, 0, 1, 1, 0, 1, 1];

    [Fact]
    public void Accuracy_and_binary_f1()
    {
        // equal at positions 0,2,3,5,6 → 5/8
        Assert.Equal(5.0 / 8, Metrics.Accuracy(P, G), 12);
        // class 1: tp = 3 (0,3,6), fp = 1 (1), fn = 2 (4,7) → P = 3/4, R = 3/5, F1 = 2·.75·.6/1.35 = 2/3
        var (p, r, f) = Metrics.BinaryPrf(P, G);
        Assert.Equal(0.75, p, 12);
        Assert.Equal(0.6, r, 12);
        Assert.Equal(2.0 / 3, f, 12);
        // class 0 as positive: tp = 2 (2,5), fp = 2 (4,7), fn = 1 (1) → P = 1/2, R = 2/3, F1 = 2·(1/3)/(7/6) = 4/7
        Assert.Equal(4.0 / 7, Metrics.F1Binary(P, G, positive: 0), 12);
        // no positive predicted and none gold → 0 (zero_division = 0)
        Assert.Equal(0, Metrics.F1Binary([0, 0], [0, 0]));
    }

    [Fact]
    public void Macro_f1_averages_classes_seen_in_either_list()
    {
        // binary: (2/3 + 4/7) / 2 = 13/21
        Assert.Equal(13.0 / 21, Metrics.F1Macro(P, G), 12);
        // 3 classes: pred 0 1 2 2, gold 0 1 1 2
        // class 0: tp1 fp0 fn0 → 1; class 1: tp1 fp0 fn1 → P1 R.5 F 2/3; class 2: tp1 fp1 fn0 → P.5 R1 F 2/3
        // macro = (1 + 2/3 + 2/3)/3 = 7/9
        Assert.Equal(7.0 / 9, Metrics.F1Macro([0, 1, 2, 2], [0, 1, 1, 2]), 12);
        // class 3 only predicted: its F1 is 0 and it counts: (1 + 0)/2 with pred 0 3, gold 0 0 → class 0: tp1 fp0 fn1 → 2/3; class 3: 0 → 1/3
        Assert.Equal(1.0 / 3, Metrics.F1Macro([0, 3], [0, 0]), 12);
    }

    [Fact]
    public void Matthews_binary_multiclass_and_degenerate()
    {
        // binary: tp 3, tn 2, fp 1, fn 2 → (3·2 − 1·2)/√(4·5·3·4) = 4/√240
        Assert.Equal(4 / Math.Sqrt(240), Metrics.Matthews(P, G), 12);
        Assert.Equal(1, Metrics.Matthews([0, 1, 1], [0, 1, 1]), 12);
        Assert.Equal(-1, Metrics.Matthews([1, 0], [0, 1]), 12);
        // a constant prediction has a zero denominator → 0
        Assert.Equal(0, Metrics.Matthews([1, 1, 1], [0, 1, 1]));
        // 3 classes: pred 0 1 2 2, gold 0 1 1 2: c = 3, s = 4, t = (1,2,1), p = (1,1,2)
        // Σ t·p = 1 + 2 + 2 = 5; Σ p² = 6; Σ t² = 6 → (12 − 5)/√((16 − 6)(16 − 6)) = 7/10
        Assert.Equal(0.7, Metrics.Matthews([0, 1, 2, 2], [0, 1, 1, 2]), 12);
    }

    [Fact]
    public void Pearson_and_spearman_with_ties()
    {
        // x = 1 2 3 4 5, y = 2 4 5 4 5: means 3 and 4; dx = −2 −1 0 1 2, dy = −2 0 1 0 1
        // Σdxdy = 4 + 0 + 0 + 0 + 2 = 6; Σdx² = 10; Σdy² = 6 → r = 6/√60
        double[] x = [1, 2, 3, 4, 5], y = [2, 4, 5, 4, 5];
        Assert.Equal(6 / Math.Sqrt(60), Metrics.Pearson(x, y), 12);
        // ranks of y with ties averaged: 2→1, 4,4→2.5, 5,5→4.5 → (1, 2.5, 4.5, 2.5, 4.5); mean 3
        Assert.Equal([1, 2.5, 4.5, 2.5, 4.5], Metrics.Ranks(y));
        // d = −2 −.5 1.5 −.5 1.5; Σdx·d = 4 + .5 + 0 − .5 + 3 = 7; Σd² = 4 + .25 + 2.25 + .25 + 2.25 = 9 → ρ = 7/√90
        Assert.Equal(7 / Math.Sqrt(90), Metrics.Spearman(x, y), 12);
        // monotone but non-linear: Spearman 1, Pearson < 1
        double[] cube = [1, 8, 27, 64, 125];
        Assert.Equal(1, Metrics.Spearman(x, cube), 12);
        Assert.True(Metrics.Pearson(x, cube) < 0.99);
        Assert.True(double.IsNaN(Metrics.Pearson(x, [3, 3, 3, 3, 3])));
    }

    [Fact]
    public void Token_accuracy_skips_ignored_positions()
    {
        // sentence 1: 3 scored, 2 right; sentence 2: −100 skipped, 1 scored, right → 3/4
        int[][] pred = [[1, 2, 3], [9, 4]];
        int[][] gold = [[1, 2, 0], [-100, 4]];
        Assert.Equal(0.75, Metrics.TokenAccuracy(pred, gold), 12);
        Assert.Throws<ArgumentException>(() => Metrics.TokenAccuracy([[1]], [[1, 2]]));
    }

    [Fact]
    public void Mean_and_sample_std()
    {
        // 80, 84, 88: mean 84, sample var (16 + 0 + 16)/2 = 16 → std 4
        var (m, s) = Metrics.MeanStd([80, 84, 88]);
        Assert.Equal(84, m, 12);
        Assert.Equal(4, s, 12);
        Assert.Equal((5.0, 0.0), Metrics.MeanStd([5]));
    }

    [Fact]
    public void Mismatched_lengths_are_errors()
    {
        Assert.Throws<ArgumentException>(() => Metrics.Accuracy([1], [1, 0]));
        Assert.Throws<ArgumentException>(() => Metrics.Accuracy([], []));
    }
}
