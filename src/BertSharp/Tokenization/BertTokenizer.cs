using System.Collections.Concurrent;
using System.Text;

namespace BertSharp.Tokenization;

/// <summary>
/// Hugging Face–compatible BERT tokenizer (BertNormalizer + BertPreTokenizer + WordPiece + BERT template), matching
/// the Rust "fast" tokenizer that <c>AutoTokenizer</c> returns: special tokens, pairs, truncation with stride and
/// overflowing windows, padding, batches, offsets. Thread-safe; each thread reuses its own scratch buffers.
/// </summary>
public sealed partial class BertTokenizer
{
    readonly BasicTokenizer _basic;
    readonly WordPiece _wordPiece;
    readonly HashSet<int> _specialIds;

    /// <exception cref="FormatException">the vocabulary lacks one of the special tokens.</exception>
    public BertTokenizer(Vocabulary vocab, BertTokenizerOptions? options = null)
    {
        Vocab = vocab;
        Options = options ?? new BertTokenizerOptions();
        var missing = Options.SpecialTokens.Where(t => !vocab.Contains(t)).Distinct().ToList();
        if (missing.Count > 0)
            throw new FormatException($"{vocab.Source}: the vocabulary lacks the required special token{(missing.Count > 1 ? "s" : "")} {string.Join(", ", missing)}");
        if (Options.MaxInputCharsPerWord <= 0) throw new ArgumentException($"MaxInputCharsPerWord must be positive (got {Options.MaxInputCharsPerWord})");
        _wordPiece = new WordPiece(vocab, Options.UnkToken, Options.MaxInputCharsPerWord, Options.ContinuingSubwordPrefix);
        _basic = new BasicTokenizer(Options);
        var specials = Options.SpecialTokens.Distinct().Select(t => (t, vocab[t])).ToList();
        _basic.SetSpecialTokens(specials, t => vocab.TryGetId(t, out var id) ? id : UnkId);
        _specialIds = specials.Select(s => s.Item2).ToHashSet();
        PadId = vocab[Options.PadToken];
        UnkId = vocab[Options.UnkToken];
        ClsId = vocab[Options.ClsToken];
        SepId = vocab[Options.SepToken];
        MaskId = vocab[Options.MaskToken];
    }

    public Vocabulary Vocab { get; }
    public BertTokenizerOptions Options { get; }
    public BasicTokenizer BasicTokenizer => _basic;
    public WordPiece WordPiece => _wordPiece;
    public int PadId { get; }
    public int UnkId { get; }
    public int ClsId { get; }
    public int SepId { get; }
    public int MaskId { get; }

    // ---------------------------------------------------------------------------------------------------------------
    // Tokenization core

    sealed class Scratch
    {
        public readonly WordScratch Word = new();
        public readonly TokenBuffer A = new();
        public readonly TokenBuffer B = new();
    }

    [ThreadStatic] static Scratch? t_scratch;
    static Scratch GetScratch() => t_scratch ??= new Scratch();

    struct WordPieceSink : IWordSink
    {
        public WordPiece WordPiece;
        public TokenBuffer Output;
        public int WordIndex;

        public void Word(ReadOnlySpan<char> chars, int codePoints, int[] starts, int[] ends) =>
            WordPiece.Tokenize(chars, codePoints, starts, ends, WordIndex++, Output);

        public void Whole(string token, int id, int start, int end) => Output.Add(id, start, end, WordIndex++);
    }

    void TokenizeInto(string text, TokenBuffer output, WordScratch word)
    {
        ArgumentNullException.ThrowIfNull(text);
        output.Clear();
        var sink = new WordPieceSink { WordPiece = _wordPiece, Output = output };
        _basic.Run(text, ref sink, word);
    }

