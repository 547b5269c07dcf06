using System.Text;
using System.Text.Json;

namespace BertSharp.Tokenization;

/// <summary>
/// Hugging Face–compatible BERT tokenizer: BasicTokenizer + WordPiece, special tokens, pairs, truncation, padding.
/// </summary>
public sealed class BertTokenizer
{
    readonly BasicTokenizer _basic;
    readonly WordPiece _wordPiece;

    public BertTokenizer(Vocabulary vocab, BertTokenizerOptions? options = null)
    {
        Vocab = vocab;
        Options = options ?? new BertTokenizerOptions();
        foreach (var special in Options.SpecialTokens)
            if (!vocab.Contains(special))
                throw new FormatException($"{vocab.Source}: the vocabulary lacks the required special token {special}");
        _basic = new BasicTokenizer(Options);
        _wordPiece = new WordPiece(vocab, Options.UnkToken, Options.MaxInputCharsPerWord);
        PadId = vocab[Options.PadToken];
        UnkId = vocab[Options.UnkToken];
        ClsId = vocab[Options.ClsToken];
        SepId = vocab[Options.SepToken];
        MaskId = vocab[Options.MaskToken];
    }

    public Vocabulary Vocab { get; }
    public BertTokenizerOptions Options { get; }
    public int PadId { get; }
    public int UnkId { get; }
    public int ClsId { get; }
    public int SepId { get; }
    public int MaskId { get; }

    /// <summary>Loads vocab.txt with explicit options.</summary>
    public static BertTokenizer FromVocabFile(string vocabPath, BertTokenizerOptions? options = null) =>
        new(Vocabulary.Load(vocabPath), options);

    /// <summary>Loads a model directory: vocab.txt (+ tokenizer_config.json for do_lower_case).</summary>
    public static BertTokenizer FromDirectory(string dir)
    {
        var vocabPath = Path.Combine(dir, "vocab.txt");
        if (!File.Exists(vocabPath)) throw new FileNotFoundException($"{dir}: no vocab.txt", vocabPath);
        var options = new BertTokenizerOptions();
        var cfgPath = Path.Combine(dir, "tokenizer_config.json");
        if (File.Exists(cfgPath))
        {
            using var doc = JsonDocument.Parse(File.ReadAllText(cfgPath));
            if (doc.RootElement.TryGetProperty("do_lower_case", out var lc) && lc.ValueKind is JsonValueKind.True or JsonValueKind.False)
                options = options with { DoLowerCase = lc.GetBoolean() };
            if (doc.RootElement.TryGetProperty("strip_accents", out var sa) && sa.ValueKind is JsonValueKind.True or JsonValueKind.False)
                options = options with { StripAccents = sa.GetBoolean() };
            if (doc.RootElement.TryGetProperty("tokenize_chinese_chars", out var tc) && tc.ValueKind is JsonValueKind.True or JsonValueKind.False)
                options = options with { TokenizeChineseChars = tc.GetBoolean() };
        }
        return FromVocabFile(vocabPath, options);
    }

    /// <summary>WordPiece tokens of <paramref name="text"/>, no special tokens.</summary>
    public List<string> Tokenize(string text) => TokenizeWithOffsets(text).Select(t => t.Token).ToList();

    /// <summary>WordPiece tokens with [start,end) UTF-16 offsets into <paramref name="text"/> and the word index.</summary>
    public List<(string Token, int Start, int End, int Word)> TokenizeWithOffsets(string text)
    {
        var result = new List<(string, int, int, int)>();
        var pieces = new List<(string Token, int Start, int End)>();
        var words = _basic.Split(text);
        for (int w = 0; w < words.Count; w++)
        {
            var word = words[w];
            if (IsSpecialToken(word.Text)) { result.Add((word.Text, word.Start, word.End, w)); continue; }
            pieces.Clear();
            _wordPiece.Tokenize(word.Text, pieces);
            foreach (var (tok, s, e) in pieces)
            {
                // Map offsets inside the normalized word back to the original span (exact when normalization kept lengths).
                bool sameLength = word.Text.Length == word.End - word.Start;
                int os = sameLength ? word.Start + s : word.Start;
                int oe = sameLength ? word.Start + e : word.End;
                result.Add((tok, os, oe, w));
            }
        }
        return result;
    }

