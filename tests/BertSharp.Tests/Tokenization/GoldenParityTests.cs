using System.Text;
using System.Text.Json;
using BertSharp.Tokenization;
using Xunit;
using Xunit.Abstractions;

namespace BertSharp.Tests.Tokenization;

/// <summary>
/// Record-by-record parity with the Hugging Face goldens (golden/tokenizer/*.jsonl): the Rust fast tokenizer's
/// tokens, ids, masks, offsets (code points) and sequence ids, and the Python slow tokenizer's output where the two agree.
/// </summary>
public class GoldenParityTests(ITestOutputHelper output)
{
    public const string Uncased = "golden/tokenizer/uncased.jsonl";
    public const string Multilingual = "golden/tokenizer/multilingual_cased.jsonl";
    public const string Chinese = "golden/tokenizer/chinese_vocab_uncased.jsonl";
    public const string UncasedVocab = "assets/vocab/bert-base-uncased/vocab.txt";
    public const string UncasedJson = "assets/vocab/bert-base-uncased/tokenizer.json";
    public const string MultilingualVocab = "assets/vocab/bert-base-multilingual-cased/vocab.txt";
    public const string ChineseVocab = "assets/vocab/bert-base-chinese/vocab.txt";

    [AssetFact(Uncased, UncasedVocab)]
    public void Uncased_vocab_txt() => Check(Uncased, BertTokenizer.FromVocabFile(TestAssets.Path(UncasedVocab)));

    [AssetFact(Uncased, UncasedJson)]
    public void Uncased_tokenizer_json() => Check(Uncased, BertTokenizer.FromTokenizerJson(TestAssets.Path(UncasedJson)));

    [AssetFact(Multilingual, MultilingualVocab)]
    public void Multilingual_cased() =>
        Check(Multilingual, BertTokenizer.FromVocabFile(TestAssets.Path(MultilingualVocab), new BertTokenizerOptions { DoLowerCase = false }));

    [AssetFact(Chinese, ChineseVocab)]
    public void Chinese_vocab_uncased() =>
        Check(Chinese, BertTokenizer.FromVocabFile(TestAssets.Path(ChineseVocab), new BertTokenizerOptions { DoLowerCase = true }));

    void Check(string golden, BertTokenizer tok)
    {
        int records = 0, fastOk = 0, slowCompared = 0, slowOk = 0, wordpieceOk = 0;
        var failures = new StringBuilder();
        foreach (var line in File.ReadLines(TestAssets.Path(golden)))
        {
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            records++;
            string text = r.GetProperty("text").GetString()!;
            string? pair = r.GetProperty("text_pair").ValueKind == JsonValueKind.String ? r.GetProperty("text_pair").GetString() : null;
            var options = new EncodeOptions();
            if (r.GetProperty("max_length").ValueKind == JsonValueKind.Number)
                options = options with { MaxLength = r.GetProperty("max_length").GetInt32(), Truncation = TruncationStrategy.LongestFirst };
            var enc = tok.Encode(text, pair, options);
            string id = $"{r.GetProperty("kind").GetString()}#{r.GetProperty("id").GetInt32()}";

            var fast = r.GetProperty("rust_fast");
            var diff = Compare(enc, fast, withOffsets: true, text, pair);
            if (diff is null) fastOk++;
            else if (failures.Length < 6000) failures.AppendLine($"{id} {Esc(text)} | {Esc(pair)}: fast {diff}");

            if (r.GetProperty("fast_equals_slow").GetBoolean())
            {
                slowCompared++;
                var slow = r.GetProperty("hf_slow");
                var sdiff = Compare(enc, slow, withOffsets: false, text, pair);
                if (sdiff is null) slowOk++;
                else if (failures.Length < 6000) failures.AppendLine($"{id} {Esc(text)}: slow {sdiff}");
            }
            var wp = r.GetProperty("hf_slow").GetProperty("wordpiece_tokens").EnumerateArray().Select(x => x.GetString()!).ToArray();
            var mine = tok.Tokenize(text).Concat(pair is null ? [] : tok.Tokenize(pair)).ToArray();
            if (wp.SequenceEqual(mine)) wordpieceOk++;
            else if (failures.Length < 6000) failures.AppendLine($"{id} {Esc(text)}: wordpiece [{string.Join(" ", mine)}] != [{string.Join(" ", wp)}]");
        }
        var summary = $"{Path.GetFileName(golden)}: rust_fast {fastOk}/{records}, hf_slow {slowOk}/{slowCompared} (fast_equals_slow records), wordpiece_tokens {wordpieceOk}/{records}";
        output.WriteLine(summary);
        Assert.True(records == 860 && fastOk == records && slowOk == slowCompared && wordpieceOk == records, summary + "\n" + failures);
    }

    static string Esc(string? s) => s is null ? "null" : JsonSerializer.Serialize(s);

    static string? Compare(BertEncoding enc, JsonElement expected, bool withOffsets, string text, string? pair)
    {
        string? Ints(string name, int[] actual)
        {
            var exp = expected.GetProperty(name).EnumerateArray().Select(x => x.GetInt32()).ToArray();
            return exp.SequenceEqual(actual) ? null : $"{name} [{string.Join(",", actual)}] != [{string.Join(",", exp)}]";
        }
        var tokens = expected.GetProperty("tokens").EnumerateArray().Select(x => x.GetString()!).ToArray();
        if (!tokens.SequenceEqual(enc.Tokens)) return $"tokens [{string.Join(" ", enc.Tokens)}] != [{string.Join(" ", tokens)}]";
        var d = Ints("input_ids", enc.InputIds) ?? Ints("token_type_ids", enc.TokenTypeIds) ?? Ints("attention_mask", enc.AttentionMask)
            ?? Ints("special_tokens_mask", enc.SpecialTokensMask);
        if (d is not null || !withOffsets) return d;
        var offsets = expected.GetProperty("offsets").EnumerateArray().Select(x => (x[0].GetInt32(), x[1].GetInt32())).ToArray();
        var mine = enc.GetCodePointOffsets(text, pair);
        if (!offsets.SequenceEqual(mine))
            return $"offsets [{string.Join(" ", mine.Select(o => $"{o.Start}-{o.End}"))}] != [{string.Join(" ", offsets.Select(o => $"{o.Item1}-{o.Item2}"))}]";
        var seq = expected.GetProperty("sequence_ids").EnumerateArray().Select(x => x.ValueKind == JsonValueKind.Null ? (int?)null : x.GetInt32()).ToArray();
        if (!seq.SequenceEqual(enc.SequenceIds)) return $"sequence_ids differ";
        return null;
    }
}