    /// <summary>WordPiece tokens of <paramref name="text"/>, no special tokens added (special tokens in the text stay whole).</summary>
    public List<string> Tokenize(string text)
    {
        var sc = GetScratch();
        TokenizeInto(text, sc.A, sc.Word);
        var result = new List<string>(sc.A.Count);
        for (int i = 0; i < sc.A.Count; i++) result.Add(Vocab.Tokens[sc.A.Ids[i]]);
        return result;
    }

    /// <summary>WordPiece tokens with [start,end) UTF-16 offsets into <paramref name="text"/> and the word index.</summary>
    public List<(string Token, int Start, int End, int Word)> TokenizeWithOffsets(string text)
    {
        var sc = GetScratch();
        TokenizeInto(text, sc.A, sc.Word);
        var a = sc.A;
        var result = new List<(string, int, int, int)>(a.Count);
        for (int i = 0; i < a.Count; i++) result.Add((Vocab.Tokens[a.Ids[i]], a.Starts[i], a.Ends[i], a.Words[i]));
        return result;
    }

    /// <summary>
    /// Fast path: the input ids of <paramref name="text"/> (and <paramref name="pair"/>), with [CLS]/[SEP] when
    /// <paramref name="addSpecialTokens"/>, without truncation, offsets or masks.
    /// </summary>
    public int[] EncodeIds(string text, string? pair = null, bool addSpecialTokens = true)
    {
        var sc = GetScratch();
        TokenizeInto(text, sc.A, sc.Word);
        int nb = 0;
        if (pair is not null) { TokenizeInto(pair, sc.B, sc.Word); nb = sc.B.Count; }
        int na = sc.A.Count;
        int specials = addSpecialTokens ? (pair is null ? 2 : 3) : 0;
        var ids = new int[na + nb + specials];
        int k = 0;
        if (addSpecialTokens) ids[k++] = ClsId;
        Array.Copy(sc.A.Ids, 0, ids, k, na);
        k += na;
        if (addSpecialTokens) ids[k++] = SepId;
        if (pair is not null)
        {
            Array.Copy(sc.B.Ids, 0, ids, k, nb);
            k += nb;
            if (addSpecialTokens) ids[k] = SepId;
        }
        return ids;
    }

    /// <summary>Number of tokens <paramref name="text"/> gives, without special tokens (no allocation).</summary>
    public int CountTokens(string text)
    {
        var sc = GetScratch();
        TokenizeInto(text, sc.A, sc.Word);
        return sc.A.Count;
    }

    public int[] ConvertTokensToIds(IEnumerable<string> tokens) => tokens.Select(t => Vocab.TryGetId(t, out var id) ? id : UnkId).ToArray();
    public string[] ConvertIdsToTokens(IEnumerable<int> ids) => ids.Select(i => Vocab[i]).ToArray();

    /// <summary>True when <paramref name="id"/> is one of the special tokens (unk, sep, pad, cls, mask, additional).</summary>
    public bool IsSpecialId(int id) => _specialIds.Contains(id);

    // ---------------------------------------------------------------------------------------------------------------
    // Encoding: truncation, overflow windows, template, padding

    /// <summary>
    /// Encodes a single text or a pair: <c>[CLS] A [SEP] (B [SEP])</c>, with HF fast semantics for truncation
    /// (<see cref="EncodeOptions.MaxLength"/> counts the special tokens), stride/overflowing windows and padding.
    /// </summary>
    /// <exception cref="ArgumentException">inconsistent options (max_length below the special tokens, only_second without a pair, a stride not below the truncated length, a sequence too short to truncate).</exception>
    public BertEncoding Encode(string text, string? pair = null, EncodeOptions? options = null)
    {
        options ??= EncodeOptions.Default;
        var enc = EncodeUnpadded(text, pair, options);
        return options.Padding switch
        {
            PaddingStrategy.Longest => Pad(enc, enc.Length, options.PadToMultipleOf),
            PaddingStrategy.MaxLength => Pad(enc, options.MaxLength ?? throw new ArgumentException("padding to max_length needs MaxLength"), options.PadToMultipleOf),
            _ => enc,
        };
    }

