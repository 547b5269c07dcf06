using BertSharp.Tokenization;

namespace BertSharp.Data.Tasks;

/// <summary>Options of <see cref="SquadFeaturizer"/> (HF run_qa / Google run_squad defaults).</summary>
public sealed record SquadFeatureOptions
{
    /// <summary>Tokens per window including [CLS] question [SEP] … [SEP].</summary>
    public int MaxLength { get; init; } = 384;
    /// <summary>Overlap between consecutive context windows, in tokens (HF's <c>stride</c> = <c>doc_stride</c>).</summary>
    public int DocStride { get; init; } = 128;
    /// <summary>Questions longer than this many tokens are cut to it (Google's <c>max_query_length</c>).</summary>
    public int MaxQueryLength { get; init; } = 64;
}

/// <summary>
/// SQuAD examples → windows, with the semantics of HF's <c>prepare_train_features</c> /
/// <c>prepare_validation_features</c>: the question's leading whitespace is stripped, the pair is encoded with
/// truncation only_second, <c>max_length</c> and <c>stride = doc_stride</c>, and every overflowing window becomes a row.
/// Training positions: the first gold answer's token span when the window holds the whole answer, else
/// (0, 0) = [CLS] (also for unanswerable questions).
/// </summary>
public static class SquadFeaturizer
{
    public static List<TaskFeature> Featurize(BertTokenizer tokenizer, IReadOnlyList<SquadExample> examples, SquadFeatureOptions? options = null)
    {
        options ??= new SquadFeatureOptions();
        var encodeOptions = new EncodeOptions
        {
            MaxLength = options.MaxLength, Truncation = TruncationStrategy.OnlySecond, Stride = options.DocStride, ReturnOverflowing = true,
        };
        var features = new List<TaskFeature>();
        for (int i = 0; i < examples.Count; i++)
        {
            var ex = examples[i];
            var question = LimitQuestion(tokenizer, ex.Question.TrimStart(), options.MaxQueryLength);
            var enc = tokenizer.Encode(question, ex.Context, encodeOptions);
            var windows = new List<BertEncoding>(1 + enc.Overflowing.Count) { enc };
            windows.AddRange(enc.Overflowing);
            for (int w = 0; w < windows.Count; w++)
            {
                var e = windows[w];
                var offsets = new (int, int)[e.Length];
                int first = -1, last = -1;
                for (int t = 0; t < e.Length; t++)
                {
                    if (e.SequenceIds[t] == 1)
                    {
                        offsets[t] = e.Offsets[t];
                        if (first < 0) first = t;
                        last = t;
                    }
                    else offsets[t] = (-1, -1);
                }
                int startPos = 0, endPos = 0;
                if (!ex.IsImpossible && ex.Answers.Count > 0 && first >= 0)
                {
                    int startChar = ex.Answers[0].Start, endChar = ex.Answers[0].End;
                    if (e.Offsets[first].Start <= startChar && e.Offsets[last].End >= endChar)
                    {
                        int s = first;
                        while (s <= last && e.Offsets[s].Start <= startChar) s++;
                        startPos = s - 1;
                        int en = last;
                        while (en >= first && e.Offsets[en].End >= endChar) en--;
                        endPos = en + 1;
                    }
                }
                features.Add(new TaskFeature
                {
                    InputIds = e.InputIds, TokenTypeIds = e.TokenTypeIds, ExampleIndex = i, Window = w,
                    StartPosition = startPos, EndPosition = endPos, ContextOffsets = offsets,
                });
            }
        }
        return features;
    }

    /// <summary>The question cut after its <paramref name="maxTokens"/>-th sub-token (at that token's end offset).</summary>
    public static string LimitQuestion(BertTokenizer tokenizer, string question, int maxTokens)
    {
        if (maxTokens <= 0) throw new ArgumentOutOfRangeException(nameof(maxTokens), maxTokens, "max_query_length must be positive");
        var tokens = tokenizer.TokenizeWithOffsets(question);
        if (tokens.Count <= maxTokens) return question;
        return question[..tokens[maxTokens - 1].End];
    }
}

/// <summary>One candidate answer of the n-best list.</summary>
/// <param name="Start">UTF-16 start in the context (−1 for the null answer).</param>
public sealed record SquadCandidate(string Text, int Start, int End, float StartLogit, float EndLogit, double Probability)
{
    public float Score => StartLogit + EndLogit;
}

/// <summary>The answer to one question.</summary>
/// <param name="Text">The answer text ("" = no answer, SQuAD v2).</param>
/// <param name="Start">UTF-16 start of the answer in the context (−1 for no answer).</param>
/// <param name="ScoreDiff">v2: null score − best span score (the value compared with the threshold); 0 for v1.</param>
public sealed record SquadPrediction(string Id, string Text, int Start, int End, double Probability, double ScoreDiff, IReadOnlyList<SquadCandidate> NBest);

/// <summary>Options of <see cref="SquadPostProcessor"/> (HF <c>postprocess_qa_predictions</c> defaults).</summary>
public sealed record SquadPostProcessOptions
{
    public int NBestSize { get; init; } = 20;
    public int MaxAnswerLength { get; init; } = 30;
    /// <summary>SQuAD v2: allow the null answer.</summary>
    public bool VersionTwoWithNegative { get; init; }
    /// <summary>v2: predict "" when null score − best span score exceeds this.</summary>
    public double NullScoreDiffThreshold { get; init; }
}

