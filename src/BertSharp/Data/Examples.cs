using System.Globalization;
using System.Text.Json.Serialization;

namespace BertSharp.Data;

/// <summary>How examples are formed from documents.</summary>
public enum ExampleMode
{
    /// <summary>Google BERT: [CLS] A [SEP] B [SEP] with a next-sentence label (50% random B).</summary>
    [JsonStringEnumMemberName("nsp")] NextSentencePrediction,
    /// <summary>MLM only: each sentence (line) is one example, truncated to max_seq_length − 2.</summary>
    LineByLine,
    /// <summary>MLM only: the corpus as one token stream (a [SEP] between documents) cut into blocks of
    /// max_seq_length − 2 tokens (Hugging Face run_mlm <c>group_texts</c>); the last partial block is dropped.</summary>
    Packed,
}

/// <summary>When masks are drawn.</summary>
public enum MaskingMode
{
    /// <summary>Google: masks are fixed per example (each of the <c>dupe_factor</c> copies gets its own); every epoch sees the same.</summary>
    Static,
    /// <summary>RoBERTa-style: masks are redrawn at batch time from (seed, epoch, index), so each epoch re-masks.</summary>
    Dynamic,
}

/// <summary>
/// Example creation and masking parameters (Google <c>create_pretraining_data.py</c> flags). The defaults here are the
/// only ones: <c>bert pretrain</c>'s <c>data_cfg</c> takes them from this record. Masking is dynamic with one pass over
/// the corpus (fresh masks every epoch without a dupe_factor-times larger example store); Google's setting is
/// <see cref="MaskingMode.Static"/> with <see cref="DupeFactor"/> 10.
/// </summary>
public sealed record PretrainingDataOptions
{
    public ExampleMode Mode { get; init; } = ExampleMode.NextSentencePrediction;
    public int MaxSeqLength { get; init; } = 128;
    public double ShortSeqProb { get; init; } = 0.1;
    public double MaskedLmProb { get; init; } = 0.15;
    public int MaxPredictionsPerSeq { get; init; } = 20;
    public bool WholeWordMask { get; init; }
    /// <summary>How many times each document is processed (different segmentations; with static masking, different masks).</summary>
    public int DupeFactor { get; init; } = 1;
    public MaskingMode Masking { get; init; } = MaskingMode.Dynamic;
    public ulong Seed { get; init; } = 12345;

    public void Validate()
    {
        int minLength = Mode == ExampleMode.NextSentencePrediction ? 5 : 3;
        if (MaxSeqLength < minLength) throw new ArgumentOutOfRangeException(nameof(MaxSeqLength), MaxSeqLength, $"must be at least {minLength} for {Mode}");
        if (ShortSeqProb is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(ShortSeqProb), ShortSeqProb, "must be in [0, 1]");
        if (MaskedLmProb is < 0 or > 1) throw new ArgumentOutOfRangeException(nameof(MaskedLmProb), MaskedLmProb, "must be in [0, 1]");
        if (MaxPredictionsPerSeq < 1) throw new ArgumentOutOfRangeException(nameof(MaxPredictionsPerSeq), MaxPredictionsPerSeq, "must be positive");
        if (DupeFactor < 1) throw new ArgumentOutOfRangeException(nameof(DupeFactor), DupeFactor, "must be positive");
    }

    /// <summary>The options that determine the unmasked examples (part of the example-store key).</summary>
    public string DescribeCreation() => string.Create(CultureInfo.InvariantCulture,
        $"mode={Mode};max={MaxSeqLength};short={ShortSeqProb:R};dupe={DupeFactor};seed={Seed}");
}

