using BertSharp.Data.Tasks;
using BertSharp.Evaluation;
using BertSharp.Tokenization;
using Xunit;

namespace BertSharp.Tests.Data.Tasks;

/// <summary>Featurization with the real bert-base-uncased vocabulary.</summary>
public class FeaturizationTests
{
    const string Vocab = TestAssets.UncasedVocab;
    static BertTokenizer Tok() => BertTokenizer.FromVocabFile(TestAssets.Path(Vocab), new BertTokenizerOptions { DoLowerCase = true });

    static TextExample Ex(string a, string? b = null, int? label = null) => new("x", a, b, label, null, 1);

    [AssetFact(Vocab)]
    public void Single_and_pair_ids_types_and_longest_first_truncation()
    {
        var tok = Tok();
        // bert-base-uncased ids: [CLS]=101, [SEP]=102, hello=7592, world=2088, the=1996, cat=4937
        var f = TextFeaturizer.Featurize(tok, [Ex("Hello world", null, 1), Ex("Hello", "the cat", 0)]);
        Assert.Equal([101, 7592, 2088, 102], f[0].InputIds);
        Assert.Equal([0, 0, 0, 0], f[0].TokenTypeIds);
        Assert.Equal(1, f[0].Label);
        Assert.Equal([101, 7592, 102, 1996, 4937, 102], f[1].InputIds);
        Assert.Equal([0, 0, 0, 1, 1, 1], f[1].TokenTypeIds);
        Assert.Equal(1, f[1].ExampleIndex);
        // longest_first with max_length 7: 4 special+content budget 4 for 3 + 3 tokens → cut one at a time from the longer
        // (ties: the second) → 2 + 2.
        var t = TextFeaturizer.Featurize(tok, [Ex("the cat the", "cat the cat")], new TextFeatureOptions { MaxLength = 7 });
        Assert.Single(t);
        Assert.Equal([101, 1996, 4937, 102, 4937, 1996, 102], t[0].InputIds);
    }

    [AssetFact(Vocab)]
    public void Windows_cover_a_long_text_with_the_given_overlap_and_mean_aggregation()
    {
        var tok = Tok();
        var words = Enumerable.Range(0, 25).Select(i => i % 2 == 0 ? "cat" : "the").ToArray(); // 25 single-piece tokens
        var f = TextFeaturizer.Featurize(tok, [Ex(string.Join(' ', words), null, 1), Ex("the cat", null, 0)],
            new TextFeatureOptions { MaxLength = 12, Windows = true, Stride = 4 });
        // 10 content tokens per window, step 10 − 4 = 6: [0,10) [6,16) [12,22) [18,25) → 4 windows, then the short example
        Assert.Equal(5, f.Count);
        Assert.Equal([0, 0, 0, 0, 1], f.Select(x => x.ExampleIndex).ToArray());
        Assert.Equal([0, 1, 2, 3, 0], f.Select(x => x.Window).ToArray());
        Assert.Equal([12, 12, 12, 9, 4], f.Select(x => x.Length).ToArray());
        Assert.All(f.Take(4), x => Assert.Equal(1, x.Label));
        Assert.All(f, x => { Assert.Equal(101, x.InputIds[0]); Assert.Equal(102, x.InputIds[^1]); });
        int Id(string w) => w == "cat" ? 4937 : 1996;
        Assert.Equal(words[6..16].Select(Id), f[1].InputIds[1..^1]);
        Assert.Equal(words[18..25].Select(Id), f[3].InputIds[1..^1]);

        // mean over windows: example 0 = ((1+3+5+7)/4, (0+0+0+4)/4) = (4, 1); example 1 is its single row
        float[][] logits = [[1, 0], [3, 0], [5, 0], [7, 4], [-2, 2]];
        var mean = WindowAggregation.MeanByExample(f, logits, 2);
        Assert.Equal([4f, 1f], mean[0]);
        Assert.Equal([-2f, 2f], mean[1]);
        Assert.Equal(0, WindowAggregation.ArgMax(mean[0]));
        Assert.Equal(1, WindowAggregation.ArgMax(mean[1]));
    }

