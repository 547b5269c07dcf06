using BertSharp.Data.Tasks;
using Xunit;

namespace BertSharp.Tests.Data.Tasks;

/// <summary>
/// Every reader on the real files under ../shared/assets/data. Expected counts are ASSETS.md's (or, for the files it
/// calls "canonical", GLUE's published sizes); first/last contents and label totals were read from the files with
/// Python's csv module (delimiter tab, quotechar None) / json / a plain split.
/// </summary>
public class RealFileReaderTests
{
    const string D = "assets/data/";

    // MRPC train: ASSETS.md says 3,668 but the file holds 3,667 data rows (3,668 lines with the header): the pair
    // 2750203/2750153 of msr_paraphrase_train.txt is in neither train.tsv nor dev_ids.tsv. We assert what the file holds.
    [AssetTheory(D + "glue")]
    [InlineData("mrpc", "MRPC/train.tsv", 3667, true)]
    [InlineData("mrpc", "MRPC/dev.tsv", 408, true)]
    [InlineData("mrpc", "MRPC/test.tsv", 1725, false)]
    [InlineData("sst2", "SST-2/train.tsv", 67349, true)]
    [InlineData("sst2", "SST-2/dev.tsv", 872, true)]
    [InlineData("sst2", "SST-2/test.tsv", 1821, false)]
    [InlineData("stsb", "STS-B/train.tsv", 5749, true)]
    [InlineData("stsb", "STS-B/dev.tsv", 1500, true)]
    [InlineData("stsb", "STS-B/test.tsv", 1379, false)]
    [InlineData("cola", "CoLA/train.tsv", 8551, true)]
    [InlineData("cola", "CoLA/dev.tsv", 1043, true)]
    [InlineData("cola", "CoLA/test.tsv", 1063, false)]
    [InlineData("rte", "RTE/train.tsv", 2490, true)]
    [InlineData("rte", "RTE/dev.tsv", 277, true)]
    [InlineData("rte", "RTE/test.tsv", 3000, false)]
    [InlineData("wnli", "WNLI/train.tsv", 635, true)]
    [InlineData("wnli", "WNLI/dev.tsv", 71, true)]
    [InlineData("wnli", "WNLI/test.tsv", 146, false)]
    [InlineData("qnli", "QNLI/dev.tsv", 5463, true)]
    public void Glue_counts_and_label_presence(string task, string file, int count, bool labelled)
    {
        var ds = GlueReader.Read(task, TestAssets.Path(D + "glue/" + file));
        Assert.Equal(count, ds.Count);
        Assert.Equal(labelled, ds.HasLabels);
        var spec = FineTuneTasks.Get(task);
        Assert.Equal(spec.IsPair, ds.Examples.All(e => e.TextPair is not null));
        if (!labelled) Assert.All(ds.Examples, e => { Assert.Null(e.Label); Assert.Null(e.Score); });
        else if (spec.Kind == TaskKind.Regression) Assert.All(ds.Examples, e => Assert.InRange(e.Score!.Value, 0f, 5f));
        else Assert.All(ds.Examples, e => Assert.InRange(e.Label!.Value, 0, spec.Labels!.Count - 1));
    }

    [AssetFact(D + "glue/MRPC/dev.tsv")]
    public void Mrpc_dev_bom_header_first_last_and_positives()
    {
        var ds = GlueReader.Read("mrpc", TestAssets.Path(D + "glue/MRPC/dev.tsv"));
        var first = ds.Examples[0];
        Assert.Equal("He said the foodservice pie business doesn 't fit the company 's long-term growth strategy .", first.Text);
        Assert.Equal("\" The foodservice pie business does not fit our long-term growth strategy .", first.TextPair); // a bare quote, not CSV quoting
        Assert.Equal(1, first.Label);
        Assert.Equal("1355540-1355592", first.Id);
        Assert.Equal(2, first.Line);
        Assert.Equal("In Soviet times the Beatles ' music \" was considered propaganda of an alien ideology .", ds.Examples[^1].TextPair);
        Assert.Equal(279, ds.Examples.Count(e => e.Label == 1));
        Assert.Equal(["not_equivalent", "equivalent"], ds.Labels!);
    }