/// <summary>
/// Start/end logits of every window → answer text per question, as HF's <c>postprocess_qa_predictions</c>: for each
/// window the <c>n_best</c> highest start and end logits are paired; pairs outside the context, with end &lt; start or
/// longer than <c>max_answer_length</c> tokens are dropped; score = start + end logit; the null score is the lowest
/// [CLS] score over the windows; the n-best are sorted by score and get softmax probabilities; the text is sliced
/// from the context by the character offsets. v1: the best span. v2: "" when null score − best span &gt; threshold.
/// </summary>
public static class SquadPostProcessor
{
    public static List<SquadPrediction> Predict(IReadOnlyList<SquadExample> examples, IReadOnlyList<TaskFeature> features,
        IReadOnlyList<float[]> startLogits, IReadOnlyList<float[]> endLogits, SquadPostProcessOptions? options = null)
    {
        options ??= new SquadPostProcessOptions();
        if (features.Count != startLogits.Count || features.Count != endLogits.Count)
            throw new ArgumentException($"{features.Count} features but {startLogits.Count} start and {endLogits.Count} end logit rows");
        var byExample = new List<int>[examples.Count];
        for (int f = 0; f < features.Count; f++)
            (byExample[features[f].ExampleIndex] ??= new List<int>()).Add(f);
        var result = new List<SquadPrediction>(examples.Count);
        for (int e = 0; e < examples.Count; e++)
        {
            var ex = examples[e];
            var prelim = new List<(int Start, int End, float S, float E)>();
            (float S, float E)? minNull = null;
            foreach (var f in byExample[e] ?? [])
            {
                var feat = features[f];
                var offsets = feat.ContextOffsets ?? throw new ArgumentException($"feature {f} is not a QA feature");
                var s = startLogits[f];
                var en = endLogits[f];
                float nullScore = s[0] + en[0];
                if (minNull is null || minNull.Value.S + minNull.Value.E > nullScore) minNull = (s[0], en[0]);
                int n = Math.Min(offsets.Length, Math.Min(s.Length, en.Length));
                var starts = TopIndices(s, n, options.NBestSize);
                var ends = TopIndices(en, n, options.NBestSize);
                foreach (var si in starts)
                    foreach (var ei in ends)
                    {
                        if (offsets[si].Start < 0 || offsets[ei].Start < 0) continue;
                        if (ei < si || ei - si + 1 > options.MaxAnswerLength) continue;
                        prelim.Add((offsets[si].Start, offsets[ei].End, s[si], en[ei]));
                    }
            }
            bool v2 = options.VersionTwoWithNegative && minNull is not null;
            if (v2) prelim.Add((-1, -1, minNull!.Value.S, minNull.Value.E));
            var top = prelim.OrderByDescending(p => p.S + p.E).Take(options.NBestSize).ToList();
            if (v2 && !top.Any(p => p.Start < 0)) top.Add((-1, -1, minNull!.Value.S, minNull.Value.E));
            var cands = top.Select(p => (Text: p.Start < 0 ? "" : ex.Context[p.Start..p.End], p.Start, p.End, p.S, p.E)).ToList();
            if (cands.Count == 0 || (cands.Count == 1 && cands[0].Text.Length == 0))
                cands.Insert(0, ("empty", -1, -1, 0f, 0f));
            double max = cands.Max(c => (double)c.S + c.E);
            var exps = cands.Select(c => Math.Exp(c.S + (double)c.E - max)).ToArray();
            double sum = exps.Sum();
            var nbest = cands.Select((c, i) => new SquadCandidate(c.Text, c.Start, c.End, c.S, c.E, exps[i] / sum)).ToList();
            if (!options.VersionTwoWithNegative)
            {
                var b = nbest[0];
                result.Add(new SquadPrediction(ex.Id, b.Text, b.Start, b.End, b.Probability, 0, nbest));
                continue;
            }
            int k = 0;
            while (k < nbest.Count - 1 && nbest[k].Text.Length == 0) k++;
            var best = nbest[k];
            double diff = minNull is null ? double.NegativeInfinity : (double)minNull.Value.S + minNull.Value.E - best.StartLogit - best.EndLogit;
            if (diff > options.NullScoreDiffThreshold || best.Text.Length == 0)
            {
                var nul = nbest.FirstOrDefault(c => c.Start < 0 && c.Text.Length == 0);
                result.Add(new SquadPrediction(ex.Id, "", -1, -1, nul?.Probability ?? 0, diff, nbest));
            }
            else result.Add(new SquadPrediction(ex.Id, best.Text, best.Start, best.End, best.Probability, diff, nbest));
        }
        return result;
    }

    /// <summary>Indices of the <paramref name="k"/> largest of the first <paramref name="n"/> values, largest first (ties: lower index first).</summary>
    internal static int[] TopIndices(float[] values, int n, int k) =>
        Enumerable.Range(0, n).OrderByDescending(i => values[i]).ThenBy(i => i).Take(k).ToArray();
}