    BertEncoding EncodeUnpadded(string text, string? pair, EncodeOptions options)
    {
        var sc = GetScratch();
        TokenizeInto(text, sc.A, sc.Word);
        if (pair is not null) TokenizeInto(pair, sc.B, sc.Word);
        else sc.B.Clear();
        TokenBuffer a = sc.A, b = sc.B;
        bool isPair = pair is not null;
        int na = a.Count, nb = isPair ? b.Count : 0;
        int added = options.AddSpecialTokens ? (isPair ? 3 : 2) : 0;

        int ta = na, tb = nb;
        if (options.MaxLength is int maxLength && options.Truncation != TruncationStrategy.DoNotTruncate)
        {
            if (maxLength < added)
                throw new ArgumentException($"max_length {maxLength} is smaller than the {added} special tokens it must hold");
            int max = maxLength - added;
            int total = na + nb;
            if (total > max)
            {
                // As in Rust, only_second without a pair is an error only when something must be cut.
                if (options.Truncation == TruncationStrategy.OnlySecond && !isPair)
                    throw new ArgumentException($"truncation only_second needs a pair of texts ({total} tokens exceed max_length {maxLength})");
                int toRemove = total - max;
                switch (options.Truncation)
                {
                    case TruncationStrategy.LongestFirst when isPair:
                        (ta, tb) = LongestFirstLengths(na, nb, max);
                        break;
                    case TruncationStrategy.LongestFirst:
                        ta = max;
                        break;
                    case TruncationStrategy.OnlyFirst:
                        if (na <= toRemove) throw new ArgumentException($"truncation only_first: the first sequence ({na} tokens) is too short to remove {toRemove} tokens and respect max_length {maxLength}");
                        ta = na - toRemove;
                        break;
                    case TruncationStrategy.OnlySecond:
                        if (nb <= toRemove) throw new ArgumentException($"truncation only_second: the second sequence ({nb} tokens) is too short to remove {toRemove} tokens and respect max_length {maxLength}");
                        tb = nb - toRemove;
                        break;
                }
            }
        }

        var wa = Windows(na, ta, options.Stride);
        var wb = Windows(nb, tb, options.Stride);
        var main = Build(a, wa[0], isPair ? b : null, wb[0], options.AddSpecialTokens);
        if (options.ReturnOverflowing || options.Stride > 0)
        {
            // HF fast order (Encoding::merge_with): each extra window of A with every window of B, then A's first window with B's extra windows.
            for (int i = 1; i < wa.Count; i++)
                for (int j = 0; j < wb.Count; j++)
                    main.Overflowing.Add(Build(a, wa[i], isPair ? b : null, wb[j], options.AddSpecialTokens));
            for (int j = 1; j < wb.Count; j++)
                main.Overflowing.Add(Build(a, wa[0], isPair ? b : null, wb[j], options.AddSpecialTokens));
        }
        return main;
    }

    /// <summary>Rust <c>truncate_encodings</c> longest_first for a pair: the lengths both sides keep.</summary>
    internal static (int A, int B) LongestFirstLengths(int na, int nb, int max)
    {
        int n1 = na, n2 = nb;
        bool swap = n1 > n2;
        if (swap) (n1, n2) = (n2, n1);
        n2 = n1 > max ? n1 : Math.Max(n1, max - n1);
        if (n1 + n2 > max)
        {
            n1 = max / 2;
            n2 = n1 + max % 2;
        }
        if (swap) (n1, n2) = (n2, n1);
        return (Math.Min(n1, na), Math.Min(n2, nb));
    }