    [AssetFact(Vocab)]
    public void Token_labels_on_the_first_sub_token_and_word_ids()
    {
        var tok = Tok();
        string[] words = ["Unaffable", "beat", "hypercholesterolemia", "\u200b", "."];
        var pieces = words.Select(w => tok.EncodeIds(w, null, false).Length).ToArray();
        Assert.True(pieces[0] > 1 && pieces[2] > 1, "the test needs multi-piece words"); // un ##aff ##able, hyper ##cho …
        Assert.Equal(0, pieces[3]); // a zero-width space has no token: it becomes [UNK]
        var ex = new TokenExample("0", words, ["B-ORG", "O", "B-ORG", "O", "O"], 1);
        var ds = new TokenDataset("mem", [ex]);
        var tags = ds.TagIds(FineTuneTasks.ConllNerLabels);
        var f = TokenFeaturizer.Featurize(tok, ds.Examples, tags, new TokenFeatureOptions { MaxLength = 64 });
        var feat = Assert.Single(f);
        int n = pieces.Sum() + 1 /*[UNK]*/ + 2;
        Assert.Equal(n, feat.Length);
        var expectedWords = new List<int> { -1 };
        var expectedLabels = new List<int> { -100 };
        for (int w = 0; w < words.Length; w++)
            for (int k = 0; k < Math.Max(1, pieces[w]); k++)
            {
                expectedWords.Add(w);
                expectedLabels.Add(k == 0 ? tags[0][w] : -100);
            }
        expectedWords.Add(-1);
        expectedLabels.Add(-100);
        Assert.Equal(expectedWords, feat.WordIds!);
        Assert.Equal(expectedLabels, feat.TokenLabels!);
        Assert.Equal(3, feat.TokenLabels![1]); // B-ORG is id 3 in the HF conll2003 order
        Assert.Equal(tok.UnkId, feat.InputIds[Array.IndexOf(feat.WordIds!, 3)]);
        Assert.Equal(expectedLabels.Select(l => l != -100).ToArray(), feat.IsWordStart!);
        // unlabelled (prediction) features carry word ids but no labels
        var p = TokenFeaturizer.Featurize(tok, ds.Examples, null);
        Assert.Null(p[0].TokenLabels);
        Assert.Equal(feat.InputIds, p[0].InputIds);
    }

    [AssetFact(Vocab)]
    public void Token_windows_predict_every_word_first_window_or_max()
    {
        var tok = Tok();
        var words = Enumerable.Range(0, 20).Select(i => i % 2 == 0 ? "cat" : "the").ToArray(); // one piece each
        var ds = new TokenDataset("mem", [new TokenExample("0", words, null, 1)]);
        var f = TokenFeaturizer.Featurize(tok, ds.Examples, null, new TokenFeatureOptions { MaxLength = 10, Stride = 3 });
        // 8 pieces per window, step 5: [0,8) [5,13) [10,18) [15,20)
        Assert.Equal(4, f.Count);
        Assert.Equal([0, 1, 2, 3, 4, 5, 6, 7], f[0].WordIds![1..^1]);
        Assert.Equal([15, 16, 17, 18, 19], f[3].WordIds![1..^1]);
        // logits of window k at every token: [k, 10 − k]; word 6 is in windows 0 and 1.
        var logits = f.Select((x, k) => Enumerable.Range(0, x.Length).Select(_ => new float[] { k, 10 - k }).ToArray()).ToArray();
        var first = TokenFeaturizer.WordLogits(f, logits, [20], TokenAggregation.FirstWindow);
        var max = TokenFeaturizer.WordLogits(f, logits, [20], TokenAggregation.Max);
        Assert.Equal([0f, 10f], first[0][6]!);
        Assert.Equal([1f, 10f], max[0][6]!); // element-wise max of [0,10] and [1,9]
        Assert.Equal([3f, 7f], first[0][19]!);
        Assert.All(first[0], Assert.NotNull);
        // truncation without windows: words past the cut get no logits → the fallback label
        var cut = TokenFeaturizer.Featurize(tok, ds.Examples, null, new TokenFeatureOptions { MaxLength = 10, Windows = false });
        var single = Assert.Single(cut);
        var wl = TokenFeaturizer.WordLogits(cut, [Enumerable.Range(0, single.Length).Select(_ => new float[] { 0, 1 }).ToArray()], [20]);
        Assert.Equal(8, wl[0].Count(l => l is not null));
        var pred = TokenFeaturizer.WordPredictions(wl, fallbackLabel: 0);
        Assert.Equal(Enumerable.Repeat(1, 8).Concat(Enumerable.Repeat(0, 12)), pred[0]);
    }