    [AssetFact(D + "glue/SST-2/dev.tsv", D + "glue/SST-2/test.tsv")]
    public void Sst2_dev_and_test()
    {
        var dev = GlueReader.Read("sst2", TestAssets.Path(D + "glue/SST-2/dev.tsv"));
        Assert.Equal("it 's a charming and often affecting journey . ", dev.Examples[0].Text);
        Assert.Equal(444, dev.Examples.Count(e => e.Label == 1));
        var test = GlueReader.Read("sst2", TestAssets.Path(D + "glue/SST-2/test.tsv"));
        Assert.Equal("0", test.Examples[0].Id);
        Assert.Equal("uneasy mishmash of styles and genres .", test.Examples[0].Text);
        Assert.Equal("1820", test.Examples[^1].Id);
    }

    [AssetFact(D + "glue/STS-B/dev.tsv")]
    public void Stsb_dev_scores()
    {
        var ds = GlueReader.Read("stsb", TestAssets.Path(D + "glue/STS-B/dev.tsv"));
        Assert.True(ds.IsRegression);
        Assert.Null(ds.Labels);
        Assert.Equal("A man with a hard hat is dancing.", ds.Examples[0].Text);
        Assert.Equal("A man wearing a hard hat is dancing.", ds.Examples[0].TextPair);
        Assert.Equal(5f, ds.Examples[0].Score);
        Assert.Equal(4.75f, ds.Examples[1].Score);
        Assert.Equal("New York police officer critically wounded in hatchet attack", ds.Examples[^1].TextPair);
        Assert.Equal(3545.8613, ds.Examples.Sum(e => (double)e.Score!.Value), 3); // Python: sum(float(score))
    }

    [AssetFact(D + "glue/CoLA/dev.tsv", D + "glue/CoLA/test.tsv")]
    public void Cola_headerless_dev_and_headed_test()
    {
        var dev = GlueReader.Read("cola", TestAssets.Path(D + "glue/CoLA/dev.tsv"));
        Assert.Equal("The sailors rode the breeze clear of the rocks.", dev.Examples[0].Text);
        Assert.Equal(1, dev.Examples[0].Line); // no header: the first line is data
        Assert.Equal("John talked to Bill about himself.", dev.Examples[^1].Text); // last line has no newline
        Assert.Equal(721, dev.Examples.Count(e => e.Label == 1));
        var test = GlueReader.Read("cola", TestAssets.Path(D + "glue/CoLA/test.tsv"));
        Assert.Equal("Bill whistled past the house.", test.Examples[0].Text);
        Assert.Equal("A picture of himself frightened John.", test.Examples[^1].Text);
    }

    [AssetFact(D + "glue/RTE/dev.tsv", D + "glue/QNLI/dev.tsv", D + "glue/WNLI/dev.tsv")]
    public void Rte_qnli_string_labels_and_wnli_numeric()
    {
        var rte = GlueReader.Read("rte", TestAssets.Path(D + "glue/RTE/dev.tsv"));
        Assert.Equal(["entailment", "not_entailment"], rte.Labels!);
        Assert.Equal(1, rte.Examples[0].Label); // not_entailment
        Assert.Equal("Christopher Reeve had an accident.", rte.Examples[0].TextPair);
        Assert.Equal(146, rte.Examples.Count(e => e.Label == 0));
        var qnli = GlueReader.Read("qnli", TestAssets.Path(D + "glue/QNLI/dev.tsv"));
        Assert.Equal("What came into force after the new constitution was herald?", qnli.Examples[0].Text);
        Assert.Equal(2702, qnli.Examples.Count(e => e.Label == 0));
        var wnli = GlueReader.Read("wnli", TestAssets.Path(D + "glue/WNLI/dev.tsv"));
        Assert.Equal("The hair has to be cleaned.", wnli.Examples[0].TextPair);
        Assert.Equal(0, wnli.Examples[0].Label);
        Assert.Equal("Eric was not particularly eager to see it.", wnli.Examples[^1].TextPair);
    }