    /// <summary>Rust <c>Encoding::truncate</c>: windows of <paramref name="keep"/> tokens stepping by keep − stride.</summary>
    static List<(int Start, int End)> Windows(int n, int keep, int stride)
    {
        var w = new List<(int, int)>(1);
        if (keep >= n) { w.Add((0, n)); return w; }
        if (keep == 0) { w.Add((0, 0)); w.Add((0, n)); return w; }
        if (stride < 0 || stride >= keep)
            throw new ArgumentException($"stride ({stride}) must be non-negative and strictly less than the truncated sequence length ({keep}, max_length minus the special tokens and the other sequence)");
        int step = keep - stride;
        for (int start = 0; ; start += step)
        {
            int stop = Math.Min(start + keep, n);
            w.Add((start, stop));
            if (stop == n) break;
        }
        return w;
    }

    BertEncoding Build(TokenBuffer a, (int Start, int End) ra, TokenBuffer? b, (int Start, int End) rb, bool addSpecial)
    {
        int la = ra.End - ra.Start, lb = b is null ? 0 : rb.End - rb.Start;
        int n = la + lb + (addSpecial ? (b is null ? 2 : 3) : 0);
        var tokens = new string[n];
        var ids = new int[n];
        var types = new int[n];
        var attention = new int[n];
        var special = new int[n];
        var offsets = new (int, int)[n];
        var words = new int?[n];
        var seqs = new int?[n];
        Array.Fill(attention, 1);
        int k = 0;
        void Special(int id, int type)
        {
            tokens[k] = Vocab.Tokens[id];
            ids[k] = id;
            types[k] = type;
            special[k] = 1;
            k++;
        }
        void Seq(TokenBuffer t, (int Start, int End) r, int seq)
        {
            for (int i = r.Start; i < r.End; i++, k++)
            {
                int id = t.Ids[i];
                tokens[k] = Vocab.Tokens[id];
                ids[k] = id;
                types[k] = seq;
                offsets[k] = (t.Starts[i], t.Ends[i]);
                words[k] = t.Words[i];
                seqs[k] = seq;
            }
        }
        if (addSpecial) Special(ClsId, 0);
        Seq(a, ra, 0);
        if (addSpecial) Special(SepId, 0);
        if (b is not null)
        {
            Seq(b, rb, 1);
            if (addSpecial) Special(SepId, 1);
        }
        return new BertEncoding
        {
            Tokens = tokens, InputIds = ids, TokenTypeIds = types, AttentionMask = attention, SpecialTokensMask = special,
            Offsets = offsets, WordIds = words, SequenceIds = seqs,
        };
    }

    /// <summary>
    /// Right-pads <paramref name="e"/> (and its overflowing windows) to <paramref name="length"/>, rounded up to a
    /// multiple of <paramref name="multipleOf"/>: [PAD] id, type 0, attention 0, special mask 1, offsets (0,0).
    /// Never truncates.
    /// </summary>
    public BertEncoding Pad(BertEncoding e, int length, int? multipleOf = null)
    {
        if (multipleOf is int m && m > 0 && length % m != 0) length += m - length % m;
        var overflow = e.Overflowing.Select(o => Pad(o, length)).ToList();
        if (e.Length >= length) return overflow.SequenceEqual(e.Overflowing) ? e : With(e, overflow);
        int n = e.Length;
        T[] Grow<T>(T[] src, T fill)
        {
            var r = new T[length];
            Array.Copy(src, r, n);
            Array.Fill(r, fill, n, length - n);
            return r;
        }
        return new BertEncoding
        {
            Tokens = Grow(e.Tokens, Options.PadToken), InputIds = Grow(e.InputIds, PadId), TokenTypeIds = Grow(e.TokenTypeIds, 0),
            AttentionMask = Grow(e.AttentionMask, 0), SpecialTokensMask = Grow(e.SpecialTokensMask, 1), Offsets = Grow(e.Offsets, (0, 0)),
            WordIds = Grow(e.WordIds, null), SequenceIds = Grow(e.SequenceIds, null), Overflowing = overflow,
        };
    }