    [AssetFact(Vocab, "assets/data/squad/dev-v1.1.json")]
    public void Squad_windows_positions_and_oracle_post_processing()
    {
        var tok = Tok();
        var all = SquadReader.Read(TestAssets.Path("assets/data/squad/dev-v1.1.json"));
        var examples = all.Examples.Where(e => e.ArticleIndex < 3).ToArray(); // Super_Bowl_50, Warsaw, Normans
        var opts = new SquadFeatureOptions { MaxLength = 192, DocStride = 64, MaxQueryLength = 32 };
        var f = SquadFeaturizer.Featurize(tok, examples, opts);
        Assert.True(f.Count > examples.Length, "some contexts need several windows at max_length 192");
        var covered = new bool[examples.Length];
        foreach (var feat in f)
        {
            var ex = examples[feat.ExampleIndex];
            Assert.True(feat.Length <= opts.MaxLength);
            Assert.Equal(101, feat.InputIds[0]);
            var ctx = Enumerable.Range(0, feat.Length).Where(t => feat.ContextOffsets![t].Start >= 0).ToArray();
            Assert.Equal(Enumerable.Range(ctx[0], ctx.Length), ctx); // context tokens are contiguous, type 1
            Assert.All(ctx, t => Assert.Equal(1, feat.TokenTypeIds[t]));
            int qTokens = ctx[0] - 2;
            Assert.True(qTokens <= opts.MaxQueryLength);
            var a = ex.Answers[0];
            bool inside = feat.ContextOffsets![ctx[0]].Start <= a.Start && feat.ContextOffsets[ctx[^1]].End >= a.End;
            if (!inside) { Assert.Equal((0, 0), (feat.StartPosition, feat.EndPosition)); continue; }
            covered[feat.ExampleIndex] = true;
            int s = feat.StartPosition, e = feat.EndPosition;
            Assert.InRange(s, ctx[0], ctx[^1]);
            Assert.InRange(e, s, ctx[^1]);
            // the smallest token span that covers the answer's characters
            Assert.True(feat.ContextOffsets[s].Start <= a.Start && feat.ContextOffsets[e].End >= a.End);
            if (s < ctx[^1]) Assert.True(feat.ContextOffsets[s + 1].Start > a.Start);
            if (e > ctx[0]) Assert.True(feat.ContextOffsets[e - 1].End < a.End);
        }
        Assert.All(covered, Assert.True);
        // consecutive windows of one example overlap by doc_stride context tokens
        var ex0 = f.Where(x => x.ExampleIndex == f.First(y => y.Window == 1).ExampleIndex).ToArray();
        var c0 = ex0[0].ContextOffsets!.Where(o => o.Start >= 0).ToArray();
        var c1 = ex0[1].ContextOffsets!.Where(o => o.Start >= 0).ToArray();
        Assert.Equal(c0[^opts.DocStride..], c1[..opts.DocStride]);

        // Oracle logits (10 at the gold start/end of windows that hold the answer, 0 elsewhere) → post-processing recovers
        // the gold answers up to token boundaries.
        float[] Oracle(TaskFeature x, int pos) { var v = new float[x.Length]; if (pos > 0) v[pos] = 10; return v; }
        var preds = SquadPostProcessor.Predict(examples, f, f.Select(x => Oracle(x, x.StartPosition)).ToArray(), f.Select(x => Oracle(x, x.EndPosition)).ToArray());
        var score = SquadMetrics.Evaluate(preds.ToDictionary(p => p.Id, p => p.Text),
            examples.ToDictionary(e => e.Id, e => (IReadOnlyList<string>)e.Answers.Select(a => a.Text).ToArray()));
        // Measured on these 3 articles (1,169 questions): EM = F1 = 98.63. The misses are answers that are part of one
        // word piece ("gold" inside "golden", "8" inside "18"): the smallest token span covering them is the whole piece,
        // exactly what the HF features give; every prediction still contains its first gold answer.
        Assert.True(score.ExactMatch > 98.5 && score.F1 > 98.5, $"oracle EM {score.ExactMatch:F2} F1 {score.F1:F2}");
        Assert.All(preds, p => Assert.Contains(examples.First(e => e.Id == p.Id).Answers[0].Text, p.Text));
        Assert.All(preds, p => Assert.Equal(examples.First(e => e.Id == p.Id).Context[p.Start..p.End], p.Text));
    }

