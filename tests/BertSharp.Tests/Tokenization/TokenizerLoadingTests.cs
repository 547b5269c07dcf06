using System.Text;
using BertSharp.Tokenization;
using Xunit;

namespace BertSharp.Tests.Tokenization;

/// <summary>Loaders and bad inputs: every failure names the file (and line) and what is wrong.</summary>
public sealed class TokenizerLoadingTests : IDisposable
{
    readonly string _dir = Directory.CreateTempSubdirectory("bertsharp-tok-").FullName;
    static readonly string[] Specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];
    static readonly string[] Small = [.. Specials, "hello", "world", "##s", "é", "e", ",", "the", "cafe", "café"];

    public void Dispose() => Directory.Delete(_dir, true);

    string Write(string name, string content)
    {
        var p = Path.Combine(_dir, name);
        Directory.CreateDirectory(Path.GetDirectoryName(p)!);
        File.WriteAllText(p, content, new UTF8Encoding(false));
        return p;
    }

    string WriteVocab(string dir, IEnumerable<string> tokens) => Write(Path.Combine(dir, "vocab.txt"), string.Join("\n", tokens) + "\n");

    [Fact]
    public void Missing_vocab()
    {
        var e = Assert.Throws<FileNotFoundException>(() => BertTokenizer.FromVocabFile(Path.Combine(_dir, "nope.txt")));
        Assert.Contains("nope.txt", e.Message);
        Assert.Throws<FileNotFoundException>(() => BertTokenizer.FromDirectory(_dir));
        Assert.Throws<DirectoryNotFoundException>(() => BertTokenizer.FromDirectory(Path.Combine(_dir, "missing")));
    }

    [Fact]
    public void Empty_vocab()
    {
        var p = Write("empty.txt", "\n\n");
        Assert.Contains("empty", Assert.Throws<FormatException>(() => BertTokenizer.FromVocabFile(p)).Message);
    }

    [Fact]
    public void Duplicate_token_reports_file_and_line()
    {
        var p = Write("dup.txt", string.Join("\n", [.. Specials, "hello", "world", "hello"]));
        var e = Assert.Throws<FormatException>(() => BertTokenizer.FromVocabFile(p));
        Assert.Contains("dup.txt:8", e.Message);
        Assert.Contains("line 6", e.Message);
    }

    [Fact]
    public void Vocab_without_required_specials()
    {
        var p = Write("nospecial.txt", "[PAD]\n[UNK]\nhello\n");
        var e = Assert.Throws<FormatException>(() => BertTokenizer.FromVocabFile(p));
        Assert.Contains("[SEP]", e.Message);
        Assert.Contains("[CLS]", e.Message);
        Assert.Contains("[MASK]", e.Message);
    }

    [Fact]
    public void Invalid_utf8_reports_line()
    {
        var p = Path.Combine(_dir, "bad.txt");
        File.WriteAllBytes(p, [.. "[PAD]\n[UNK]\nab"u8, 0xC3, 0x28, .. "\n"u8]);
        var e = Assert.Throws<FormatException>(() => BertTokenizer.FromVocabFile(p));
        Assert.Contains("bad.txt:3", e.Message);
        Assert.Contains("invalid UTF-8", e.Message);
        Assert.Contains("bad.txt:3", Assert.Throws<FormatException>(() => TextFile.ReadLines(p)).Message);
    }

    [Fact]
    public void Vocab_roundtrip_and_crlf()
    {
        var p = Write("crlf.txt", string.Join("\r\n", Small) + "\r\n");
        var v = Vocabulary.Load(p);
        Assert.Equal(Small.Length, v.Count);
        Assert.True(v.TryGetId("hello".AsSpan(), out int id));
        Assert.Equal(5, id);
        var q = Path.Combine(_dir, "saved.txt");
        v.Save(q);
        Assert.Equal(Small, Vocabulary.Load(q).Tokens);
    }

    [Fact]
    public void Google_release_directory_infers_case_from_name()
    {
        var cased = Path.Combine(_dir, "cased_L-12_H-768_A-12");
        var uncased = Path.Combine(_dir, "uncased_L-12_H-768_A-12");
        var other = Path.Combine(_dir, "my-model");
        WriteVocab(cased, Small);
        WriteVocab(uncased, Small);
        WriteVocab(other, Small);
        Assert.False(BertTokenizer.FromDirectory(cased).Options.DoLowerCase);
        Assert.True(BertTokenizer.FromDirectory(uncased).Options.DoLowerCase);
        Assert.True(BertTokenizer.FromDirectory(other).Options.DoLowerCase);
        Assert.Equal(["[UNK]", "world"], BertTokenizer.FromDirectory(cased).Tokenize("Hello world"));
    }

    [Fact]
    public void Tokenizer_config_is_read()
    {
        var d = Path.Combine(_dir, "hf");
        WriteVocab(d, [.. Small, "<special>"]);
        Write("hf/tokenizer_config.json", """{"do_lower_case": false, "strip_accents": false, "tokenize_chinese_chars": false, "never_split": ["Hello"], "mask_token": {"content": "[MASK]"}, "additional_special_tokens": ["<special>"]}""");
        var tok = BertTokenizer.FromDirectory(d);
        Assert.False(tok.Options.DoLowerCase);
        Assert.False(tok.Options.EffectiveStripAccents);
        Assert.Equal(["Hello"], tok.Options.NeverSplit);
        Assert.Equal(["[UNK]", "<special>", "café"], tok.Tokenize("Hello<special>café"));
    }

    [Fact]
    public void Tokenizer_config_of_another_family_is_rejected()
    {
        var d = Path.Combine(_dir, "roberta");
        WriteVocab(d, Small);
        Write("roberta/tokenizer_config.json", """{"tokenizer_class": "RobertaTokenizer"}""");
        Assert.Contains("RobertaTokenizer", Assert.Throws<FormatException>(() => BertTokenizer.FromDirectory(d)).Message);
    }

    static string Json(string model, string normalizer = """{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true}""") =>
        $$"""{"version":"1.0","added_tokens":[{"id":0,"content":"[PAD]","special":true},{"id":1,"content":"[UNK]","special":true},{"id":2,"content":"[CLS]","special":true},{"id":3,"content":"[SEP]","special":true},{"id":4,"content":"[MASK]","special":true}],"normalizer":{{normalizer}},"pre_tokenizer":{"type":"BertPreTokenizer"},"post_processor":{"type":"BertProcessing","sep":["[SEP]",3],"cls":["[CLS]",2]},"model":{{model}}}""";

    const string WordPieceModel = """{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":5,"vocab":{"[PAD]":0,"[UNK]":1,"[CLS]":2,"[SEP]":3,"[MASK]":4,"hello":5,"world":6,"##s":7}}""";

    [Fact]
    public void Tokenizer_json_wordpiece()
    {
        var p = Write("ok/tokenizer.json", Json(WordPieceModel));
        var tok = BertTokenizer.FromDirectory(Path.GetDirectoryName(p)!);
        Assert.Equal(5, tok.Options.MaxInputCharsPerWord);
        Assert.Equal(["[CLS]", "hello", "[UNK]", "[SEP]"], tok.Encode("HELLO worlds").Tokens); // "worlds" has 6 > 5 chars
    }

    [Fact]
    public void Tokenizer_json_errors()
    {
        var bpe = Write("bpe.json", Json("""{"type":"BPE","vocab":{"a":0},"merges":[]}"""));
        Assert.Contains("BPE", Assert.Throws<FormatException>(() => BertTokenizer.FromTokenizerJson(bpe)).Message);
        var norm = Write("norm.json", Json(WordPieceModel, """{"type":"NFKC"}"""));
        Assert.Contains("NFKC", Assert.Throws<FormatException>(() => BertTokenizer.FromTokenizerJson(norm)).Message);
        var gap = Write("gap.json", Json("""{"type":"WordPiece","vocab":{"[PAD]":0,"[UNK]":5}}"""));
        Assert.Contains("ids", Assert.Throws<FormatException>(() => BertTokenizer.FromTokenizerJson(gap)).Message);
        var nospecial = Write("nospecial.json", """{"model":{"type":"WordPiece","unk_token":"[UNK]","vocab":{"[UNK]":0,"a":1}}}""");
        Assert.Contains("[CLS]", Assert.Throws<FormatException>(() => BertTokenizer.FromTokenizerJson(nospecial)).Message);
        var broken = Write("broken.json", "{ not json");
        Assert.Contains("broken.json", Assert.Throws<FormatException>(() => BertTokenizer.FromTokenizerJson(broken)).Message);
    }
}