/// <summary>An unmasked example: the full sequence with specials, the length of segment A, the NSP label.</summary>
/// <param name="InputIds">[CLS] A [SEP] (B [SEP]).</param>
/// <param name="SegmentALength">Tokens in A (excluding specials); token type 1 starts at SegmentALength + 2.</param>
/// <param name="NextSentenceLabel">0 = B follows A, 1 = B is random, null = MLM-only example.</param>
public readonly record struct RawExample(int[] InputIds, int SegmentALength, int? NextSentenceLabel)
{
    public int Length => InputIds.Length;

    internal int PackMeta() => (SegmentALength << 2) | (NextSentenceLabel is int l ? l + 1 : 0);

    internal static RawExample Unpack(int[] ids, int meta)
    {
        int code = meta & 3;
        return new RawExample(ids, meta >> 2, code == 0 ? null : code - 1);
    }

    public int[] TokenTypeIds()
    {
        var types = new int[InputIds.Length];
        for (int i = SegmentALength + 2; i < types.Length; i++) types[i] = 1;
        return types;
    }
}

/// <summary>A training example after masking.</summary>
public sealed class PretrainingExample
{
    /// <summary>Ids with masking applied ([MASK] / random / unchanged at <see cref="MaskedPositions"/>).</summary>
    public required int[] InputIds { get; init; }
    public required int[] TokenTypeIds { get; init; }
    /// <summary>Ascending positions that carry an MLM label.</summary>
    public required int[] MaskedPositions { get; init; }
    /// <summary>The original ids at <see cref="MaskedPositions"/>.</summary>
    public required int[] MaskedLabels { get; init; }
    /// <summary>0 = B follows A ("is next"), 1 = B is random (Hugging Face convention); null in MLM-only modes.</summary>
    public int? NextSentenceLabel { get; init; }

    public int Length => InputIds.Length;
}

/// <summary>Creates unmasked examples from a tokenized corpus (Google <c>create_instances_from_document</c> and MLM-only modes).</summary>
public static class ExampleFactory
{
    /// <summary>All examples for <paramref name="options"/>: for each dupe round, each document in corpus order.
    /// Every document's randomness comes from its own stream (seed, dupe, document), so the result does not
    /// depend on processing order.</summary>
    public static IEnumerable<RawExample> Create(ITokenizedCorpus corpus, PretrainingVocab vocab, PretrainingDataOptions options,
        Action<long>? documentsDone = null)
    {
        options.Validate();
        for (int dupe = 0; dupe < options.DupeFactor; dupe++)
        {
            IEnumerable<RawExample> round = options.Mode switch
            {
                ExampleMode.NextSentencePrediction => NspRound(corpus, vocab, options, dupe, documentsDone),
                ExampleMode.LineByLine => LineByLine(corpus, vocab, options.MaxSeqLength, documentsDone),
                ExampleMode.Packed => Packed(corpus, vocab, options.MaxSeqLength, documentsDone),
                _ => throw new ArgumentOutOfRangeException(nameof(options), options.Mode, "unknown example mode"),
            };
            foreach (var e in round) yield return e;
        }
    }

    static IEnumerable<RawExample> NspRound(ITokenizedCorpus corpus, PretrainingVocab vocab, PretrainingDataOptions o, int dupe, Action<long>? done)
    {
        for (int d = 0; d < corpus.DocumentCount; d++)
        {
            var rng = DataRng.For(o.Seed, RngPurpose.CreateExamples, (ulong)dupe, (ulong)d);
            foreach (var e in FromDocument(corpus, d, o.MaxSeqLength, o.ShortSeqProb, rng, vocab)) yield return e;
            done?.Invoke(1);
        }
    }