    static TaskFeature QaFeature(int example, params (int, int)[] offsets) => new()
    {
        InputIds = new int[offsets.Length], TokenTypeIds = new int[offsets.Length], ExampleIndex = example, ContextOffsets = offsets,
    };

    [Fact]
    public void Post_processing_rules_by_hand()
    {
        // context "The cat sat on the mat." tokens: [CLS] q [SEP] the cat sat on the mat . [SEP]
        const string context = "The cat sat on the mat.";
        var ex = new SquadExample("q1", "T", 0, context, "Where?", [new SquadAnswer("the mat", 15)], false);
        (int, int)[] offsets = [(-1, -1), (-1, -1), (-1, -1), (0, 3), (4, 7), (8, 11), (12, 14), (15, 18), (19, 22), (22, 23), (-1, -1)];
        var f = QaFeature(0, offsets);
        //                  CLS  q    SEP  the  cat  sat  on   the  mat  .    SEP
        float[] start = [2.0f, 9.0f, 0f, 0.5f, 1.0f, 0f, 0f, 3.0f, 1.5f, 0f, 0f];
        float[] end = [2.0f, 0f, 9.0f, 0f, 2.5f, 0f, 0f, 0f, 4.0f, 0f, 0f];
        // candidates: start ∈ context, end ∈ context, end ≥ start. Best: start 7 (3.0) + end 8 (4.0) = 7.0 → "the mat".
        // start 1 / end 2 (9 + 9) are question/special tokens and are skipped; null score = 2 + 2 = 4.
        var v1 = SquadPostProcessor.Predict([ex], [f], [start], [end]).Single();
        Assert.Equal("the mat", v1.Text);
        Assert.Equal((15, 22), (v1.Start, v1.End));
        Assert.Equal(7.0f, v1.NBest[0].Score);
        // second: start 8 (1.5) + end 8 (4.0) = 5.5 "mat"; third: start 4 (1.0) + end 8 = 5.0 "cat sat on the mat"
        Assert.Equal(["the mat", "mat", "cat sat on the mat"], v1.NBest.Take(3).Select(c => c.Text));
        // probabilities are a softmax over the n-best scores
        Assert.Equal(1.0, v1.NBest.Sum(c => c.Probability), 6);
        Assert.Equal(Math.Exp(7.0 - 7.0) / v1.NBest.Sum(c => Math.Exp(c.Score - 7.0)), v1.Probability, 6);

        // max_answer_length 1: only one-token spans: "mat" (start 8 + end 8 = 5.5) wins over "cat" (1.0 + 2.5)
        var short1 = SquadPostProcessor.Predict([ex], [f], [start], [end], new SquadPostProcessOptions { MaxAnswerLength = 1 }).Single();
        Assert.Equal("mat", short1.Text);

        // v2: null score 4 − best span 7 = −3 ≤ threshold 0 → the span; with a [CLS] score of 5 + 5 = 10 → diff 3 > 0 → ""
        var v2 = SquadPostProcessor.Predict([ex], [f], [start], [end], new SquadPostProcessOptions { VersionTwoWithNegative = true }).Single();
        Assert.Equal("the mat", v2.Text);
        Assert.Equal(-3.0, v2.ScoreDiff, 6);
        float[] start2 = [.. start]; start2[0] = 5;
        float[] end2 = [.. end]; end2[0] = 5;
        var none = SquadPostProcessor.Predict([ex], [f], [start2], [end2], new SquadPostProcessOptions { VersionTwoWithNegative = true }).Single();
        Assert.Equal("", none.Text);
        Assert.Equal(3.0, none.ScoreDiff, 6);
        // a threshold above the difference keeps the span
        var kept = SquadPostProcessor.Predict([ex], [f], [start2], [end2], new SquadPostProcessOptions { VersionTwoWithNegative = true, NullScoreDiffThreshold = 3.5 }).Single();
        Assert.Equal("the mat", kept.Text);

        // two windows: the null score is the minimum over windows; the best span may come from either window
        var g = QaFeature(0, [(-1, -1), (-1, -1), (15, 18), (19, 22), (-1, -1)]);
        float[] gs = [1f, 0f, 0f, 8f, 0f], ge = [1f, 0f, 0f, 8f, 0f];
        var two = SquadPostProcessor.Predict([ex], [f, g], [start, gs], [end, ge], new SquadPostProcessOptions { VersionTwoWithNegative = true }).Single();
        Assert.Equal("mat", two.Text); // 16 beats 7
        Assert.Equal(2.0 - 16.0, two.ScoreDiff, 6); // min null = 1 + 1 = 2
    }

