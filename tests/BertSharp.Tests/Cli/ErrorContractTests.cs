using System.CommandLine;
using Xunit;

namespace BertSharp.Tests.Cli;

/// <summary>
/// The CLI's error contract, one test per rule: every error is one <c>bert: error: …</c> line on stderr (no help dump,
/// no stack trace), exit 2 for bad arguments and bad files, 1 only for internal failures; the same invalid-UTF-8
/// message in every verb; inputs that yield nothing say so.
/// </summary>
[Collection("Console")]
public class ErrorContractTests
{
    static string Model => TestAssets.Path(TestAssets.TinyRandom);

    static string Temp(string name)
    {
        var dir = Path.Combine(Path.GetTempPath(), "bertsharp-errors-" + name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(dir);
        return dir;
    }

    static void AssertOneErrorLine(int exit, string stdout, string stderr, string contains, int code = 2)
    {
        Assert.True(exit == code, $"exit {exit}: {stderr}");
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, "expected one line on stderr:\n" + stderr);
        Assert.StartsWith("bert: error: ", lines[0]);
        Assert.Contains(contains, lines[0]);
        Assert.DoesNotContain("Usage:", stdout + stderr);
        Assert.DoesNotContain("   at ", stderr);
    }

    /// <summary>Every verb (and sub-verb) of the tree, as its argument path.</summary>
    public static TheoryData<string> Verbs()
    {
        var data = new TheoryData<string>();
        foreach (var c in BertSharp.Cli.BertCli.Build().Subcommands)
        {
            if (c.Subcommands.Count == 0) data.Add(c.Name);
            foreach (var sub in c.Subcommands) data.Add($"{c.Name} {sub.Name}");
        }
        return data;
    }

    [Theory]
    [MemberData(nameof(Verbs))]
    public void UnknownFlagIsOneLineNamingTheVerbsHelp(string verb)
    {
        var (exit, stdout, stderr) = CliHarness.Run([.. verb.Split(' '), "--no-such-flag"]);
        AssertOneErrorLine(exit, stdout, stderr, $"see `bert {verb} --help`");
        Assert.Contains("'--no-such-flag'", stderr);
    }

