using BertSharp.Tokenization;

namespace BertSharp.Data.Tasks;

/// <summary>
/// One model input row (unpadded). <see cref="ExampleIndex"/>/<see cref="Window"/> say which example and which of
/// its windows it is; the task-specific fields are null/unused for other tasks.
/// </summary>
public sealed class TaskFeature
{
    public required int[] InputIds { get; init; }
    public required int[] TokenTypeIds { get; init; }
    /// <summary>Index of the example (in the list given to the featurizer) this row comes from.</summary>
    public required int ExampleIndex { get; init; }
    /// <summary>0 for the first window of an example, 1 for the next …</summary>
    public int Window { get; init; }

    /// <summary>Classification label id (null when unlabelled or not a classification task).</summary>
    public int? Label { get; init; }
    /// <summary>Regression target.</summary>
    public float? Score { get; init; }

    /// <summary>Token classification: the word's label id on the first sub-token of each word, −100 elsewhere
    /// (continuation pieces, [CLS], [SEP]); null when unlabelled.</summary>
    public int[]? TokenLabels { get; init; }
    /// <summary>Token classification: the word index of every token, −1 for [CLS]/[SEP].</summary>
    public int[]? WordIds { get; init; }
    /// <summary>Token classification: true on the first sub-token of a word (the one whose prediction is the word's).</summary>
    public bool[]? IsWordStart { get; init; }

    /// <summary>QA: start/end token positions of the answer (0 = [CLS] when the window does not hold it).</summary>
    public int StartPosition { get; init; }
    public int EndPosition { get; init; }
    /// <summary>QA: UTF-16 [start, end) of every context token in the context, (−1, −1) for question and special tokens.</summary>
    public (int Start, int End)[]? ContextOffsets { get; init; }

    public int Length => InputIds.Length;
}

/// <summary>Options for text (single or pair) classification features.</summary>
public sealed record TextFeatureOptions
{
    /// <summary>Tokens per row including [CLS]/[SEP].</summary>
    public int MaxLength { get; init; } = 128;
    /// <summary>False: truncate longest_first (HF default). True: every overflowing part becomes another row (window)
    /// overlapping the previous by <see cref="Stride"/> tokens (the tokenizer's HF-fast overflow semantics).</summary>
    public bool Windows { get; init; }
    /// <summary>Overlap between consecutive windows, in tokens.</summary>
    public int Stride { get; init; } = 64;
}

/// <summary>
/// How the inputs of one <see cref="TextFeaturizer.Featurize(BertTokenizer, IReadOnlyList{TextExample}, TextFeatureOptions?, out TextWindowReport)"/>
/// call fitted <see cref="MaxLength"/>: without windows, <see cref="Truncated"/> inputs were cut; with windows
/// (<see cref="Stride"/> set), <see cref="Windowed"/> inputs became several rows, <see cref="Rows"/> in all.
/// </summary>
public sealed record TextWindowReport(int Examples, int Truncated, int Windowed, int Rows, int MaxLength, int? Stride)
{
    /// <summary>One line for logs: how many inputs were cut or windowed.</summary>
    public string Describe(string what = "inputs")
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        if (Stride is not { } s)
            return Truncated == 0
                ? string.Create(inv, $"{Examples} {what}, none longer than {MaxLength} tokens")
                : string.Create(inv, $"{Truncated} of {Examples} {what} were longer than {MaxLength} tokens and were cut (--stride S splits them into windows instead)");
        return Windowed == 0
            ? string.Create(inv, $"{Examples} {what}, none longer than {MaxLength} tokens (no windows needed)")
            : string.Create(inv, $"{Windowed} of {Examples} {what} were longer than {MaxLength} tokens and were split into windows overlapping by {s} tokens ({Rows} rows in all)");
    }
}

/// <summary>Single texts and pairs → ids / token types, with truncation or windows.</summary>
public static class TextFeaturizer
{
    /// <summary>One row per example (or several with <see cref="TextFeatureOptions.Windows"/>), labels copied.</summary>
    public static List<TaskFeature> Featurize(BertTokenizer tokenizer, IReadOnlyList<TextExample> examples, TextFeatureOptions? options = null) =>
        Featurize(tokenizer, examples, options, out _);