    static BertEncoding With(BertEncoding e, List<BertEncoding> overflow) => new()
    {
        Tokens = e.Tokens, InputIds = e.InputIds, TokenTypeIds = e.TokenTypeIds, AttentionMask = e.AttentionMask,
        SpecialTokensMask = e.SpecialTokensMask, Offsets = e.Offsets, WordIds = e.WordIds, SequenceIds = e.SequenceIds, Overflowing = overflow,
    };

    // ---------------------------------------------------------------------------------------------------------------
    // Batches

    /// <summary>
    /// Encodes many texts (and optional pairs) on all cores. With <see cref="PaddingStrategy.Longest"/> every row
    /// (overflowing windows included) is padded to the batch's longest row.
    /// </summary>
    public BertEncoding[] EncodeBatch(IReadOnlyList<string> texts, IReadOnlyList<string?>? pairs = null, EncodeOptions? options = null)
    {
        ArgumentNullException.ThrowIfNull(texts);
        if (pairs is not null && pairs.Count != texts.Count)
            throw new ArgumentException($"pairs has {pairs.Count} entries but texts has {texts.Count}", nameof(pairs));
        options ??= EncodeOptions.Default;
        var result = new BertEncoding[texts.Count];
        ForEachPartition(texts.Count, i => result[i] = EncodeUnpadded(texts[i], pairs?[i], options));
        int target = options.Padding switch
        {
            PaddingStrategy.Longest => result.Length == 0 ? 0 : result.Max(e => e.Length),
            PaddingStrategy.MaxLength => options.MaxLength ?? throw new ArgumentException("padding to max_length needs MaxLength"),
            _ => -1,
        };
        if (target >= 0) ForEachPartition(result.Length, i => result[i] = Pad(result[i], target, options.PadToMultipleOf));
        return result;
    }

    /// <summary>Input ids only for many texts, on all cores (see <see cref="EncodeIds"/>).</summary>
    public int[][] EncodeIdsBatch(IReadOnlyList<string> texts, bool addSpecialTokens = true)
    {
        var result = new int[texts.Count][];
        ForEachPartition(texts.Count, i => result[i] = EncodeIds(texts[i], null, addSpecialTokens));
        return result;
    }

    static void ForEachPartition(int count, Action<int> body)
    {
        if (count < 32 || Environment.ProcessorCount == 1)
        {
            for (int i = 0; i < count; i++) body(i);
            return;
        }
        int chunk = Math.Max(8, count / (Environment.ProcessorCount * 8));
        Parallel.ForEach(Partitioner.Create(0, count, chunk), range =>
        {
            for (int i = range.Item1; i < range.Item2; i++) body(i);
        });
    }

    // ---------------------------------------------------------------------------------------------------------------
    // Decoding

    /// <summary>
    /// Decodes ids to text like HF's <c>decode</c>: tokens joined by spaces, continuation pieces glued to the previous
    /// token, special tokens skipped when <paramref name="skipSpecialTokens"/>, then HF's
    /// <c>clean_up_tokenization</c> (no space before . ? ! , and contractions) when <paramref name="cleanUpTokenizationSpaces"/>.
    /// </summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true, bool cleanUpTokenizationSpaces = true)
    {
        var sb = new StringBuilder();
        var prefix = Options.ContinuingSubwordPrefix;
        bool first = true;
        foreach (var id in ids)
        {
            if (skipSpecialTokens && _specialIds.Contains(id)) continue;
            var t = Vocab[id];
            if (!first && prefix.Length > 0 && t.StartsWith(prefix, StringComparison.Ordinal)) sb.Append(t, prefix.Length, t.Length - prefix.Length);
            else
            {
                if (!first) sb.Append(' ');
                sb.Append(t);
            }
            first = false;
        }
        var s = sb.ToString();
        return cleanUpTokenizationSpaces ? CleanUpTokenization(s) : s;
    }

    /// <summary>HF <c>clean_up_tokenization</c>.</summary>
    public static string CleanUpTokenization(string s) =>
        s.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
         .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
}