    [Theory]
    [InlineData("fill-mask --top-k abc x", "Cannot parse argument 'abc' for option '--top-k'", "bert fill-mask --help")]
    [InlineData("frob", "Unrecognized command or argument 'frob'", "bert --help")]
    [InlineData("", "Required command was not provided", "bert --help")]
    [InlineData("pretrain --batch-size abc --output x", "--batch-size: expected an integer (got 'abc')", "bert: error: --batch-size")]
    [InlineData("pretrain --masking sometimes --output x", "--masking: expected static or dynamic (got 'sometimes')", "bert: error: --masking")]
    public void ParserErrorsAreOneLineAndExitTwo(string args, string message, string alsoContains)
    {
        var (exit, stdout, stderr) = CliHarness.Run(args.Split(' ', StringSplitOptions.RemoveEmptyEntries));
        AssertOneErrorLine(exit, stdout, stderr, message);
        Assert.Contains(alsoContains, stderr);
        if (args.Length == 0) Assert.DoesNotContain("frob", stderr);
        else if (args == "frob") Assert.DoesNotContain("Required command", stderr);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void TruncatedCheckpointIsBadInput()
    {
        var dir = Temp("trunc");
        foreach (var f in new[] { "config.json", "vocab.txt", "model.safetensors" }) File.Copy(Path.Combine(Model, f), Path.Combine(dir, f));
        using (var s = File.OpenWrite(Path.Combine(dir, "model.safetensors"))) s.SetLength(1000);
        var (exit, stdout, stderr) = CliHarness.Run("fill-mask", "--model", dir, "a [MASK] b");
        AssertOneErrorLine(exit, stdout, stderr, "model.safetensors");
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void InvalidConfigJsonIsOneLineEvenWhenItQuotesANewline()
    {
        var dir = Temp("config");
        foreach (var f in new[] { "vocab.txt", "model.safetensors" }) File.Copy(Path.Combine(Model, f), Path.Combine(dir, f));
        File.WriteAllText(Path.Combine(dir, "config.json"), "{\n  \"hidden_size\": \"big\nger\"\n}\n");
        var (exit, stdout, stderr) = CliHarness.Run("fill-mask", "--model", dir, "a [MASK] b");
        AssertOneErrorLine(exit, stdout, stderr, "config.json: invalid config JSON");
    }

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData("0")]
    [InlineData("0.05")]
    public void EmptyCorpusSaysItIsEmpty(string evalFraction)
    {
        var dir = Temp("empty");
        var corpus = Path.Combine(dir, "empty.txt");
        File.WriteAllText(corpus, "\n\n");
        var (exit, stdout, stderr) = CliHarness.Run("pretrain", "--corpus", corpus, "--vocab", Path.Combine(Model, "vocab.txt"),
            "--model-config", "tiny", "--eval-fraction", evalFraction, "--threads", "1", "--output", Path.Combine(dir, "out"));
        AssertOneErrorLine(exit, "", stderr, $"the corpus is empty: {corpus} holds no text");
        Assert.DoesNotContain("hold some out", stdout + stderr);
    }

    /// <summary>The same message, naming file, line, byte and offset, whichever verb reads the file.</summary>
    [AssetFact(TestAssets.TinyRandom)]
    public void InvalidUtf8IsTheSameMessageInEveryVerb()
    {
        var dir = Temp("utf8");
        var bad = Path.Combine(dir, "bad.txt");
        File.WriteAllBytes(bad, [.. "fine line\n"u8, .. "caf"u8, 0xC6, .. " ok\n"u8]);
        var vocab = Path.Combine(Model, "vocab.txt");
        var expected = $"{bad}:2: invalid UTF-8 (byte 0xC6 at offset 13)";
        foreach (var args in new[]
        {
            new[] { "tokenize", "--vocab", vocab, "--input", bad },
            ["vocab", "train", "--input", bad, "--vocab-size", "50", "--output", Path.Combine(dir, "v.txt")],
            ["pretrain", "--corpus", bad, "--vocab", vocab, "--model-config", "tiny", "--threads", "1", "--output", Path.Combine(dir, "o1")],
            ["pretrain", "--corpus", bad, "--train-vocab", "60", "--model-config", "tiny", "--threads", "1", "--output", Path.Combine(dir, "o2")],
        })
        {
            var (exit, _, stderr) = CliHarness.Run(args);
            AssertOneErrorLine(exit, "", stderr, expected);
        }
    }

    [Fact]
    public void TrainVocabWarnsWhenTheCorpusCannotFillTheSize()
    {
        var dir = Temp("shortvocab");
        var corpus = Path.Combine(dir, "c.txt");
        var sentences = Enumerable.Range(0, 40).Select(i => $"the cat number {i % 7} sat on the mat .");
        File.WriteAllText(corpus, string.Join("\n", sentences.Take(20)) + "\n\n" + string.Join("\n", sentences.Skip(20)) + "\n");
        var model = Path.Combine(dir, "model.json");
        File.WriteAllText(model, """{ "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2, "intermediate_size": 32, "max_position_embeddings": 64 }""");
        var (exit, stdout, stderr) = CliHarness.Run("pretrain", "--corpus", corpus, "--train-vocab", "3000", "--model-config", model,
            "--max-seq-length", "32", "--batch-size", "2", "--steps", "1", "--eval-fraction", "0", "--threads", "1",
            "--no-tensorboard", "--no-plots", "--output", Path.Combine(dir, "out"));
        Assert.True(exit == 0, stderr + stdout);
        Assert.Matches(@"warning: --train-vocab 3000: the corpus could only fill \d+ of the 3,000 requested tokens", stdout + stderr);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void TokenizeSaysWhenAnInputHasNoTokens()
    {
        var dir = Temp("nul");
        var nul = Path.Combine(dir, "nul.txt");
        File.WriteAllBytes(nul, new byte[100]);
        var (exit, stdout, stderr) = CliHarness.Run("tokenize", "--vocab", Path.Combine(Model, "vocab.txt"), "--input", nul, "--json");
        Assert.True(exit == 0, stderr);
        Assert.Contains($"bert: note: {nul}:1: no tokens: its 100 characters are all NUL, control characters or whitespace", stderr);
        Assert.Contains("\"tokens\":[\"[CLS]\",\"[SEP]\"]", stdout);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void PretrainDemoPrintsItsPredictionsWithoutVerbose()
    {
        var (exit, stdout, stderr) = CliHarness.Run("pretrain-demo", "--model", Model, "--text-a", "the man went to the store",
            "--text-b", "he bought a gallon of milk");
        Assert.True(exit == 0, stderr);
        var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.StartsWith("[CLS] ", lines[0]);
        Assert.Contains(lines, l => l.StartsWith("position ", StringComparison.Ordinal) && l.Contains(" / pred: "));
        Assert.Contains(lines, l => l.StartsWith("mlm_accuracy = ", StringComparison.Ordinal));
    }
}