    /// <summary>
    /// As <see cref="Featurize(BertTokenizer, IReadOnlyList{TextExample}, TextFeatureOptions?)"/>, and how many inputs
    /// were cut (truncation) or windowed. Every window is a row carrying the example's label; the rows of one
    /// example are consecutive, in window order (HF fast tokenizer overflow order for pairs).
    /// </summary>
    public static List<TaskFeature> Featurize(BertTokenizer tokenizer, IReadOnlyList<TextExample> examples, TextFeatureOptions? options, out TextWindowReport report)
    {
        options ??= new TextFeatureOptions();
        if (options.Windows && options.Stride < 0) throw new ArgumentException($"stride must be non-negative (got {options.Stride})");
        var encodeOptions = new EncodeOptions
        {
            MaxLength = options.MaxLength,
            Truncation = TruncationStrategy.LongestFirst,
            Stride = options.Windows ? options.Stride : 0,
            // Also without windows: the overflow (what truncation cut) is how a cut input is recognised; the first
            // row is the plain truncated encoding either way.
            ReturnOverflowing = true,
        };
        var encodings = tokenizer.EncodeBatch(examples.Select(e => e.Text).ToArray(), examples.Select(e => e.TextPair).ToArray(), encodeOptions);
        var features = new List<TaskFeature>(examples.Count);
        int cut = 0;
        for (int i = 0; i < examples.Count; i++)
        {
            var e = examples[i];
            List<BertEncoding> rows = [encodings[i]];
            if (encodings[i].Overflowing.Count > 0) cut++;
            if (options.Windows) rows.AddRange(encodings[i].Overflowing);
            for (int w = 0; w < rows.Count; w++)
                features.Add(new TaskFeature
                {
                    InputIds = rows[w].InputIds, TokenTypeIds = rows[w].TokenTypeIds, ExampleIndex = i, Window = w,
                    Label = e.Label, Score = e.Score,
                });
        }
        report = options.Windows
            ? new TextWindowReport(examples.Count, 0, cut, features.Count, options.MaxLength, options.Stride)
            : new TextWindowReport(examples.Count, cut, 0, features.Count, options.MaxLength, null);
        return features;
    }
}

/// <summary>Combining per-window outputs into one per example.</summary>
public static class WindowAggregation
{
    /// <summary>Mean of the rows' logits per example (classification/regression over windows): a long input's
    /// prediction is the argmax (classification; probabilities = softmax of the mean logits) or the value (regression)
    /// of its windows' averaged logits, each window weighted equally.</summary>
    /// <param name="logits">One vector per feature (same order as <paramref name="features"/>).</param>
    public static float[][] MeanByExample(IReadOnlyList<TaskFeature> features, IReadOnlyList<float[]> logits, int exampleCount)
    {
        if (features.Count != logits.Count) throw new ArgumentException($"{features.Count} features but {logits.Count} logit rows");
        var sums = new double[exampleCount][];
        var counts = new int[exampleCount];
        for (int f = 0; f < features.Count; f++)
        {
            int e = features[f].ExampleIndex;
            sums[e] ??= new double[logits[f].Length];
            if (sums[e].Length != logits[f].Length) throw new ArgumentException($"feature {f}: {logits[f].Length} logits, expected {sums[e].Length}");
            for (int c = 0; c < logits[f].Length; c++) sums[e][c] += logits[f][c];
            counts[e]++;
        }
        var result = new float[exampleCount][];
        for (int e = 0; e < exampleCount; e++)
        {
            if (counts[e] == 0) throw new ArgumentException($"example {e} has no feature");
            result[e] = sums[e].Select(s => (float)(s / counts[e])).ToArray();
        }
        return result;
    }

    /// <summary>Index of the largest value (the first on ties).</summary>
    public static int ArgMax(ReadOnlySpan<float> values)
    {
        int best = 0;
        for (int i = 1; i < values.Length; i++)
            if (values[i] > values[best]) best = i;
        return best;
    }
}

/// <summary>Options for token classification features.</summary>
public sealed record TokenFeatureOptions
{
    public int MaxLength { get; init; } = 128;
    /// <summary>True: a sentence longer than MaxLength − 2 sub-tokens is cut into overlapping windows (every word is
    /// predicted); false: truncated (words past the cut get no prediction).</summary>
    public bool Windows { get; init; } = true;
    /// <summary>Overlap between consecutive windows, in sub-tokens.</summary>
    public int Stride { get; init; } = 32;
}

/// <summary>How per-window token logits become one per word.</summary>
public enum TokenAggregation
{
    /// <summary>The first window that holds the word's first sub-token decides.</summary>
    FirstWindow,
    /// <summary>Element-wise maximum of the word's logits over all windows holding its first sub-token.</summary>
    Max,
}

/// <summary>
/// Words (pre-split, as CoNLL gives them) → sub-tokens, with HF's labelling: the word's label on its first
/// sub-token, −100 on the others and on [CLS]/[SEP]; every token carries its word index. Each word is tokenized on its
/// own (HF <c>is_split_into_words</c>); a word that yields no sub-token (only control/zero-width characters) becomes
/// one [UNK] so that every word keeps a prediction.
/// </summary>
public static class TokenFeaturizer
{
    public const int IgnoreIndex = -100;

