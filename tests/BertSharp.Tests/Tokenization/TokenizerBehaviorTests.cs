using BertSharp.Tokenization;
using Xunit;

namespace BertSharp.Tests.Tokenization;

/// <summary>Truncation, stride windows, padding, batches, decoding, options — HF fast semantics.</summary>
public class TokenizerBehaviorTests
{
    const string Vocab = GoldenParityTests.UncasedVocab;
    static BertTokenizer? s_tok;
    static BertTokenizer Tok => s_tok ??= BertTokenizer.FromVocabFile(TestAssets.Path(Vocab));

    const string Ten = "one two three four five six seven eight nine ten";

    [AssetFact(Vocab)]
    public void Stride_windows_follow_hf_fast()
    {
        var e = Tok.Encode(Ten, null, new EncodeOptions { MaxLength = 6, Stride = 2 });
        Assert.Equal(["[CLS]", "one", "two", "three", "four", "[SEP]"], e.Tokens);
        Assert.Equal(3, e.Overflowing.Count);
        Assert.Equal(["[CLS]", "three", "four", "five", "six", "[SEP]"], e.Overflowing[0].Tokens);
        Assert.Equal(["[CLS]", "five", "six", "seven", "eight", "[SEP]"], e.Overflowing[1].Tokens);
        Assert.Equal(["[CLS]", "seven", "eight", "nine", "ten", "[SEP]"], e.Overflowing[2].Tokens);
        // Each window keeps offsets into the original text.
        var w = e.Overflowing[2];
        Assert.Equal("seven", Ten[w.Offsets[1].Start..w.Offsets[1].End]);
        Assert.Equal("ten", Ten[w.Offsets[4].Start..w.Offsets[4].End]);
        Assert.Equal([1, 0, 0, 0, 0, 1], w.SpecialTokensMask);
    }

    [AssetFact(Vocab)]
    public void Without_stride_or_overflow_request_no_windows_are_kept()
    {
        var e = Tok.Encode(Ten, null, new EncodeOptions { MaxLength = 6 });
        Assert.Equal(6, e.Length);
        Assert.Empty(e.Overflowing);
        var o = Tok.Encode(Ten, null, new EncodeOptions { MaxLength = 6, ReturnOverflowing = true });
        Assert.Equal(2, o.Overflowing.Count); // windows of 4 without overlap: 4 + 4 + 2
        Assert.Equal(["[CLS]", "nine", "ten", "[SEP]"], o.Overflowing[1].Tokens);
    }

    [AssetFact(Vocab)]
    public void Only_second_with_stride_keeps_the_question_in_every_window()
    {
        var e = Tok.Encode("who?", Ten, new EncodeOptions { MaxLength = 10, Truncation = TruncationStrategy.OnlySecond, Stride = 1 });
        // 10 - 3 specials - 2 question tokens = 5 context tokens per window, step 4
        Assert.Equal(["[CLS]", "who", "?", "[SEP]", "one", "two", "three", "four", "five", "[SEP]"], e.Tokens);
        Assert.Equal([0, 0, 0, 0, 1, 1, 1, 1, 1, 1], e.TokenTypeIds);
        Assert.Equal(2, e.Overflowing.Count);
        Assert.Equal(["[CLS]", "who", "?", "[SEP]", "five", "six", "seven", "eight", "nine", "[SEP]"], e.Overflowing[0].Tokens);
        Assert.Equal(["[CLS]", "who", "?", "[SEP]", "nine", "ten", "[SEP]"], e.Overflowing[1].Tokens);
        Assert.Equal([null, 0, 0, null, 1, 1, null], e.Overflowing[1].SequenceIds);
    }

    [AssetFact(Vocab)]
    public void Only_first_and_longest_first()
    {
        var first = Tok.Encode(Ten, "a b", new EncodeOptions { MaxLength = 8, Truncation = TruncationStrategy.OnlyFirst });
        Assert.Equal(["[CLS]", "one", "two", "three", "[SEP]", "a", "b", "[SEP]"], first.Tokens);
        // Rust: equal lengths and an odd budget → the first sequence gets the smaller half.
        var lf = Tok.Encode("a b c d", "e f g h", new EncodeOptions { MaxLength = 8 });
        Assert.Equal(["[CLS]", "a", "b", "[SEP]", "e", "f", "g", "[SEP]"], lf.Tokens);
        Assert.Equal((2, 3), BertTokenizer.LongestFirstLengths(4, 4, 5));
        Assert.Equal((2, 8), BertTokenizer.LongestFirstLengths(2, 20, 10));
        Assert.Equal((5, 5), BertTokenizer.LongestFirstLengths(30, 20, 10));
    }

    [AssetFact(Vocab)]
    public void Truncation_errors_are_clear()
    {
        Assert.Contains("only_second", Assert.Throws<ArgumentException>(() => Tok.Encode(Ten, null, new EncodeOptions { MaxLength = 5, Truncation = TruncationStrategy.OnlySecond })).Message);
        Assert.Contains("too short", Assert.Throws<ArgumentException>(() => Tok.Encode("a", Ten, new EncodeOptions { MaxLength = 5, Truncation = TruncationStrategy.OnlyFirst })).Message);
        Assert.Contains("special tokens", Assert.Throws<ArgumentException>(() => Tok.Encode("a", "b", new EncodeOptions { MaxLength = 2 })).Message);
        Assert.Contains("stride", Assert.Throws<ArgumentException>(() => Tok.Encode(Ten, null, new EncodeOptions { MaxLength = 6, Stride = 4 })).Message);
    }