    [AssetTheory(D + "snli")]
    [InlineData("snli_dev.txt", 9842)]
    [InlineData("snli_test.txt", 9824)]
    public void Snli(string file, int count)
    {
        var ds = SnliReader.Read(TestAssets.Path(D + "snli/" + file));
        Assert.Equal(count, ds.Count);
        Assert.Equal(["entailment", "neutral", "contradiction"], ds.Labels!);
        if (file == "snli_test.txt")
        {
            Assert.Equal("this church choir sings to the masses as they sing joyous songs from the book at a church", ds.Examples[0].Text);
            Assert.Equal("the church has cracks in the ceiling", ds.Examples[0].TextPair);
            Assert.Equal(1, ds.Examples[0].Label);
            Assert.Equal("a man is teaching science in a classroom", ds.Examples[^1].TextPair);
            Assert.Equal([3368, 3219, 3237], Enumerable.Range(0, 3).Select(l => ds.Examples.Count(e => e.Label == l)).ToArray());
        }
    }

    [AssetTheory(D + "imdb")]
    [InlineData("small_train.jsonl", 2000, 1000, "train/pos/0_9", "train/neg/1256_3")]
    [InlineData("small_test.jsonl", 1000, 500, "test/pos/0_10", "test/neg/634_1")]
    [InlineData("train.jsonl", 19683, 9822, "train/neg/0_3", "train/pos/12499_7")]
    public void Imdb(string file, int count, int positives, string firstId, string lastId)
    {
        var ds = ImdbReader.Read(TestAssets.Path(D + "imdb/" + file));
        Assert.Equal(count, ds.Count);
        Assert.Equal(positives, ds.Examples.Count(e => e.Label == 1));
        Assert.Equal(firstId, ds.Examples[0].Id);
        Assert.Equal(lastId, ds.Examples[^1].Id);
        if (file == "small_train.jsonl")
        {
            Assert.StartsWith("Bromwell High is a cartoon comedy. It ran at the same time as some other programs about school life, such as \"Teachers\".", ds.Examples[0].Text);
            Assert.Equal(806, ds.Examples[0].Text.Length);
        }
    }

    [AssetTheory(D + "conll2003")]
    [InlineData("eng.train", 14041, 203621)]
    [InlineData("eng.testa", 3250, 51362)]
    [InlineData("eng.testb", 3453, 46435)]
    public void Conll2003_counts_and_labels_in_the_fixed_sets(string file, int sentences, int words)
    {
        var ner = Conll2003Reader.Read(TestAssets.Path(D + "conll2003/" + file), ConllColumn.Ner);
        Assert.Equal(sentences, ner.Count);
        Assert.Equal(words, ner.Examples.Sum(e => e.Words.Length));
        Assert.Empty(ner.DistinctTags().Except(FineTuneTasks.ConllNerLabels));
        ner.TagIds(FineTuneTasks.ConllNerLabels); // no tag outside the set
        var pos = Conll2003Reader.Read(TestAssets.Path(D + "conll2003/" + file), ConllColumn.Pos);
        Assert.Empty(pos.DistinctTags().Except(FineTuneTasks.ConllPosLabels));
    }

    [AssetFact(D + "conll2003/eng.testa")]
    public void Conll2003_testa_first_and_last_sentence()
    {
        var path = TestAssets.Path(D + "conll2003/eng.testa");
        var ner = Conll2003Reader.Read(path, ConllColumn.Ner);
        Assert.Equal(["CRICKET", "-", "LEICESTERSHIRE", "TAKE", "OVER", "AT", "TOP", "AFTER", "INNINGS", "VICTORY", "."], ner.Examples[0].Words);
        Assert.Equal(["O", "O", "B-ORG", "O", "O", "O", "O", "O", "O", "O", "O"], ner.Examples[0].Tags!);
        Assert.Equal(1, ner.Examples[0].Line);
        Assert.Equal(13, ner.Examples[1].Line); // "LONDON NNP B-NP B-LOC" after the first blank line
        var pos = Conll2003Reader.Read(path, ConllColumn.Pos);
        Assert.Equal(["--", "Dhaka", "Newsroom", "880-2-506363"], pos.Examples[^1].Words);
        Assert.Equal([":", "NNP", "NNP", "CD"], pos.Examples[^1].Tags!);
    }

