using System.CommandLine;
using BertSharp.Cli;
using BertSharp.Data;
using BertSharp.Tokenization;
using Xunit;

namespace BertSharp.Tests.Tokenization;

public sealed class VocabTrainerTests
{
    const string SmallTrain = "assets/data/imdb/small_train.jsonl";
    static readonly string[] Specials = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    /// <summary>
    /// A small synthetic corpus: Zipf-distributed pseudo-words built from shared syllables (so subwords recur), a frequent
    /// long word, accented words, punctuation, and one word that occurs once.
    /// </summary>
    static List<string> Synthetic()
    {
        string[] syllables = ["ka", "lo", "mi", "ne", "ru", "ta", "shi", "po", "vel", "dor"];
        var rng = new Random(7);
        var lexicon = new List<string> { "the", "and", "Café", "naïve" };
        for (int i = 0; i < 150; i++)
        {
            int n = 1 + rng.Next(4);
            lexicon.Add(string.Concat(Enumerable.Range(0, n).Select(_ => syllables[rng.Next(syllables.Length)])));
        }
        var docs = new List<string>();
        for (int d = 0; d < 300; d++)
        {
            var words = new List<string>();
            for (int i = 0; i < 12; i++) words.Add(lexicon[(int)(lexicon.Count * Math.Pow(rng.NextDouble(), 2.5))]);
            if (d % 3 == 0) words.Add("Blorptastic");
            words.Add(rng.Next(2) == 0 ? "running." : "walking!");
            docs.Add(string.Join(' ', words));
        }
        docs.Add("the zyxwvq once");
        return docs;
    }

    static WordPieceTrainerOptions Options(int size, int minFrequency = 2, int reserved = 0, int threads = 2) => new()
    {
        VocabSize = size, Lowercase = true, MinFrequency = minFrequency, ReservedUnused = reserved, Threads = threads,
    };

    static readonly Lazy<List<string>> SmallTrainDocs = new(() =>
        TextCorpus.Read([TestAssets.Path(SmallTrain)], new TextCorpusOptions { Format = CorpusFormat.Jsonl }).ToList());

    static readonly Lazy<Vocabulary> SmallTrainVocab = new(() => WordPieceTrainer.Train(SmallTrainDocs.Value, Options(2000)));

    [Fact]
    public void Vocab_SpecialsFirstInOrder_ThenAlphabet_ExactSize()
    {
        var vocab = WordPieceTrainer.Train(Synthetic(), Options(120));
        Assert.Equal(120, vocab.Count);
        Assert.Equal(Specials, vocab.Tokens.Take(5));
        // The alphabet follows: single characters, then their ## forms.
        Assert.Equal("!", vocab[5]);
        Assert.Contains("##!", vocab.Tokens);
        Assert.Contains("##z", vocab.Tokens);
        Assert.True(vocab["z"] < vocab["##a"]);
        Assert.DoesNotContain("C", vocab.Tokens); // lowercased
        // Words are pre-tokenized exactly as BertTokenizer will see them (accents follow BasicTokenizer).
        var cafe = new BasicTokenizer(new BertTokenizerOptions { DoLowerCase = true }).Split("Café").Single().Text;
        Assert.Contains(cafe, vocab.Tokens);
        Assert.Equal(vocab.Count, vocab.Tokens.Distinct(StringComparer.Ordinal).Count());
    }

    [Fact]
    public void Vocab_UnusedReserveFollowsSpecials()
    {
        var vocab = WordPieceTrainer.Train(Synthetic(), Options(100, reserved: 4));
        Assert.Equal(100, vocab.Count);
        Assert.Equal(Specials.Concat(["[unused0]", "[unused1]", "[unused2]", "[unused3]"]), vocab.Tokens.Take(9));
        Assert.NotEqual("[unused4]", vocab[9]);
    }

    [Fact]
    public void Vocab_DeterministicAcrossRunsAndThreadCounts()
    {
        var a = WordPieceTrainer.Train(Synthetic(), Options(90, threads: 2));
        var b = WordPieceTrainer.Train(Synthetic(), Options(90, threads: 2));
        var c = WordPieceTrainer.Train(Synthetic(), Options(90, threads: 1));
        Assert.Equal(a.Tokens, b.Tokens);
        Assert.Equal(a.Tokens, c.Tokens);
    }

    [Fact]
    public void Vocab_FrequentWordBecomesOneToken()
    {
        var vocab = WordPieceTrainer.Train(Synthetic(), Options(120));
        Assert.Contains("blorptastic", vocab.Tokens);
        var tok = new BertTokenizer(vocab, new BertTokenizerOptions { DoLowerCase = true });
        Assert.Equal(["the", "blorptastic", "running", "."], tok.Tokenize("The Blorptastic running."));
    }

