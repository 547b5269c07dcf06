using System.Diagnostics;
using System.Text;
using System.Text.Json;
using BertSharp.Tokenization;
using Xunit;
using Xunit.Abstractions;

namespace BertSharp.Tests.Tokenization;

/// <summary>
/// `bert tokenize` is linear in the input: code-point offsets come from a per-text index, not a scan from the start
/// of the text per token, JSON is streamed and tables are paged (issue 15 §3).
/// </summary>
[Collection("Console")]
public class TokenizeScalingTests(ITestOutputHelper log)
{
    const string Vocab = GoldenParityTests.UncasedVocab;

    [Fact]
    public void CodePointIndexAgreesWithTheScan()
    {
        // Astral characters, a lone high and a lone low surrogate, a pair at the very start and the very end.
        string[] texts = ["", "plain ascii", "😀a😀b 𝔘x", "\uD83D", "\uDE00a", "a\uD83Db\uDE00c", "😀", "x😀", "😀😀😀", "\uDE00\uD83D\uDE00\uD83D"];
        foreach (var t in texts)
        {
            var index = new CodePointIndex(t);
            for (int i = 0; i <= t.Length + 2; i++)
                Assert.True(CodePoints.FromUtf16(t, i) == index.FromUtf16(i), $"'{t}' at {i}: scan {CodePoints.FromUtf16(t, i)}, index {index.FromUtf16(i)}");
        }
        // And a random mix, checked against the number of code points of every prefix counted by .NET.
        var rng = new Random(5);
        var sb = new StringBuilder();
        for (int i = 0; i < 2000; i++) sb.Append(rng.Next(4) == 0 ? "😀" : ((char)('a' + rng.Next(26))).ToString());
        var s = sb.ToString();
        var idx = new CodePointIndex(s);
        for (int i = 0; i <= s.Length; i++)
            if (i == s.Length || !char.IsLowSurrogate(s[i]))
                Assert.Equal(s[..i].EnumerateRunes().Count(), idx.FromUtf16(i));
    }

    static string Line(int chars, int seed)
    {
        string[] words = ["the", "quick", "brown", "fox", "jumps", "over", "unbelievable", "tokenization", "😀", "naïve", "!"];
        var rng = new Random(seed);
        var sb = new StringBuilder(chars + 16);
        while (sb.Length < chars) sb.Append(words[rng.Next(words.Length)]).Append(' ');
        return sb.ToString(0, chars).TrimEnd();
    }

    static (double Seconds, string Out) Tokenize(string file)
    {
        var sw = Stopwatch.StartNew();
        var (code, stdout, stderr) = Cli.CliHarness.Run("tokenize", "--vocab", TestAssets.Path(Vocab), "--input", file, "--json");
        sw.Stop();
        Assert.True(code == 0, stderr);
        return (sw.Elapsed.TotalSeconds, stdout);
    }

    [AssetFact(Vocab)]
    public void A_5MB_line_takes_time_in_proportion_to_a_50KB_line()
    {
        var dir = Directory.CreateTempSubdirectory("tokenize-scaling-").FullName;
        try
        {
            var small = Path.Combine(dir, "small.txt");
            var large = Path.Combine(dir, "large.txt");
            File.WriteAllText(small, Line(50_000, 1) + "\n");
            File.WriteAllText(large, Line(5_000_000, 2) + "\n");
            var (_, warm) = Tokenize(small); // JIT and vocabulary warm-up
            double tSmall = Enumerable.Range(0, 3).Min(_ => Tokenize(small).Seconds);
            // A quadratic path would not finish at all (issue 15: 800 KB took over a minute): fail instead of hanging.
            var run = Task.Run(() => Tokenize(large));
            var budget = TimeSpan.FromSeconds(Math.Max(120, tSmall * 2000));
            Assert.True(run.Wait(budget), $"a 5 MB line did not finish within {budget.TotalSeconds:F0} s (50 KB: {tSmall * 1e3:F0} ms)");
            var (tLarge, outLarge) = run.Result;
            double ratio = tLarge / tSmall;
            log.WriteLine($"50 KB: {tSmall * 1e3:F1} ms, 5 MB: {tLarge * 1e3:F0} ms, ratio {ratio:F0} (input ratio 100; quadratic would be ~10,000)");

            // The output is complete and right: one object whose offsets point at the tokens' text.
            using var doc = JsonDocument.Parse(outLarge);
            var tokens = doc.RootElement.GetProperty("tokens");
            var offsets = doc.RootElement.GetProperty("offsets");
            Assert.Equal(tokens.GetArrayLength(), offsets.GetArrayLength());
            Assert.True(tokens.GetArrayLength() > 800_000, $"{tokens.GetArrayLength()} tokens");
            var text = File.ReadAllText(large).TrimEnd('\n');
            var runes = text.EnumerateRunes().Select(r => r.ToString()).ToArray();
            int last = tokens.GetArrayLength() - 2;        // the last token before [SEP] ends where the text ends
            Assert.Equal(runes.Length, offsets[last][1].GetInt32());
            for (int i = last; i > last - 50; i--)          // and the last pieces are the text at their offsets
            {
                var piece = tokens[i].GetString()!;
                if (piece == "[UNK]") continue;             // 😀
                var (s, e) = (offsets[i][0].GetInt32(), offsets[i][1].GetInt32());
                Assert.Equal(piece.Replace("##", ""), string.Concat(runes[s..e]).ToLowerInvariant().Replace("ï", "i"));
            }

            // Linear: 100× the input within 10× of 100× the time (the 50 KB run still carries fixed costs, so the
            // ratio is usually below 100); a per-token scan from the start of the text is ~10,000×.
            Assert.True(ratio < 1000, $"5 MB took {ratio:F0}× as long as 50 KB");
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [AssetFact(Vocab)]
    public void Long_tables_are_printed_in_pages_with_every_row_once()
    {
        // 2,500 CJK characters = 2,500 tokens + [CLS]/[SEP]: three tables of at most 1,000 rows, rows numbered in order.
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, new string('中', 2500) + "\n");
            var (code, stdout, stderr) = Cli.CliHarness.Run("tokenize", "--vocab", TestAssets.Path(Vocab), "--input", file);
            Assert.True(code == 0, stderr);
            Assert.Contains("2502 tokens, rows 0-999", stdout);
            Assert.Contains("2502 tokens, rows 1000-1999", stdout);
            Assert.Contains("2502 tokens, rows 2000-2501", stdout);
            var rows = stdout.Split('\n').Select(l => l.Split('│', StringSplitOptions.TrimEntries)).Where(c => c.Length == 9 && int.TryParse(c[1], out _)).ToList();
            Assert.Equal(Enumerable.Range(0, 2502), rows.Select(c => int.Parse(c[1])));
            Assert.All(rows.Skip(1).SkipLast(1), c => Assert.Equal(("中", "1746"), (c[2], c[3])));
        }
        finally { File.Delete(file); }
    }
}
