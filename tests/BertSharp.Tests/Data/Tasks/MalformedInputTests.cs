using System.Text;
using BertSharp.Data.Tasks;
using Xunit;

namespace BertSharp.Tests.Data.Tasks;

/// <summary>Every reader rejects malformed rows with one FormatException naming FILE:LINE (or the JSON path) and what was expected.</summary>
public sealed class MalformedInputTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("bertsharp-ftdata-");

    public void Dispose() => _dir.Delete(true);

    string Write(string name, string content)
    {
        var p = Path.Combine(_dir.FullName, name);
        File.WriteAllText(p, content, new UTF8Encoding(false));
        return p;
    }

    static void Fails(Action read, string path, string where, string what)
    {
        var e = Assert.Throws<FormatException>(read);
        Assert.StartsWith(path + where, e.Message);
        Assert.Contains(what, e.Message);
        Assert.DoesNotContain("\n", e.Message);
    }

    [Fact]
    public void Glue_wrong_field_count_bad_label_bad_score_and_missing_column()
    {
        var p = Write("mrpc.tsv", "\uFEFFQuality\t#1 ID\t#2 ID\t#1 String\t#2 String\n1\t1\t2\ta\tb\n0\t3\t4\tonly four\n");
        Fails(() => GlueReader.Read("mrpc", p), p, ":3:", "expected 5 tab-separated fields");
        p = Write("mrpc2.tsv", "Quality\t#1 ID\t#2 ID\t#1 String\t#2 String\nyes\t1\t2\ta\tb\n");
        Fails(() => GlueReader.Read("mrpc", p), p, ":2/Quality:", "expected one of 0, 1; found 'yes'");
        p = Write("rte.tsv", "index\tsentence1\tsentence2\tlabel\n0\ta\tb\tentails\n");
        Fails(() => GlueReader.Read("rte", p), p, ":2/label:", "expected one of entailment, not_entailment");
        p = Write("stsb.tsv", "index\tsentence1\tsentence2\tscore\n0\ta\tb\t5.5\n");
        Fails(() => GlueReader.Read("stsb", p), p, ":2/score:", "between 0 and 5");
        p = Write("stsb2.tsv", "index\tsentence1\tsentence2\tscore\n0\ta\tb\tfive\n");
        Fails(() => GlueReader.Read("stsb", p), p, ":2/score:", "expected a number");
        p = Write("sst.tsv", "text\tlabel\nfine\t1\n");
        Fails(() => GlueReader.Read("sst2", p), p, ":1:", "no column 'sentence'");
        p = Write("cola.tsv", "gj04\t1\t\tok sentence.\ngj04\t1\tonly three\n");
        Fails(() => GlueReader.Read("cola", p), p, ":2:", "expected 4 tab-separated fields (CoLA");
        p = Write("empty.tsv", "");
        Fails(() => GlueReader.Read("sst2", p), p, ":1:", "empty");
        p = Write("blank.tsv", "sentence\tlabel\nok\t1\n\nok\t0\n");
        Fails(() => GlueReader.Read("sst2", p), p, ":3:", "empty line");
        Assert.Throws<ArgumentException>(() => GlueReader.Read("snli", p));
    }

    [Fact]
    public void Invalid_utf8_names_the_line()
    {
        var p = Path.Combine(_dir.FullName, "bad.tsv");
        File.WriteAllBytes(p, [.. Encoding.UTF8.GetBytes("sentence\tlabel\nok\t1\n"), 0xC3, 0x28, (byte)'\t', (byte)'1', (byte)'\n']);
        Fails(() => GlueReader.Read("sst2", p), p, ":3:", "invalid UTF-8");
    }

    [Fact]
    public void Snli_and_imdb()
    {
        var p = Write("snli.txt", "a\tb\t0\na\tb\n");
        Fails(() => SnliReader.Read(p), p, ":2:", "expected 3 tab-separated fields (premise, hypothesis, label)");
        p = Write("snli2.txt", "a\tb\t-\n");
        Fails(() => SnliReader.Read(p), p, ":1/label:", "expected one of 0, 1, 2; found '-'");
        p = Write("imdb.jsonl", "{\"label\": 1, \"text\": \"good\"}\n{\"label\": 1, \"text\": \"good\"\n");
        Fails(() => ImdbReader.Read(p), p, ":2:", "invalid JSON");
        p = Write("imdb2.jsonl", "{\"label\": 2, \"text\": \"good\"}\n");
        Fails(() => ImdbReader.Read(p), p, ":1/label:", "expected 0 or 1; found 2");
        p = Write("imdb3.jsonl", "{\"label\": 1, \"text\": 5}\n");
        Fails(() => ImdbReader.Read(p), p, ":1/text:", "expected a string");
        p = Write("imdb4.jsonl", "{\"label\": 1, \"text\": \"a\"}\n{\"text\": \"b\"}\n");
        Fails(() => ImdbReader.Read(p), p, ":2/label:", "missing");
        p = Write("imdb5.jsonl", "[1, 2]\n");
        Fails(() => ImdbReader.Read(p), p, ":1:", "expected a JSON object");
        // unlabelled file
        p = Write("imdb6.jsonl", "{\"text\": \"a\"}\n\n{\"text\": \"b\"}\n");
        var ds = ImdbReader.Read(p);
        Assert.False(ds.HasLabels);
        Assert.Equal(2, ds.Count);
        Assert.Equal(3, ds.Examples[1].Line);
    }

    [Fact]
    public void Generic_reader_errors()
    {
        var p = Write("g.csv", "text,label\n\"a,b\",x\nc\n");
        Fails(() => GenericTextReader.Read(p, new GenericTextOptions()), p, ":3:", "expected 2 fields as the header, found 1");
        p = Write("g2.csv", "text,label\n\"unterminated,x\nmore\n");
        Fails(() => GenericTextReader.Read(p, new GenericTextOptions()), p, ":2:", "unterminated quoted field");
        p = Write("g3.csv", "text,label\n\"a\"b,x\n");
        Fails(() => GenericTextReader.Read(p, new GenericTextOptions()), p, ":2:", "unexpected 'b' after the closing quote");
        p = Write("g4.csv", "sentence,label\na,x\n");
        Fails(() => GenericTextReader.Read(p, new GenericTextOptions()), p, ":1:", "no column 'text'");
        p = Write("g5.csv", "text,label\na,x\nb,y\n");
        Fails(() => GenericTextReader.Read(p, new GenericTextOptions { Labels = ["x"] }), p, ":3/label:", "expected one of x; found 'y'");
        p = Write("g6.csv", "text,label\na,0.5\nb,high\n");
        Fails(() => GenericTextReader.Read(p, new GenericTextOptions { Regression = true }), p, ":3/label:", "expected a number");
        p = Write("g7.jsonl", "{\"text\": \"a\", \"label\": [1]}\n");
        Fails(() => GenericTextReader.Read(p, new GenericTextOptions()), p, ":1/label:", "expected a string, number or boolean");
        p = Write("g8.jsonl", "{\"text\": \"a\", \"label\": 1}\n{\"text\": \"b\"}\n");
        Fails(() => GenericTextReader.Read(p, new GenericTextOptions()), p, ":2/label:", "missing");
        p = Write("g9.txt", "x");
        Assert.Throws<ArgumentException>(() => GenericTextReader.Read(p, new GenericTextOptions()));
        Assert.Throws<FileNotFoundException>(() => GenericTextReader.Read(Path.Combine(_dir.FullName, "none.csv"), new GenericTextOptions()));
    }

    [Fact]
    public void Conll2003_errors_and_docstart()
    {
        var p = Write("c.txt", "EU NNP B-NP B-ORG\nrejects VBZ B-VP\n");
        Fails(() => Conll2003Reader.Read(p), p, ":2:", "expected 4 space-separated columns (token POS chunk NER), found 3");
        p = Write("c2.txt", "EU NNP B-NP ORG\n");
        Fails(() => Conll2003Reader.Read(p), p, ":1/NER:", "expected an IOB tag");
        p = Write("c3.txt", "-DOCSTART- -X- -X- O\n\nEU NNP B-NP B-ORG\n. . O O\n\n-DOCSTART- -X- -X- O\n\nBonn NNP B-NP B-LOC\n");
        var ds = Conll2003Reader.Read(p);
        Assert.Equal(2, ds.Count);
        Assert.Equal(["EU", "."], ds.Examples[0].Words);
        Assert.Equal(3, ds.Examples[0].Line);
        Assert.Equal(["B-LOC"], ds.Examples[1].Tags!);
        Assert.Equal(["NNP"], Conll2003Reader.Read(p, ConllColumn.Pos).Examples[1].Tags!);
        var e = Assert.Throws<FormatException>(() => ds.TagIds(["O", "B-ORG"]));
        Assert.Contains(p + ":8: tag 'B-LOC' (word 1, 'Bonn') is not one of the 2 labels", e.Message);
    }

    [Fact]
    public void ConllU_errors_ranges_empty_nodes_and_comments()
    {
        string Row(string id, string form, string upos, string xpos) => $"{id}\t{form}\t_\t{upos}\t{xpos}\t_\t_\t_\t_\t_\n";
        var p = Write("u.conllu", "# sent_id = s1\n# text = Don't go\n" + Row("1-2", "Don't", "_", "_") + Row("1", "Do", "AUX", "VBP")
            + Row("2", "n't", "PART", "RB") + Row("2.1", "x", "X", "XX") + Row("3", "go", "VERB", "VB") + "\n" + Row("1", "Hi", "INTJ", "UH") + "\n");
        var ds = ConllUReader.Read(p);
        Assert.Equal(2, ds.Count);
        Assert.Equal("s1", ds.Examples[0].Id);
        Assert.Equal(1, ds.Examples[0].Line);
        Assert.Equal(["Do", "n't", "go"], ds.Examples[0].Words);
        Assert.Equal(["AUX", "PART", "VERB"], ds.Examples[0].Tags!);
        Assert.Equal(["VBP", "RB", "VB"], ConllUReader.Read(p, UdTagColumn.Xpos).Examples[0].Tags!);
        Assert.Equal("1", ds.Examples[1].Id); // no sent_id: index
        p = Write("u2.conllu", Row("1", "a", "X", "X") + "1\ta\tb\n");
        Fails(() => ConllUReader.Read(p), p, ":2:", "expected 10 tab-separated CoNLL-U fields");
        p = Write("u3.conllu", Row("x", "a", "X", "X"));
        Fails(() => ConllUReader.Read(p), p, ":1/ID:", "expected a word id");
        p = Write("u4.conllu", Row("1", "a", "X", "X") + Row("1", "b", "X", "X"));
        Fails(() => ConllUReader.Read(p), p, ":2/ID:", "expected word 2; found 1");
        p = Write("u5.conllu", Row("1-x", "a", "X", "X"));
        Fails(() => ConllUReader.Read(p), p, ":1/ID:", "a range like 1-2");
    }

    [Fact]
    public void Squad_errors_name_the_json_path()
    {
        string File1(string qa) => "{\"version\": \"1.1\", \"data\": [{\"title\": \"T\", \"paragraphs\": [{\"context\": \"Paris is in France.\", \"qas\": [" + qa + "]}]}]}";
        var p = Write("s.json", File1("{\"id\": \"q1\", \"question\": \"Where?\", \"answers\": [{\"text\": \"France\", \"answer_start\": 3}]}"));
        Fails(() => SquadReader.Read(p), p, ": data[0].paragraphs[0].qas[0].answers[0]:", "is not at answer_start 3");
        p = Write("s2.json", File1("{\"id\": \"q1\", \"answers\": []}"));
        Fails(() => SquadReader.Read(p), p, ": data[0].paragraphs[0].qas[0].question:", "expected a string");
        p = Write("s3.json", File1("{\"id\": \"q1\", \"question\": \"Where?\", \"answers\": [{\"text\": \"France\", \"answer_start\": \"12\"}]}"));
        Fails(() => SquadReader.Read(p), p, ": data[0].paragraphs[0].qas[0].answers[0].answer_start:", "non-negative integer");
        p = Write("s4.json", File1("{\"id\": \"q1\", \"question\": \"Where?\", \"answers\": []}"));
        Fails(() => SquadReader.Read(p), p, ": data[0].paragraphs[0].qas[0].answers:", "at least one answer");
        p = Write("s5.json", "{\"data\": [\n{\"title\": \"T\",,}]}");
        Fails(() => SquadReader.Read(p), p, ":2:", "invalid JSON");
        p = Write("s6.json", "{\"version\": \"1.1\"}");
        Fails(() => SquadReader.Read(p), p, ": data:", "expected an array");
        // v2: unanswerable questions have no answers; plausible answers are ignored
        p = Write("s7.json", File1("{\"id\": \"q1\", \"question\": \"Where?\", \"answers\": [], \"plausible_answers\": [{\"text\": \"Paris\", \"answer_start\": 0}], \"is_impossible\": true},"
            + "{\"id\": \"q2\", \"question\": \"Where is Paris?\", \"answers\": [{\"text\": \"France\", \"answer_start\": 12}], \"is_impossible\": false}"));
        var ds = SquadReader.Read(p);
        Assert.True(ds.HasImpossible);
        Assert.True(ds.Examples[0].IsImpossible);
        Assert.Empty(ds.Examples[0].Answers);
        Assert.Equal(new SquadAnswer("France", 12), ds.Examples[1].Answers[0]);
    }

    [Fact]
    public void Squad_answer_start_counts_code_points()
    {
        // "𝔸" is one code point but two UTF-16 units: answer_start 2 (Python index) is UTF-16 index 3.
        var p = Write("s.json", "{\"data\": [{\"title\": \"T\", \"paragraphs\": [{\"context\": \"𝔸 Paris\", \"qas\": [{\"id\": \"q\", \"question\": \"?\", \"answers\": [{\"text\": \"Paris\", \"answer_start\": 2}]}]}]}]}");
        var ds = SquadReader.Read(p);
        Assert.Equal(3, ds.Examples[0].Answers[0].Start);
        var back = Path.Combine(_dir.FullName, "back.json");
        SquadReader.Write(ds, back);
        Assert.Contains("\"answer_start\":2", File.ReadAllText(back));
    }
}