    /// <summary>Google's <c>create_instances_from_document</c> (same control flow and random decisions).</summary>
    public static IEnumerable<RawExample> FromDocument(ITokenizedCorpus corpus, int document, int maxSeqLength, double shortSeqProb,
        DataRng rng, PretrainingVocab vocab)
    {
        int maxNumTokens = maxSeqLength - 3;
        // Usually fill the whole sequence; with probability short_seq_prob use a shorter target (for the whole document, as Google).
        int targetSeqLength = maxNumTokens;
        if (rng.NextDouble() < shortSeqProb) targetSeqLength = rng.NextInclusive(2, maxNumTokens);

        int n = corpus.SentenceCount(document);
        var chunk = new List<int>();
        int currentLength = 0;
        int i = 0;
        while (i < n)
        {
            chunk.Add(i);
            currentLength += corpus.SentenceLength(document, i);
            if (i == n - 1 || currentLength >= targetSeqLength)
            {
                if (chunk.Count > 0)
                {
                    int aEnd = 1;
                    if (chunk.Count >= 2) aEnd = rng.NextInclusive(1, chunk.Count - 1);
                    var a = new List<int>();
                    for (int j = 0; j < aEnd; j++) corpus.AppendSentence(document, chunk[j], a);
                    var b = new List<int>();
                    bool isRandomNext;
                    if (chunk.Count == 1 || rng.NextDouble() < 0.5)
                    {
                        isRandomNext = true;
                        int targetBLength = targetSeqLength - a.Count;
                        // Up to 10 tries to pick a different document (a 1-document corpus falls back to itself, as Google).
                        int randomDocument = 0;
                        for (int t = 0; t < 10; t++)
                        {
                            randomDocument = rng.NextInclusive(0, corpus.DocumentCount - 1);
                            if (randomDocument != document) break;
                        }
                        int sentences = corpus.SentenceCount(randomDocument);
                        int randomStart = rng.NextInclusive(0, sentences - 1);
                        for (int j = randomStart; j < sentences; j++)
                        {
                            corpus.AppendSentence(randomDocument, j, b);
                            if (b.Count >= targetBLength) break;
                        }
                        // Put the unused segments back: they are re-read for the next example.
                        i -= chunk.Count - aEnd;
                    }
                    else
                    {
                        isRandomNext = false;
                        for (int j = aEnd; j < chunk.Count; j++) corpus.AppendSentence(document, chunk[j], b);
                    }
                    yield return Assemble(a, b, maxNumTokens, isRandomNext, rng, vocab);
                }
                chunk.Clear();
                currentLength = 0;
            }
            i++;
        }
    }

    /// <summary>Google's <c>truncate_seq_pair</c> (trim the longer side, front or back at random) + assembly.</summary>
    static RawExample Assemble(List<int> a, List<int> b, int maxNumTokens, bool isRandomNext, DataRng rng, PretrainingVocab vocab)
    {
        int aStart = 0, aEnd = a.Count, bStart = 0, bEnd = b.Count;
        while ((aEnd - aStart) + (bEnd - bStart) > maxNumTokens)
        {
            bool truncA = (aEnd - aStart) > (bEnd - bStart);
            bool front = rng.NextDouble() < 0.5;
            if (truncA) { if (front) aStart++; else aEnd--; }
            else { if (front) bStart++; else bEnd--; }
        }
        int aLen = aEnd - aStart, bLen = bEnd - bStart;
        if (aLen < 1 || bLen < 1) throw new InvalidOperationException("internal error: an empty segment after truncation");
        var ids = new int[aLen + bLen + 3];
        ids[0] = vocab.ClsId;
        a.CopyTo(aStart, ids, 1, aLen);
        ids[aLen + 1] = vocab.SepId;
        b.CopyTo(bStart, ids, aLen + 2, bLen);
        ids[^1] = vocab.SepId;
        return new RawExample(ids, aLen, isRandomNext ? 1 : 0);
    }

    static RawExample Single(List<int> content, int start, int count, PretrainingVocab vocab)
    {
        var ids = new int[count + 2];
        ids[0] = vocab.ClsId;
        content.CopyTo(start, ids, 1, count);
        ids[^1] = vocab.SepId;
        return new RawExample(ids, count, null);
    }

    static IEnumerable<RawExample> LineByLine(ITokenizedCorpus corpus, PretrainingVocab vocab, int maxSeqLength, Action<long>? done)
    {
        var buffer = new List<int>();
        for (int d = 0; d < corpus.DocumentCount; d++)
        {
            for (int s = 0; s < corpus.SentenceCount(d); s++)
            {
                buffer.Clear();
                corpus.AppendSentence(d, s, buffer);
                yield return Single(buffer, 0, Math.Min(buffer.Count, maxSeqLength - 2), vocab);
            }
            done?.Invoke(1);
        }
    }