    bool IsSpecialToken(string token) => Options.SpecialTokens.Contains(token) || Options.NeverSplit.Contains(token);

    public int[] ConvertTokensToIds(IEnumerable<string> tokens) => tokens.Select(t => Vocab.TryGetId(t, out var id) ? id : UnkId).ToArray();
    public string[] ConvertIdsToTokens(IEnumerable<int> ids) => ids.Select(i => Vocab[i]).ToArray();

    /// <summary>Encodes a single text or a pair: [CLS] A [SEP] (B [SEP]).</summary>
    public BertEncoding Encode(string text, string? pair = null, EncodeOptions? options = null)
    {
        options ??= EncodeOptions.Default;
        var a = TokenizeWithOffsets(text);
        var b = pair is null ? null : TokenizeWithOffsets(pair);
        int specials = options.AddSpecialTokens ? (b is null ? 2 : 3) : 0;
        if (options.MaxLength is int max && options.Truncation != TruncationStrategy.DoNotTruncate)
        {
            int excess = a.Count + (b?.Count ?? 0) + specials - max;
            while (excess-- > 0)
            {
                if (b is null || options.Truncation == TruncationStrategy.OnlyFirst) { if (a.Count == 0) break; a.RemoveAt(a.Count - 1); }
                else if (options.Truncation == TruncationStrategy.OnlySecond) { if (b.Count == 0) break; b.RemoveAt(b.Count - 1); }
                else if (a.Count > b.Count) a.RemoveAt(a.Count - 1);
                else b.RemoveAt(b.Count - 1);
            }
        }
        var tokens = new List<string>();
        var offsets = new List<(int, int)>();
        var types = new List<int>();
        var special = new List<int>();
        var wordIds = new List<int?>();
        var seqIds = new List<int?>();
        void AddSpecial(string t, int type) { tokens.Add(t); offsets.Add((0, 0)); types.Add(type); special.Add(1); wordIds.Add(null); seqIds.Add(null); }
        void AddSeq(List<(string Token, int Start, int End, int Word)> seq, int type)
        {
            foreach (var t in seq) { tokens.Add(t.Token); offsets.Add((t.Start, t.End)); types.Add(type); special.Add(0); wordIds.Add(t.Word); seqIds.Add(type); }
        }
        if (options.AddSpecialTokens) AddSpecial(Options.ClsToken, 0);
        AddSeq(a, 0);
        if (options.AddSpecialTokens) AddSpecial(Options.SepToken, 0);
        if (b is not null)
        {
            AddSeq(b, 1);
            if (options.AddSpecialTokens) AddSpecial(Options.SepToken, 1);
        }
        var ids = ConvertTokensToIds(tokens);
        return new BertEncoding
        {
            Tokens = tokens.ToArray(), InputIds = ids, TokenTypeIds = types.ToArray(),
            AttentionMask = Enumerable.Repeat(1, ids.Length).ToArray(), SpecialTokensMask = special.ToArray(),
            Offsets = offsets.ToArray(), WordIds = wordIds.ToArray(), SequenceIds = seqIds.ToArray(),
        };
    }

    /// <summary>Decodes ids to text with HF's clean-up of spaces before punctuation and ## joining.</summary>
    public string Decode(IEnumerable<int> ids, bool skipSpecialTokens = true, bool cleanUpTokenizationSpaces = true)
    {
        var sb = new StringBuilder();
        foreach (var id in ids)
        {
            var t = Vocab[id];
            if (skipSpecialTokens && Options.SpecialTokens.Contains(t)) continue;
            if (t.StartsWith("##", StringComparison.Ordinal)) sb.Append(t, 2, t.Length - 2);
            else { if (sb.Length > 0) sb.Append(' '); sb.Append(t); }
        }
        var s = sb.ToString();
        if (cleanUpTokenizationSpaces)
            s = s.Replace(" .", ".").Replace(" ?", "?").Replace(" !", "!").Replace(" ,", ",").Replace(" ' ", "'")
                 .Replace(" n't", "n't").Replace(" 'm", "'m").Replace(" 's", "'s").Replace(" 've", "'ve").Replace(" 're", "'re");
        return s;
    }
}