    /// <param name="tagIds">Label ids per word (from <see cref="TokenDataset.TagIds"/>), or null for prediction.</param>
    public static List<TaskFeature> Featurize(BertTokenizer tokenizer, IReadOnlyList<TokenExample> examples, int[][]? tagIds, TokenFeatureOptions? options = null)
    {
        options ??= new TokenFeatureOptions();
        int keep = options.MaxLength - 2;
        if (keep < 1) throw new ArgumentException($"max_length {options.MaxLength} leaves no room for tokens besides [CLS] and [SEP]");
        if (options.Windows && (options.Stride < 0 || options.Stride >= keep))
            throw new ArgumentException($"stride ({options.Stride}) must be non-negative and below max_length − 2 ({keep})");
        if (tagIds is not null && tagIds.Length != examples.Count) throw new ArgumentException($"{tagIds.Length} tag rows for {examples.Count} sentences");
        var features = new List<TaskFeature>();
        var pieces = new List<int>();
        var words = new List<int>();
        var starts = new List<bool>();
        for (int s = 0; s < examples.Count; s++)
        {
            var ex = examples[s];
            if (tagIds is not null && tagIds[s].Length != ex.Words.Length)
                throw new ArgumentException($"sentence {s}: {tagIds[s].Length} tags for {ex.Words.Length} words");
            pieces.Clear(); words.Clear(); starts.Clear();
            for (int w = 0; w < ex.Words.Length; w++)
            {
                var ids = tokenizer.EncodeIds(ex.Words[w], null, addSpecialTokens: false);
                if (ids.Length == 0) ids = [tokenizer.UnkId];
                for (int k = 0; k < ids.Length; k++)
                {
                    pieces.Add(ids[k]);
                    words.Add(w);
                    starts.Add(k == 0);
                }
            }
            int n = pieces.Count;
            int window = 0;
            for (int start = 0; ; start += keep - options.Stride)
            {
                int end = Math.Min(start + keep, n);
                int len = end - start + 2;
                var inputIds = new int[len];
                var wordIds = new int[len];
                var isStart = new bool[len];
                var labels = tagIds is null ? null : new int[len];
                inputIds[0] = tokenizer.ClsId; wordIds[0] = -1;
                inputIds[len - 1] = tokenizer.SepId; wordIds[len - 1] = -1;
                if (labels is not null) { labels[0] = IgnoreIndex; labels[len - 1] = IgnoreIndex; }
                for (int i = start; i < end; i++)
                {
                    int t = i - start + 1;
                    inputIds[t] = pieces[i];
                    wordIds[t] = words[i];
                    isStart[t] = starts[i];
                    if (labels is not null) labels[t] = starts[i] ? tagIds![s][words[i]] : IgnoreIndex;
                }
                features.Add(new TaskFeature
                {
                    InputIds = inputIds, TokenTypeIds = new int[len], ExampleIndex = s, Window = window++,
                    TokenLabels = labels, WordIds = wordIds, IsWordStart = isStart,
                });
                if (end == n || !options.Windows) break;
            }
        }
        return features;
    }

    /// <summary>
    /// Per-word logits from per-token logits: each word takes the logits at its first sub-token, combined over windows
    /// by <paramref name="aggregation"/>. A word no window holds (truncation without windows) gets null.
    /// </summary>
    /// <param name="logits">Per feature, per token (unpadded positions, at least the feature's length), the class logits.</param>
    /// <param name="wordCounts">Words per example.</param>
    public static float[]?[][] WordLogits(IReadOnlyList<TaskFeature> features, IReadOnlyList<float[][]> logits, IReadOnlyList<int> wordCounts,
        TokenAggregation aggregation = TokenAggregation.FirstWindow)
    {
        if (features.Count != logits.Count) throw new ArgumentException($"{features.Count} features but {logits.Count} logit rows");
        var result = new float[]?[wordCounts.Count][];
        for (int e = 0; e < wordCounts.Count; e++) result[e] = new float[]?[wordCounts[e]];
        for (int f = 0; f < features.Count; f++)
        {
            var feat = features[f];
            var words = feat.WordIds ?? throw new ArgumentException($"feature {f} is not a token-classification feature");
            if (logits[f].Length < feat.Length) throw new ArgumentException($"feature {f}: {logits[f].Length} token rows for {feat.Length} tokens");
            var target = result[feat.ExampleIndex];
            for (int t = 0; t < feat.Length; t++)
            {
                if (!feat.IsWordStart![t]) continue;
                int w = words[t];
                var v = logits[f][t];
                if (target[w] is null) target[w] = (float[])v.Clone();
                else if (aggregation == TokenAggregation.Max)
                    for (int c = 0; c < v.Length; c++) target[w]![c] = Math.Max(target[w]![c], v[c]);
            }
        }
        return result;
    }

    /// <summary>Argmax label per word; words without logits get <paramref name="fallbackLabel"/>.</summary>
    public static int[][] WordPredictions(float[]?[][] wordLogits, int fallbackLabel = 0) =>
        wordLogits.Select(s => s.Select(l => l is null ? fallbackLabel : WindowAggregation.ArgMax(l)).ToArray()).ToArray();
}