    [Fact]
    public void Vocab_MinFrequencyRespected()
    {
        // "zyxwvq" occurs once: with --min-frequency 2 no subword of it beyond single characters may be learned.
        var strict = WordPieceTrainer.Train(Synthetic(), Options(200, minFrequency: 2));
        Assert.DoesNotContain(strict.Tokens, t => t.Length > 1 && !t.StartsWith("##", StringComparison.Ordinal) && "zyxwvq".StartsWith(t, StringComparison.Ordinal));
        Assert.DoesNotContain(strict.Tokens, t => t.StartsWith("##", StringComparison.Ordinal) && t.Length > 3 && "zyxwvq".Contains(t[2..], StringComparison.Ordinal));
        // With 1 it is learned whole (the corpus cannot fill 200 then, so everything used at least once is in).
        var loose = WordPieceTrainer.Train(Synthetic(), Options(400, minFrequency: 1));
        Assert.Contains("zyxwvq", loose.Tokens);
        Assert.True(loose.Count < 400);
        // A high minimum learns only the most used words.
        var high = WordPieceTrainer.Learn(WordPieceTrainer.CountWords(Synthetic(), Options(400)), Options(400, minFrequency: 250));
        Assert.False(high.Filled);
        Assert.True(high.Threshold >= 250);
        Assert.DoesNotContain("blorptastic", high.Vocabulary.Tokens); // used 100 times
        Assert.Contains("the", high.Vocabulary.Tokens);
    }

    [AssetFact(SmallTrain)]
    public void SmallTrain_ExactSize_FrequentWords_SingleTokens()
    {
        var vocab = SmallTrainVocab.Value;
        Assert.Equal(2000, vocab.Count);
        Assert.Equal(Specials, vocab.Tokens.Take(5));
        foreach (var w in new[] { "movie", "film", "the", "good", "bad", "acting" })
            Assert.Contains(w, vocab.Tokens);
        Assert.Contains(vocab.Tokens, t => t.StartsWith("##", StringComparison.Ordinal) && t.Length > 3);
    }

    [AssetFact(SmallTrain)]
    public void SmallTrain_TrainedVocabLoadsAndRoundTrips()
    {
        var path = Path.Combine(Path.GetTempPath(), $"vocab-test-{Guid.NewGuid():N}.txt");
        try
        {
            WordPieceTrainer.Save(SmallTrainVocab.Value, path);
            var options = new BertTokenizerOptions { DoLowerCase = true };
            var tok = BertTokenizer.FromVocabFile(path, options);
            var basic = new BasicTokenizer(options);
            int checkedTexts = 0;
            foreach (var text in SmallTrainDocs.Value.Take(200).Append("Café NAÏVE résumé, déjà vu!"))
            {
                var enc = tok.Encode(text);
                if (enc.InputIds.Contains(tok.UnkId)) continue;
                var expected = string.Join(' ', basic.Split(text).Select(w => w.Text));
                Assert.Equal(expected, tok.Decode(enc.InputIds, skipSpecialTokens: true, cleanUpTokenizationSpaces: false));
                checkedTexts++;
            }
            Assert.True(checkedTexts >= 150, $"only {checkedTexts} texts without [UNK]");
            var accented = "Café NAÏVE résumé, déjà vu!";
            Assert.DoesNotContain(tok.UnkId, tok.Encode(accented).InputIds);
            Assert.Equal(string.Join(' ', basic.Split(accented).Select(w => w.Text)), tok.Decode(tok.Encode(accented).InputIds, cleanUpTokenizationSpaces: false));
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void Options_TooSmallVocab_ClearErrors()
    {
        var e1 = Assert.Throws<ArgumentException>(() => WordPieceTrainer.Train(Synthetic(), Options(5)));
        Assert.Contains("no room", e1.Message);
        var e2 = Assert.Throws<ArgumentException>(() => WordPieceTrainer.Train(Synthetic(), Options(20)));
        Assert.Contains("smaller than", e2.Message);
        Assert.Contains("--limit-alphabet", e2.Message);
        Assert.Throws<ArgumentException>(() => WordPieceTrainer.Train(Synthetic(), Options(100, minFrequency: 0)));
        // A smaller alphabet makes it fit: the rarest characters go, words using them are not learned from.
        var small = WordPieceTrainer.Train(Synthetic(), Options(20) with { LimitAlphabet = 6 });
        Assert.True(small.Count <= 20);
        Assert.All(small.Tokens.Skip(5).Take(6), t => Assert.Single(t));
        Assert.All(small.Tokens.Skip(11).Take(6), t => Assert.Equal(3, t.Length));
    }

    [Fact]
    public void Corpus_BadJsonl_NamesFileAndLine()
    {
        using var dir = new TempDir();
        var bad = dir.Write("bad.jsonl", "{\"text\": \"fine\"}\n{\"text\": \"broken\n");
        var e = Assert.Throws<FormatException>(() => TextCorpus.Read([bad], new TextCorpusOptions { Format = CorpusFormat.Jsonl }).ToList());
        Assert.StartsWith($"{bad}:2: invalid JSON", e.Message);
        var noField = dir.Write("nofield.jsonl", "{\"body\": \"x\"}\n");
        e = Assert.Throws<FormatException>(() => TextCorpus.Read([noField], new TextCorpusOptions { Format = CorpusFormat.Jsonl }).ToList());
        Assert.Equal($"{noField}:1: the object has no field \"text\"", e.Message);
        var br = dir.Write("br.jsonl", "{\"text\": \"one<br /><br />two<BR>three\"}\n\n{\"text\": null}\n");
        Assert.Equal(["one  two three"], TextCorpus.Read([br], new TextCorpusOptions { Format = CorpusFormat.Jsonl }).ToList());
    }

    [Fact]
    public void Cli_TrainsAndReportsBadInputs()
    {
        using var dir = new TempDir();
        var text = dir.Write("corpus.txt", string.Join('\n', Synthetic()));
        var jsonl = dir.Write("corpus.jsonl", string.Join('\n', Synthetic().Select(d => System.Text.Json.JsonSerializer.Serialize(new { text = d }))));
        var badJsonl = dir.Write("bad.jsonl", "{\"text\": \"ok\"}\nnot json\n");
        var output = Path.Combine(dir.Path, "vocab.txt");

        var (rc, err) = Bert("vocab", "train", "--input", text, "--vocab-size", "100", "--lowercase", "--output", output);
        Assert.True(rc == 0, err);
        Assert.Equal(100, File.ReadAllLines(output).Length);
        var fromText = File.ReadAllLines(output);

        (rc, err) = Bert("vocab", "train", "--input", jsonl, "--format", "jsonl", "--vocab-size", "100", "--lowercase", "--output", output);
        Assert.True(rc == 0, err);
        Assert.Equal(fromText, File.ReadAllLines(output));
        Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));

        (rc, err) = Bert("vocab", "train", "--input", text, "--vocab-size", "5000", "--lowercase", "--output", output);
        Assert.Equal(0, rc);
        Assert.Contains("warning: the corpus could only fill", err);

        (rc, err) = Bert("vocab", "train", "--input", Path.Combine(dir.Path, "missing.txt"), "--vocab-size", "100", "--output", output);
        Assert.Equal(2, rc);
        Assert.Contains("input file not found", err);

        (rc, err) = Bert("vocab", "train", "--input", text, "--vocab-size", "20", "--output", output);
        Assert.Equal(2, rc);
        Assert.Contains("is smaller than the 5 special/reserved tokens", err);

        (rc, err) = Bert("vocab", "train", "--input", text, "--format", "csv", "--vocab-size", "100", "--output", output);
        Assert.Equal(2, rc);
        Assert.Contains("unknown input format 'csv'", err);

        (rc, err) = Bert("vocab", "train", "--input", badJsonl, "--vocab-size", "100", "--output", output);
        Assert.Equal(2, rc);
        Assert.Contains($"{badJsonl}:2: invalid JSON", err);
        Assert.Single(err.Trim().Split('\n'));
    }

