using BertSharp.Evaluation;
using Xunit;

namespace BertSharp.Tests.Evaluation;

/// <summary>SQuAD EM/F1 with evaluate-v1.1.py's normalize_answer (lower → remove punctuation → remove a/an/the → collapse whitespace).</summary>
public class SquadMetricsTests
{
    [Theory]
    [InlineData("The Quick, brown fox!", "quick brown fox")]
    [InlineData("  An  apple a day ", "apple day")]
    [InlineData("theater and anthem", "theater and anthem")]   // articles only as whole words
    [InlineData("the-end", "theend")]                           // punctuation goes first, so the hyphen joins the words
    [InlineData("a.b.", "ab")]
    [InlineData("$1,000", "1000")]
    [InlineData("\u201cquoted\u201d", "\u201cquoted\u201d")]    // string.punctuation is ASCII only
    [InlineData("The", "")]
    public void Normalize(string input, string expected) => Assert.Equal(expected, SquadMetrics.Normalize(input));

    [Fact]
    public void Token_f1_counts_shared_tokens_as_a_multiset()
    {
        // "cat sat" vs "cat sat down": 2 shared; P = 2/2, R = 2/3 → F1 = 2·1·(2/3)/(5/3) = 0.8
        Assert.Equal(0.8, SquadMetrics.F1("the cat sat", "a cat sat down"), 12);
        // "cat cat cat" vs "cat": shared min(3, 1) = 1; P = 1/3, R = 1 → F1 = 0.5
        Assert.Equal(0.5, SquadMetrics.F1("cat cat cat", "cat"), 12);
        Assert.Equal(0, SquadMetrics.F1("dog", "cat"));
        Assert.True(SquadMetrics.ExactMatch("Denver Broncos.", "the denver broncos"));
        Assert.False(SquadMetrics.ExactMatch("Denver", "Denver Broncos"));
    }

    [Fact]
    public void Evaluate_takes_the_max_over_gold_answers_and_scores_missing_predictions_zero()
    {
        var gold = new Dictionary<string, IReadOnlyList<string>>
        {
            ["q1"] = ["Denver Broncos", "Broncos"],
            ["q2"] = ["a cat sat down", "dog"],
            ["q3"] = ["Paris"],
        };
        var pred = new Dictionary<string, string> { ["q1"] = "Broncos", ["q2"] = "the cat sat" };
        // q1: EM 1, F1 1; q2: EM 0, F1 max(0.8, 0) = 0.8; q3: no prediction → 0, 0
        // EM = 100·1/3, F1 = 100·1.8/3 = 60
        var s = SquadMetrics.Evaluate(pred, gold);
        Assert.Equal(100.0 / 3, s.ExactMatch, 9);
        Assert.Equal(60, s.F1, 9);
        Assert.Equal(3, s.Count);
    }

    [Fact]
    public void Version_two_no_answer()
    {
        var gold = new Dictionary<string, IReadOnlyList<string>> { ["q1"] = [], ["q2"] = [], ["q3"] = ["x"] };
        // q1 "" vs no answer → 1/1; q2 "x" vs no answer → 0/0; q3 "" vs "x" → 0/0 → EM = F1 = 100/3
        var s = SquadMetrics.Evaluate(new Dictionary<string, string> { ["q1"] = "", ["q2"] = "x", ["q3"] = "" }, gold);
        Assert.Equal(100.0 / 3, s.ExactMatch, 9);
        Assert.Equal(100.0 / 3, s.F1, 9);
    }
}