    [Fact]
    public void Length_bucketed_batches_are_seeded_complete_and_sorted_within_pools()
    {
        var rng = new Random(3);
        var lengths = Enumerable.Range(0, 1000).Select(_ => rng.Next(5, 200)).ToArray();
        var a = LengthBucketBatcher.Batches(lengths, 16, seed: 11, epoch: 0, poolBatches: 10);
        var b = LengthBucketBatcher.Batches(lengths, 16, seed: 11, epoch: 0, poolBatches: 10);
        var c = LengthBucketBatcher.Batches(lengths, 16, seed: 11, epoch: 1, poolBatches: 10);
        Assert.Equal(a.SelectMany(x => x), b.SelectMany(x => x));
        Assert.NotEqual(a.SelectMany(x => x), c.SelectMany(x => x));
        Assert.Equal(Enumerable.Range(0, 1000), a.SelectMany(x => x).Order());
        Assert.Equal(63, a.Count); // 62 full batches + one of 8
        Assert.Equal(1, a.Count(x => x.Length != 16));
        Assert.All(a, x => Assert.Equal(x.Select(i => lengths[i]).Order(), x.Select(i => lengths[i]))); // sorted inside a batch
        long Padded(List<int[]> batches) => batches.Sum(x => (long)x.Length * x.Max(i => lengths[i]));
        var plain = LengthBucketBatcher.Batches(lengths, 16, seed: 11, epoch: 0, poolBatches: 0);
        Assert.True(Padded(a) < 0.75 * Padded(plain), $"bucketed {Padded(a)} vs plain {Padded(plain)} padded tokens");
        Assert.Equal(62, LengthBucketBatcher.Batches(lengths, 16, 11, 0, dropLast: true).Count);
        var eval = LengthBucketBatcher.Batches(lengths, 16, 11, 0, shuffle: false);
        Assert.Equal(Enumerable.Range(0, 1000), eval.SelectMany(x => x));
    }

    [Fact]
    public void Collate_pads_ids_masks_and_labels()
    {
        var f = new List<TaskFeature>
        {
            new() { InputIds = [101, 5, 102], TokenTypeIds = [0, 0, 0], ExampleIndex = 0, Label = 1, TokenLabels = [-100, 3, -100], Score = 2.5f, StartPosition = 1, EndPosition = 1 },
            new() { InputIds = [101, 6, 7, 8, 102], TokenTypeIds = [0, 0, 1, 1, 1], ExampleIndex = 1, Label = 0, TokenLabels = [-100, 1, -100, 2, -100], Score = 0.5f, StartPosition = 2, EndPosition = 3 },
        };
        using (var b = TaskBatch.Collate(f, [0, 1], padId: 0, TaskKind.SequenceClassification, padToMultipleOf: 4))
        {
            Assert.Equal(new long[] { 2, 8 }, b.InputIds.shape);
            Assert.Equal(new long[] { 101, 5, 102, 0, 0, 0, 0, 0, 101, 6, 7, 8, 102, 0, 0, 0 }, b.InputIds.data<long>().ToArray());
            Assert.Equal(new long[] { 1, 1, 1, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 0, 0, 0 }, b.AttentionMask.data<long>().ToArray());
            Assert.Equal(new long[] { 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 0, 0, 0 }, b.TokenTypeIds.data<long>().ToArray());
            Assert.Equal(new long[] { 1, 0 }, b.Labels!.data<long>().ToArray());
        }
        using (var b = TaskBatch.Collate(f, [1, 0], 0, TaskKind.TokenClassification))
            Assert.Equal(new long[] { -100, 1, -100, 2, -100, -100, 3, -100, -100, -100 }, b.Labels!.data<long>().ToArray());
        using (var b = TaskBatch.Collate(f, [0, 1], 0, TaskKind.Regression))
            Assert.Equal(new[] { 2.5f, 0.5f }, b.Labels!.data<float>().ToArray());
        using (var b = TaskBatch.Collate(f, [0, 1], 0, TaskKind.QuestionAnswering))
        {
            Assert.Equal(new long[] { 1, 2 }, b.StartPositions!.data<long>().ToArray());
            Assert.Equal(new long[] { 1, 3 }, b.EndPositions!.data<long>().ToArray());
        }
    }
}

