using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Data.Tasks;
using BertSharp.Tokenization;
using Xunit;

namespace BertSharp.Tests.Data.Tasks;

/// <summary>
/// Features and collated batches against what Hugging Face built for the golden head cases
/// (golden/models/tiny-random/heads/*/manifest.json items → golden/&lt;case&gt;/{input_ids,token_type_ids,attention_mask,labels,
/// start_positions,end_positions}.npy): ids, types, masks, padding, first-sub-token labels and QA start/end positions.
/// </summary>
public class GoldenFeatureTests
{
    const string Heads = TestAssets.TinyRandom + "/heads";

    static BertTokenizer Tok() => BertTokenizer.FromVocabFile(TestAssets.Path(TestAssets.TinyRandom + "/vocab.txt"), new BertTokenizerOptions { DoLowerCase = true });

    static IEnumerable<(string Dir, JsonElement Case)> Cases(string head)
    {
        var dir = TestAssets.Path($"{Heads}/{head}");
        var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "manifest.json"))).RootElement;
        foreach (var c in manifest.GetProperty("cases").EnumerateArray())
            yield return (Path.Combine(dir, c.GetProperty("dir").GetString()!), c);
    }

    static long[] Npy64(string dir, string name) => Npy.Read(Path.Combine(dir, name + ".npy")).ToInt64();

    static void SameInputs(string dir, TaskBatch b)
    {
        Assert.Equal(Npy64(dir, "input_ids"), b.InputIds.data<long>().ToArray());
        Assert.Equal(Npy64(dir, "token_type_ids"), b.TokenTypeIds.data<long>().ToArray());
        Assert.Equal(Npy64(dir, "attention_mask"), b.AttentionMask.data<long>().ToArray());
    }

    [AssetFact(Heads + "/token-classification-9/manifest.json")]
    public void Token_classification_labels_match_hf()
    {
        var tok = Tok();
        int n = 0;
        foreach (var (dir, c) in Cases("token-classification-9"))
        {
            var items = c.GetProperty("items").EnumerateArray().ToArray();
            var examples = items.Select((it, i) => new TokenExample(i.ToString(), it.GetProperty("words").EnumerateArray().Select(w => w.GetString()!).ToArray(),
                it.GetProperty("tags").EnumerateArray().Select(w => w.GetString()!).ToArray(), 1)).ToArray();
            var ds = new TokenDataset("golden", examples);
            var f = TokenFeaturizer.Featurize(tok, examples, ds.TagIds(FineTuneTasks.ConllNerLabels));
            using var b = TaskBatch.Collate(f, Enumerable.Range(0, f.Count).ToArray(), tok.PadId, TaskKind.TokenClassification);
            SameInputs(dir, b);
            Assert.Equal(Npy64(dir, "labels"), b.Labels!.data<long>().ToArray()); // −100 on continuation pieces, specials and padding
            n++;
        }
        Assert.Equal(3, n);
    }

    [AssetFact(Heads + "/question-answering/manifest.json")]
    public void Squad_features_match_hf_start_end_positions()
    {
        var tok = Tok();
        int n = 0;
        foreach (var (dir, c) in Cases("question-answering"))
        {
            var items = c.GetProperty("items").EnumerateArray().ToArray();
            var examples = items.Select((it, i) =>
            {
                var context = it.GetProperty("context").GetString()!;
                var answer = it.GetProperty("answer").GetString()!;
                int start = context.IndexOf(answer, StringComparison.Ordinal);
                Assert.True(start >= 0 && context.IndexOf(answer, start + 1, StringComparison.Ordinal) < 0, "the golden answer occurs once");
                return new SquadExample(i.ToString(), "golden", 0, context, it.GetProperty("question").GetString()!, [new SquadAnswer(answer, start)], false);
            }).ToArray();
            var f = SquadFeaturizer.Featurize(tok, examples);
            Assert.Equal(examples.Length, f.Count); // short contexts: one window each
            using var b = TaskBatch.Collate(f, Enumerable.Range(0, f.Count).ToArray(), tok.PadId, TaskKind.QuestionAnswering);
            SameInputs(dir, b);
            Assert.Equal(Npy64(dir, "start_positions"), b.StartPositions!.data<long>().ToArray());
            Assert.Equal(Npy64(dir, "end_positions"), b.EndPositions!.data<long>().ToArray());
            for (int i = 0; i < items.Length; i++)
            {
                Assert.Equal(items[i].GetProperty("start_position").GetInt32(), f[i].StartPosition);
                Assert.Equal(items[i].GetProperty("end_position").GetInt32(), f[i].EndPosition);
            }
            n++;
        }
        Assert.True(n >= 3);
    }

    [AssetTheory(Heads + "/seq-classification-3/manifest.json", Heads + "/seq-regression-1/manifest.json")]
    [InlineData("seq-classification-3")]
    [InlineData("seq-regression-1")]
    public void Sequence_features_match_hf(string head)
    {
        var tok = Tok();
        bool regression = head.Contains("regression");
        foreach (var (dir, c) in Cases(head))
        {
            var items = c.GetProperty("items").EnumerateArray().ToArray();
            var examples = items.Select(it =>
            {
                var pair = it.GetProperty("text_b");
                var label = it.GetProperty("label");
                return new TextExample("g", it.GetProperty("text_a").GetString()!, pair.ValueKind == JsonValueKind.Null ? null : pair.GetString(),
                    regression ? null : label.GetInt32(), regression ? label.GetSingle() : null, 1);
            }).ToArray();
            var f = TextFeaturizer.Featurize(tok, examples, new TextFeatureOptions { MaxLength = 512 });
            using var b = TaskBatch.Collate(f, Enumerable.Range(0, f.Count).ToArray(), tok.PadId, regression ? TaskKind.Regression : TaskKind.SequenceClassification);
            SameInputs(dir, b);
            var labels = Npy.Read(Path.Combine(dir, "labels.npy"));
            if (regression) Assert.Equal(labels.ToFloat(), b.Labels!.data<float>().ToArray());
            else Assert.Equal(labels.ToInt64(), b.Labels!.data<long>().ToArray());
        }
    }

    /// <summary>Pair truncation (longest_first, max_length 16) against the Rust tokenizer's golden outputs.</summary>
    [AssetFact("golden/tokenizer/uncased.jsonl", TestAssets.UncasedVocab)]
    public void Truncated_pairs_match_the_fast_tokenizer()
    {
        var tok = BertTokenizer.FromVocabFile(TestAssets.Path(TestAssets.UncasedVocab), new BertTokenizerOptions { DoLowerCase = true });
        int n = 0;
        foreach (var line in File.ReadLines(TestAssets.Path("golden/tokenizer/uncased.jsonl")))
        {
            var o = JsonDocument.Parse(line).RootElement;
            if (o.GetProperty("kind").GetString() is not ("pair_trunc16" or "single_trunc16")) continue;
            var pair = o.GetProperty("text_pair");
            var ex = new TextExample("g", o.GetProperty("text").GetString()!, pair.ValueKind == JsonValueKind.Null ? null : pair.GetString(), 0, null, 1);
            var f = TextFeaturizer.Featurize(tok, [ex], new TextFeatureOptions { MaxLength = o.GetProperty("max_length").GetInt32() }).Single();
            var fast = o.GetProperty("rust_fast");
            Assert.Equal(fast.GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()), f.InputIds);
            Assert.Equal(fast.GetProperty("token_type_ids").EnumerateArray().Select(x => x.GetInt32()), f.TokenTypeIds);
            n++;
        }
        Assert.Equal(430, n); // 330 single + 100 pair cases truncated to 16
    }
}
