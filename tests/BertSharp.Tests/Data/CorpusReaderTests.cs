using System.Text;
using System.Text.RegularExpressions;
using BertSharp.Data;
using Xunit;

namespace BertSharp.Tests.Data;

public class CorpusReaderTests
{
    const string Sample = "assets/data/bert_pretraining_sample/sample_text.txt";
    const string WikiValid = "assets/data/wikitext-2/valid.txt";
    const string ImdbSmallTest = "assets/data/imdb/small_test.jsonl";

    [AssetFact(Sample)]
    public void GoogleSampleHasThreeDocumentsOneSentencePerLine()
    {
        var path = TestAssets.Path(Sample);
        var docs = CorpusReader.ReadGoogleText(path).ToList();
        Assert.Equal(3, docs.Count);
        var lines = File.ReadAllLines(path).Select(l => l.Trim()).Where(l => l.Length > 0).ToList();
        Assert.Equal(lines, docs.SelectMany(d => d.Sentences));
    }

    [AssetFact(WikiValid)]
    public void WikiTextDocumentsStartAtTitles()
    {
        var path = TestAssets.Path(WikiValid);
        var title = new Regex(@"^ = [^=].* = $");
        int titles = File.ReadLines(path).Count(l => title.IsMatch(l));
        Assert.True(titles > 10);
        var docs = CorpusReader.ReadWikiText(path).ToList();
        Assert.Equal(titles, docs.Count);
        Assert.DoesNotContain(docs.SelectMany(d => d.Sentences), s => s.Contains("= =") || s.Contains("@.@"));
        Assert.Contains(docs[0].Sentences, s => s.StartsWith("Homarus gammarus , known as the European lobster", StringComparison.Ordinal));
        Assert.Contains("It is closely related to the American lobster , H. americanus .", docs[0].Sentences);

        var kept = CorpusReader.ReadWikiText(path, WikiSubheadingMode.KeepAsSentence, keepTitle: true).First();
        Assert.Equal("Homarus gammarus", kept.Sentences[0]);
        Assert.Contains("Description", kept.Sentences);
    }

    [AssetFact(ImdbSmallTest)]
    public void JsonlImdbOneDocumentPerRecordWithoutBrTags()
    {
        var path = TestAssets.Path(ImdbSmallTest);
        int records = File.ReadLines(path).Count(l => l.Trim().Length > 0);
        var docs = CorpusReader.ReadJsonl(path).ToList();
        Assert.Equal(records, docs.Count);
        Assert.DoesNotContain(docs.SelectMany(d => d.Sentences), s => s.Contains("<br", StringComparison.OrdinalIgnoreCase));
        Assert.True(docs.Average(d => d.Sentences.Count) > 3);
    }

    [Fact]
    public void BadJsonlReportsFileAndLine()
    {
        using var tmp = new TempFolder("jsonl");
        var dir = tmp.Path;
        var path = Path.Combine(dir, "bad.jsonl");
        File.WriteAllText(path, "{\"text\": \"Fine. Good.\"}\n\n{\"text\": \"oops\"\n");
        var e = Assert.Throws<FormatException>(() => CorpusReader.ReadJsonl(path).ToList());
        Assert.Contains($"{path}:3:", e.Message);

        File.WriteAllText(path, "{\"text\": \"Fine.\"}\n{\"body\": \"no text\"}\n");
        e = Assert.Throws<FormatException>(() => CorpusReader.ReadJsonl(path).ToList());
        Assert.Contains($"{path}:2:", e.Message);
        Assert.Contains("\"text\"", e.Message);

        File.WriteAllText(path, "{\"text\": 5}\n");
        e = Assert.Throws<FormatException>(() => CorpusReader.ReadJsonl(path).ToList());
        Assert.Contains($"{path}:1:", e.Message);

        var bytes = new List<byte>(Encoding.UTF8.GetBytes("{\"text\": \"ok.\"}\n{\"text\": \"caf"));
        bytes.AddRange([0xC3, 0x28]); // invalid UTF-8 sequence
        bytes.AddRange(Encoding.UTF8.GetBytes("\"}\n"));
        File.WriteAllBytes(path, bytes.ToArray());
        e = Assert.Throws<FormatException>(() => CorpusReader.ReadJsonl(path).ToList());
        Assert.Contains($"{path}:2:", e.Message);
        Assert.Contains("UTF-8", e.Message);
    }

    [Fact]
    public void GoogleTextHandlesBomCrlfAndRepeatedBlankLines()
    {
        using var tmp = new TempFolder("google");
        var dir = tmp.Path;
        var path = Path.Combine(dir, "c.txt");
        File.WriteAllBytes(path, [0xEF, 0xBB, 0xBF, .. Encoding.UTF8.GetBytes("One.\r\nTwo.\r\n\r\n\r\n  \nThree.\n\nFour.")]);
        var docs = CorpusReader.ReadGoogleText(path).ToList();
        Assert.Equal(new[] { new[] { "One.", "Two." }, new[] { "Three." }, new[] { "Four." } }, docs.Select(d => d.Sentences.ToArray()));
    }

    [Fact]
    public void TextFolderModes()
    {
        using var tmp = new TempFolder("folder");
        var dir = tmp.Path;
        File.WriteAllText(Path.Combine(dir, "b.txt"), "Second file. It has two sentences.\n\nAnd a paragraph.");
        File.WriteAllText(Path.Combine(dir, "a.txt"), "First file.");
        File.WriteAllText(Path.Combine(dir, "c.md"), "Not a text file.");
        var perFile = CorpusReader.Read(CorpusSpec.TextFolder(dir)).ToList();
        Assert.Equal(2, perFile.Count);
        Assert.Equal(new[] { "First file." }, perFile[0].Sentences);
        Assert.Equal(new[] { "Second file.", "It has two sentences.", "And a paragraph." }, perFile[1].Sentences);

        var google = CorpusReader.Read(CorpusSpec.TextFolder(dir, TextFolderMode.GoogleFormat)).ToList();
        Assert.Equal(3, google.Count);
        Assert.Equal(new[] { "Second file. It has two sentences." }, google[1].Sentences);
    }

    [Fact]
    public void MissingFilesAreClearErrors()
    {
        Assert.Throws<FileNotFoundException>(() => CorpusReader.Read(CorpusSpec.GoogleText("/nonexistent/x.txt")).ToList());
        Assert.Throws<DirectoryNotFoundException>(() => CorpusReader.Read(CorpusSpec.TextFolder("/nonexistent/dir")).ToList());
    }
}