public class TaskBatchSourceTests
{
    [Fact]
    public void Batch_source_is_deterministic_per_epoch_and_covers_every_feature()
    {
        var rng = new Random(5);
        var f = Enumerable.Range(0, 50).Select(i =>
        {
            int n = rng.Next(3, 40);
            return new TaskFeature { InputIds = Enumerable.Repeat(7, n).ToArray(), TokenTypeIds = new int[n], ExampleIndex = i, Label = i % 2 };
        }).ToList();
        var src = new TaskBatchSource(f, 8, padId: 0, TaskKind.SequenceClassification, seed: 3, poolBatches: 2);
        Assert.Equal(7, src.BatchesPerEpoch); // ceil(50 / 8)
        var seen = new List<int>();
        for (int i = 0; i < src.BatchesPerEpoch; i++)
        {
            using var b = src.GetBatch(1, i);
            Assert.Equal(b.Indices.Max(k => f[k].Length), b.SequenceLength); // padded to the batch's longest row only
            Assert.Equal(b.Indices.Select(k => (long)(k % 2)), b.Labels!.data<long>().ToArray());
            seen.AddRange(b.Indices);
        }
        Assert.Equal(Enumerable.Range(0, 50), seen.Order());
        var again = new TaskBatchSource(f, 8, 0, TaskKind.SequenceClassification, seed: 3, poolBatches: 2);
        using (var x = again.GetBatch(1, 4)) using (var y = src.GetBatch(1, 4)) Assert.Equal(x.Indices, y.Indices);
        Assert.NotEqual(src.Plan(0).SelectMany(p => p), src.Plan(1).SelectMany(p => p));
    }
}

public class LongTextWindowTests
{
    /// <summary>The longest review of small_train.jsonl (13,704 chars) in 512-token windows loses no token.</summary>
    [AssetFact(TestAssets.UncasedVocab, "assets/data/imdb/small_train.jsonl")]
    public void A_long_imdb_review_is_covered_by_its_windows()
    {
        var tok = BertTokenizer.FromVocabFile(TestAssets.Path(TestAssets.UncasedVocab), new BertTokenizerOptions { DoLowerCase = true });
        var ds = ImdbReader.Read(TestAssets.Path("assets/data/imdb/small_train.jsonl"));
        var longest = ds.Examples.MaxBy(e => e.Text.Length)!;
        Assert.Equal(13704, longest.Text.Length);
        var all = tok.EncodeIds(longest.Text, null, addSpecialTokens: false);
        const int stride = 128;
        var f = TextFeaturizer.Featurize(tok, [longest], new TextFeatureOptions { MaxLength = 512, Windows = true, Stride = stride });
        Assert.True(all.Length > 510 * 2, $"{all.Length} tokens");
        Assert.Equal((int)Math.Ceiling((all.Length - 510) / (double)(510 - stride)) + 1, f.Count);
        var rebuilt = new List<int>(f[0].InputIds[1..^1]);
        foreach (var w in f.Skip(1))
        {
            Assert.Equal(rebuilt.TakeLast(stride), w.InputIds[1..(1 + stride)]); // each window starts with the previous one's last `stride` tokens
            rebuilt.AddRange(w.InputIds[(1 + stride)..^1]);
        }
        Assert.Equal(all, rebuilt);
        Assert.All(f, w => Assert.True(w.Length <= 512));
    }
}