    [AssetTheory(D + "ud_english_ewt")]
    [InlineData("en_ewt-ud-dev.conllu", 2001, 25147)]
    [InlineData("en_ewt-ud-test.conllu", 2077, 25094)]
    public void ConllU_counts_skip_ranges_and_empty_nodes(string file, int sentences, int words)
    {
        var upos = ConllUReader.Read(TestAssets.Path(D + "ud_english_ewt/" + file), UdTagColumn.Upos);
        Assert.Equal(sentences, upos.Count);
        Assert.Equal(words, upos.Examples.Sum(e => e.Words.Length)); // Python count without "1-2" and "8.1" lines
        Assert.Equal(FineTuneTasks.UposLabels.Order(StringComparer.Ordinal), upos.DistinctTags());
        var xpos = ConllUReader.Read(TestAssets.Path(D + "ud_english_ewt/" + file), UdTagColumn.Xpos);
        Assert.Equal(file.Contains("dev") ? 49 : 48, xpos.DistinctTags().Count);
    }

    [AssetFact(D + "ud_english_ewt/en_ewt-ud-dev.conllu")]
    public void ConllU_dev_first_and_last()
    {
        var path = TestAssets.Path(D + "ud_english_ewt/en_ewt-ud-dev.conllu");
        var upos = ConllUReader.Read(path, UdTagColumn.Upos);
        var first = upos.Examples[0];
        Assert.Equal("weblog-blogspot.com_nominations_20041117172713_ENG_20041117_172713-0001", first.Id);
        Assert.Equal(["From", "the", "AP", "comes", "this", "story", ":"], first.Words);
        Assert.Equal(["ADP", "DET", "PROPN", "VERB", "DET", "NOUN", "PUNCT"], first.Tags!);
        var xpos = ConllUReader.Read(path, UdTagColumn.Xpos);
        Assert.Equal(["IN", "DT", "NNP", "VBZ", "DT", "NN", ":"], xpos.Examples[0].Tags!);
        Assert.Equal("reviews-140302-0004", xpos.Examples[^1].Id);
        Assert.Equal(["Also", ",", "they", "have", "great", "customer"], xpos.Examples[^1].Words[..6]);
        Assert.Equal(["RB", ",", "PRP", "VBP", "JJ", "NN"], xpos.Examples[^1].Tags![..6]);
    }

    [AssetFact(D + "squad/dev-v1.1.json")]
    public void Squad_dev_v11()
    {
        var ds = SquadReader.Read(TestAssets.Path(D + "squad/dev-v1.1.json"));
        Assert.Equal("1.1", ds.Version);
        Assert.Equal(48, ds.Titles.Count);
        Assert.Equal(10570, ds.Count);
        Assert.False(ds.HasImpossible);
        var first = ds.Examples[0];
        Assert.Equal("56be4db0acb8001400a502ec", first.Id);
        Assert.Equal("Super_Bowl_50", first.Title);
        Assert.Equal("Which NFL team represented the AFC at Super Bowl 50?", first.Question);
        Assert.Equal(3, first.Answers.Count);
        Assert.Equal(new SquadAnswer("Denver Broncos", 177), first.Answers[0]);
        var last = ds.Examples[^1];
        Assert.Equal("5737aafd1c456719005744ff", last.Id);
        Assert.Equal("Force", last.Title);
        Assert.Equal(47, last.ArticleIndex);
        Assert.Equal("sthène", last.Context.Substring(last.Answers[0].Start, 6));
        Assert.All(ds.Examples, e => Assert.All(e.Answers, a => Assert.Equal(a.Text, e.Context.Substring(a.Start, a.Text.Length))));
    }