    static IEnumerable<RawExample> Packed(ITokenizedCorpus corpus, PretrainingVocab vocab, int maxSeqLength, Action<long>? done)
    {
        int block = maxSeqLength - 2;
        var stream = new List<int>();
        for (int d = 0; d < corpus.DocumentCount; d++)
        {
            if (d > 0) stream.Add(vocab.SepId);
            for (int s = 0; s < corpus.SentenceCount(d); s++)
            {
                corpus.AppendSentence(d, s, stream);
                if (stream.Count >= 4 * block)
                {
                    int whole = stream.Count / block * block;
                    for (int at = 0; at < whole; at += block) yield return Single(stream, at, block, vocab);
                    stream.RemoveRange(0, whole);
                }
            }
            done?.Invoke(1);
        }
        for (int at = 0; at + block <= stream.Count; at += block) yield return Single(stream, at, block, vocab);
    }
}

/// <summary>Google's <c>create_masked_lm_predictions</c>.</summary>
public static class MlmMasking
{
    /// <summary>Number of predictions for a sequence of <paramref name="length"/> tokens (specials included, as Google):
    /// min(max_predictions_per_seq, max(1, round(length × masked_lm_prob))), rounding half to even like Python.</summary>
    public static int NumToPredict(int length, double maskedLmProb, int maxPredictionsPerSeq) =>
        Math.Min(maxPredictionsPerSeq, Math.Max(1, (int)Math.Round(length * maskedLmProb, MidpointRounding.ToEven)));

    /// <summary>Masks <paramref name="raw"/>: candidates skip [CLS]/[SEP] (and [PAD]); with whole-word masking a
    /// <c>##</c> piece joins the preceding word's group and groups are masked all or nothing; each chosen token
    /// becomes [MASK] (80%), a uniformly random vocabulary id (10%) or stays unchanged (10%).</summary>
    public static PretrainingExample Apply(in RawExample raw, PretrainingVocab vocab, double maskedLmProb, int maxPredictionsPerSeq,
        bool wholeWordMask, DataRng rng)
    {
        var ids = raw.InputIds;
        var groups = new List<(int Start, int Count)>(ids.Length);
        for (int i = 0; i < ids.Length; i++)
        {
            int id = ids[i];
            if (id == vocab.ClsId || id == vocab.SepId || id == vocab.PadId) continue;
            // Only a piece directly after the previous group joins it (Google would also join across a [SEP]).
            if (wholeWordMask && groups.Count > 0 && vocab.IsContinuation(id) && groups[^1].Start + groups[^1].Count == i)
                groups[^1] = (groups[^1].Start, groups[^1].Count + 1);
            else
                groups.Add((i, 1));
        }
        rng.Shuffle(groups);
        int numToPredict = NumToPredict(ids.Length, maskedLmProb, maxPredictionsPerSeq);
        var output = (int[])ids.Clone();
        var positions = new List<int>(numToPredict);
        foreach (var (start, count) in groups)
        {
            if (positions.Count >= numToPredict) break;
            if (positions.Count + count > numToPredict) continue;
            for (int index = start; index < start + count; index++)
            {
                int replacement;
                if (rng.NextDouble() < 0.8) replacement = vocab.MaskId;
                else if (rng.NextDouble() < 0.5) replacement = ids[index];
                else replacement = rng.NextInt(vocab.Size);
                output[index] = replacement;
                positions.Add(index);
            }
        }
        positions.Sort();
        var labels = new int[positions.Count];
        for (int k = 0; k < labels.Length; k++) labels[k] = ids[positions[k]];
        return new PretrainingExample
        {
            InputIds = output, TokenTypeIds = raw.TokenTypeIds(), MaskedPositions = positions.ToArray(),
            MaskedLabels = labels, NextSentenceLabel = raw.NextSentenceLabel,
        };
    }
}
