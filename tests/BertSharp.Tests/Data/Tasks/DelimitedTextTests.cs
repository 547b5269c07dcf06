using System.Text;
using BertSharp.Data.Tasks;
using Xunit;

namespace BertSharp.Tests.Data.Tasks;

/// <summary>The CSV parser against hand-written RFC 4180 cases, and the generic text reader.</summary>
public sealed class DelimitedTextTests : IDisposable
{
    readonly DirectoryInfo _dir = Directory.CreateTempSubdirectory("bertsharp-csv-");

    public void Dispose() => _dir.Delete(true);

    string Write(string name, string content, bool bom = false)
    {
        var p = Path.Combine(_dir.FullName, name);
        File.WriteAllText(p, content, new UTF8Encoding(bom));
        return p;
    }

    [Fact]
    public void Csv_quotes_doubled_quotes_embedded_newlines_crlf_and_empty_fields()
    {
        var p = Write("a.csv",
            "text,label\r\n" +
            "plain,1\r\n" +
            "\"with, comma\",0\r\n" +
            "\"say \"\"hi\"\"\",1\r\n" +
            "\"two\r\nlines\",0\r\n" +
            "\r\n" +                                  // blank line: skipped
            ",\r\n" +                                 // two empty fields
            "\"\",\"\"\r\n" +                         // two quoted empty fields
            "a\"b,1\r\n" +                            // quote inside an unquoted field is literal
            "\"last\",2", bom: true);                 // no final newline
        var recs = DelimitedText.ReadCsv(p).ToList();
        Assert.Equal([["text", "label"], ["plain", "1"], ["with, comma", "0"], ["say \"hi\"", "1"], ["two\nlines", "0"], ["", ""], ["", ""], ["a\"b", "1"], ["last", "2"]],
            recs.Select(r => r.Fields).ToArray());
        Assert.Equal([1, 2, 3, 4, 5, 8, 9, 10, 11], recs.Select(r => r.Line).ToArray()); // a record's first line; the blank line 7 is skipped
    }

    [Fact]
    public void Tsv_through_the_csv_parser_and_plain_tsv_lines()
    {
        var p = Write("a.tsv", "text\tlabel\n\"a\tb\"\tx\n\" quoted \"\ty\n");
        Assert.Equal([["text", "label"], ["a\tb", "x"], [" quoted ", "y"]], DelimitedText.ReadCsv(p, '\t').Select(r => r.Fields).ToArray());
        // GLUE-style reading ignores quotes entirely
        Assert.Equal([["text", "label"], ["\"a", "b\"", "x"], ["\" quoted \"", "y"]], DelimitedText.ReadTsvLines(p).Select(r => r.Fields).ToArray());
    }

    [Fact]
    public void Generic_csv_with_pair_and_string_labels_sorted_ordinally()
    {
        var p = Write("pairs.csv", "id,premise,hypothesis,gold\n1,\"A man, sleeping\",\"He \"\"sleeps\"\"\",yes\n2,b,c,no\n3,d,e,yes\n");
        var ds = GenericTextReader.Read(p, new GenericTextOptions { TextColumn = "premise", TextPairColumn = "hypothesis", LabelColumn = "gold" });
        Assert.Equal(["no", "yes"], ds.Labels!);
        Assert.Equal([1, 0, 1], ds.Examples.Select(e => e.Label!.Value).ToArray());
        Assert.Equal("A man, sleeping", ds.Examples[0].Text);
        Assert.Equal("He \"sleeps\"", ds.Examples[0].TextPair);
        Assert.True(ds.HasLabels);
    }

    [Fact]
    public void Generic_integer_labels_sort_numerically_regression_and_unlabelled()
    {
        var p = Write("n.tsv", "text\tlabel\na\t10\nb\t2\nc\t-1\n");
        var ds = GenericTextReader.Read(p, new GenericTextOptions());
        Assert.Equal(["-1", "2", "10"], ds.Labels!);
        Assert.Equal([2, 1, 0], ds.Examples.Select(e => e.Label!.Value).ToArray());
        var r = GenericTextReader.Read(p, new GenericTextOptions { Regression = true });
        Assert.True(r.IsRegression);
        Assert.Equal([10f, 2f, -1f], r.Examples.Select(e => e.Score!.Value).ToArray());
        var u = GenericTextReader.Read(p, new GenericTextOptions { LabelColumn = "stars" });
        Assert.False(u.HasLabels);
        Assert.All(u.Examples, e => Assert.Null(e.Label));
    }

    [Fact]
    public void Generic_jsonl_numbers_and_strings_as_labels()
    {
        var p = Write("j.jsonl", "{\"review\": \"great\", \"stars\": 5}\n{\"review\": \"bad\", \"stars\": 1}\n{\"review\": \"ok\", \"stars\": \"3\"}\n");
        var ds = GenericTextReader.Read(p, new GenericTextOptions { TextColumn = "review", LabelColumn = "stars" });
        Assert.Equal(["1", "3", "5"], ds.Labels!);
        Assert.Equal([2, 0, 1], ds.Examples.Select(e => e.Label!.Value).ToArray());
        Assert.Equal("great", ds.Examples[0].Text);
    }
}