    [AssetFact(D + "squad/dev-v1.1.json")]
    public void Squad_split_by_article_is_seeded_disjoint_and_complete()
    {
        var ds = SquadReader.Read(TestAssets.Path(D + "squad/dev-v1.1.json"));
        var a = SquadSplit.ByArticle(ds, 0.25, seed: 7);
        var b = SquadSplit.ByArticle(ds, 0.25, seed: 7);
        var c = SquadSplit.ByArticle(ds, 0.25, seed: 8);
        Assert.Equal(a.EvalTitles, b.EvalTitles);
        Assert.NotEqual(a.EvalTitles, c.EvalTitles);
        Assert.Equal(12, a.EvalTitles.Count); // round(0.25 · 48)
        Assert.Equal(36, a.TrainTitles.Count);
        Assert.Empty(a.TrainTitles.Intersect(a.EvalTitles));
        Assert.Equal(ds.Count, a.Train.Count + a.Eval.Count);
        Assert.All(a.Eval.Examples, e => Assert.Contains(e.Title, a.EvalTitles));
        Assert.All(a.Train.Examples, e => Assert.Contains(e.Title, a.TrainTitles));
        // file order is kept inside each side
        Assert.Equal(a.Eval.Examples.Select(e => e.Id), ds.Examples.Where(e => a.EvalTitles.Contains(e.Title)).Select(e => e.Id));
        Assert.Contains("eval 12 articles", a.Describe());
        Assert.Contains(a.EvalTitles[0], a.Describe());

        // a split written to disk reads back identically (answer starts go back to code points)
        var dir = Directory.CreateTempSubdirectory("bertsharp-squad-");
        try
        {
            var p = Path.Combine(dir.FullName, "eval.json");
            SquadReader.Write(a.Eval, p);
            var back = SquadReader.Read(p);
            Assert.Equal(a.Eval.Count, back.Count);
            Assert.Equal(a.Eval.Examples.Select(e => (e.Id, e.Question, e.Context, e.Title)), back.Examples.Select(e => (e.Id, e.Question, e.Context, e.Title)));
            Assert.Equal(a.Eval.Examples.SelectMany(e => e.Answers), back.Examples.SelectMany(e => e.Answers));
        }
        finally { dir.Delete(true); }
    }
}

/// <summary>Entity counts of the real CoNLL-2003 files through <see cref="BertSharp.Evaluation.SeqEval"/>.</summary>
public class ConllEntityCountTests
{
    // Published CoNLL-2003 English entity counts (Tjong Kim Sang & De Meulder 2003, table 2):
    // train PER 6600 LOC 7140 ORG 6321 MISC 3438; testa PER 1842 LOC 1837 ORG 1341 MISC 922;
    // testb PER 1617 LOC 1668 ORG 1661 MISC 702.
    [AssetTheory("assets/data/conll2003")]
    [InlineData("eng.train", 6600, 7140, 6321, 3438)]
    [InlineData("eng.testa", 1842, 1837, 1341, 922)]
    [InlineData("eng.testb", 1617, 1668, 1661, 702)]
    public void Entities_per_type_match_the_published_counts(string file, int per, int loc, int org, int misc)
    {
        var ds = Conll2003Reader.Read(TestAssets.Path("assets/data/conll2003/" + file));
        var tags = ds.Examples.Select(e => (IReadOnlyList<string>)e.Tags!).ToArray();
        var s = BertSharp.Evaluation.SeqEval.Score(tags, tags);
        Assert.Equal(per, s.PerType["PER"].Support);
        Assert.Equal(loc, s.PerType["LOC"].Support);
        Assert.Equal(org, s.PerType["ORG"].Support);
        Assert.Equal(misc, s.PerType["MISC"].Support);
        Assert.Equal(1.0, s.F1);
        // the files are valid IOB2: strict mode finds the same entities
        var strict = BertSharp.Evaluation.SeqEval.Score(tags, tags, BertSharp.Evaluation.SeqEvalMode.StrictIob2);
        Assert.Equal(s.Micro.Support, strict.Micro.Support);
    }
}