    [AssetFact(Vocab)]
    public void Padding_longest_max_length_and_multiple()
    {
        var batch = Tok.EncodeBatch(["hello world", "hi"], null, new EncodeOptions { Padding = PaddingStrategy.Longest });
        Assert.All(batch, e => Assert.Equal(4, e.Length));
        Assert.Equal(["[CLS]", "hi", "[SEP]", "[PAD]"], batch[1].Tokens);
        Assert.Equal([101, 7632, 102, 0], batch[1].InputIds);
        Assert.Equal([1, 1, 1, 0], batch[1].AttentionMask);
        Assert.Equal([1, 0, 1, 1], batch[1].SpecialTokensMask);
        Assert.Null(batch[1].SequenceIds[3]);

        var fixedLen = Tok.Encode("hi", null, new EncodeOptions { Padding = PaddingStrategy.MaxLength, MaxLength = 7 });
        Assert.Equal(7, fixedLen.Length);
        var multiple = Tok.EncodeBatch(["hello world", "hi"], null, new EncodeOptions { Padding = PaddingStrategy.Longest, PadToMultipleOf = 8 });
        Assert.All(multiple, e => Assert.Equal(8, e.Length));
        var pairs = Tok.EncodeBatch(["a", "b c"], ["d e f", null], new EncodeOptions { Padding = PaddingStrategy.Longest });
        Assert.Equal(7, pairs[0].Length);
        Assert.Equal([0, 0, 0, 1, 1, 1, 1], pairs[0].TokenTypeIds);
        Assert.Equal(["[CLS]", "b", "c", "[SEP]", "[PAD]", "[PAD]", "[PAD]"], pairs[1].Tokens);
    }

    [AssetFact(Vocab)]
    public void Batch_on_all_cores_equals_one_by_one()
    {
        var texts = Enumerable.Range(0, 500).Select(i => $"Sample {i}: naïve café, [MASK] déjà-vu #{i * 7919 % 1000} 😀 你好").ToArray();
        var batch = Tok.EncodeBatch(texts);
        var ids = Tok.EncodeIdsBatch(texts);
        for (int i = 0; i < texts.Length; i++)
        {
            var one = Tok.Encode(texts[i]);
            Assert.Equal(one.InputIds, batch[i].InputIds);
            Assert.Equal(one.Offsets, batch[i].Offsets);
            Assert.Equal(one.InputIds, ids[i]);
        }
    }

    [AssetFact(Vocab)]
    public void Word_ids_and_offsets_in_utf16_with_code_point_conversion()
    {
        const string text = "😀 x[MASK]y naïve";
        var e = Tok.Encode(text);
        Assert.Equal(["[CLS]", "[UNK]", "x", "[MASK]", "y", "naive", "[SEP]"], e.Tokens);
        Assert.Equal([null, 0, 1, 2, 3, 4, null], e.WordIds);
        Assert.Equal((0, 2), e.Offsets[1]);      // the emoji is two UTF-16 units
        Assert.Equal((4, 10), e.Offsets[3]);
        var cp = e.GetCodePointOffsets(text);
        Assert.Equal((0, 1), cp[1]);
        Assert.Equal((3, 9), cp[3]);
        Assert.Equal(2, CodePoints.ToUtf16(text, 1));
        Assert.Equal(1, CodePoints.FromUtf16(text, 2));
    }

    [AssetFact(Vocab)]
    public void Decode_joins_pieces_and_cleans_up_spaces()
    {
        var ids = Tok.Encode("Hello, world! I don't think it's unaffable.").InputIds;
        Assert.Equal("hello, world! i don't think it's unaffable.", Tok.Decode(ids));
        Assert.Equal("[CLS] hello , world ! i don ' t think it ' s unaffable . [SEP]", Tok.Decode(ids, skipSpecialTokens: false, cleanUpTokenizationSpaces: false));
        Assert.Equal("##ing", Tok.Decode(Tok.ConvertTokensToIds(["##ing"])));
    }

    [AssetFact(Vocab)]
    public void Lowercase_without_accent_stripping_uses_full_unicode_lowercase()
    {
        var tok = BertTokenizer.FromVocabFile(TestAssets.Path(Vocab), new BertTokenizerOptions { DoLowerCase = true, StripAccents = false });
        var words = tok.BasicTokenizer.Split("İstanbul Ünal");
        Assert.Equal("i\u0307stanbul", words[0].Text); // Python "İ".lower(), not .NET's ToLowerInvariant
        Assert.Equal((0, 8), (words[0].Start, words[0].End));
        Assert.Equal("ünal", words[1].Text);
    }

    [AssetFact(Vocab)]
    public void Never_split_keeps_whitespace_chunks_whole()
    {
        var tok = BertTokenizer.FromVocabFile(TestAssets.Path(Vocab), new BertTokenizerOptions { NeverSplit = ["C++"] });
        Assert.Equal(["i", "like", "[UNK]", "and", "c", "#"], tok.Tokenize("I like C++ and C#"));
        Assert.Equal(["c", "+", "+", "x"], tok.Tokenize("C++x"));
    }

    [AssetFact(Vocab)]
    public void Special_tokens_inside_text_stay_whole()
    {
        Assert.Equal(["the", "[MASK]", "sat", "[SEP]", "[", "mask", "]"], Tok.Tokenize("The [MASK] sat[SEP] [mask]"));
        Assert.Equal(103, Tok.MaskId);
        Assert.True(Tok.IsSpecialId(Tok.PadId));
    }

    [AssetFact(Vocab)]
    public void Basic_tokenizer_split_for_the_trainer()
    {
        var words = new BasicTokenizer(new BertTokenizerOptions()).Split("Héllo,  WORLD 中文");
        Assert.Equal(["hello", ",", "world", "中", "文"], words.Select(w => w.Text));
        Assert.Equal((0, 5), (words[0].Start, words[0].End));
        Assert.Equal((14, 15), (words[3].Start, words[3].End));
    }
}