    [Fact]
    public void Cli_RefusesAnEmptyCorpus()
    {
        using var dir = new TempDir();
        var output = Path.Combine(dir.Path, "vocab.txt");
        foreach (var (name, content, format) in new[] { ("empty.txt", "", "text"), ("blank.txt", "\n  \n\t\n", "text"), ("empty.jsonl", "{\"text\": \"\"}\n", "jsonl") })
        {
            var input = dir.Write(name, content);
            var (rc, err) = Bert("vocab", "train", "--input", input, "--format", format, "--vocab-size", "100", "--output", output);
            Assert.Equal(2, rc);
            Assert.StartsWith($"bert: error: {input}: the corpus has no words", err);
            Assert.Single(err.Trim().Split('\n'));
            Assert.False(File.Exists(output), "no vocabulary may be written for an empty corpus");
            Assert.Empty(Directory.GetFiles(dir.Path, "*.tmp"));
        }
        // The library refuses too (pretrain --train-vocab goes through it).
        Assert.Throws<ArgumentException>(() => WordPieceTrainer.Learn(new Dictionary<string, long>(), Options(100)));
        Assert.Throws<ArgumentException>(() => WordPieceTrainer.Train([], Options(100)));
    }

    static readonly object ConsoleLock = new();

    static (int Rc, string Err) Bert(params string[] args)
    {
        lock (ConsoleLock)
        {
            var root = new RootCommand { VocabCommand.Create() };
            var err = new StringWriter();
            var old = Console.Error;
            Console.SetError(err);
            try
            {
                int rc = root.Parse(args).Invoke(new InvocationConfiguration { Error = err, Output = TextWriter.Null });
                return (rc, err.ToString());
            }
            finally
            {
                Console.SetError(old);
            }
        }
    }

    sealed class TempDir : IDisposable
    {
        public string Path { get; } = Directory.CreateTempSubdirectory("vocab-test-").FullName;
        public string Write(string name, string content)
        {
            var p = System.IO.Path.Combine(Path, name);
            File.WriteAllText(p, content);
            return p;
        }
        public void Dispose() => Directory.Delete(Path, true);
    }
}
