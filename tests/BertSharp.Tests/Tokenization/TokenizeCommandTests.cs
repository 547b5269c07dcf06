using System.Text.Json;
using Xunit;

namespace BertSharp.Tests.Tokenization;

/// <summary>`bert tokenize` run in-process with Console.Out redirected.</summary>
[Collection("Console")]
public class TokenizeCommandTests
{
    const string Vocab = GoldenParityTests.UncasedVocab;

    static (int Code, string Out, string Err) Run(params string[] args) => Cli.CliHarness.Run(args);

    [AssetFact(Vocab)]
    public void Json_output_for_a_pair()
    {
        var (code, stdout, stderr) = Run("tokenize", "--vocab", TestAssets.Path(Vocab), "Héllo 😀 world!", "pair text", "--json");
        Assert.True(code == 0, stderr);
        using var doc = JsonDocument.Parse(stdout.Trim());
        var r = doc.RootElement;
        Assert.Equal(["[CLS]", "hello", "[UNK]", "world", "!", "[SEP]", "pair", "text", "[SEP]"], r.GetProperty("tokens").EnumerateArray().Select(x => x.GetString()));
        Assert.Equal([101, 7592, 100, 2088, 999, 102, 3940, 3793, 102], r.GetProperty("input_ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal([0, 0, 0, 0, 0, 0, 1, 1, 1], r.GetProperty("token_type_ids").EnumerateArray().Select(x => x.GetInt32()));
        Assert.Equal(9, r.GetProperty("attention_mask").GetArrayLength());
        Assert.Equal([1, 0, 0, 0, 0, 1, 0, 0, 1], r.GetProperty("special_tokens_mask").EnumerateArray().Select(x => x.GetInt32()));
        // code-point offsets: the emoji is one character, "world" starts at 8
        Assert.Equal([8, 13], r.GetProperty("offsets")[3].EnumerateArray().Select(x => x.GetInt32()));
        Assert.False(r.TryGetProperty("overflow", out _));
    }

    [AssetFact(Vocab)]
    public void Input_file_with_stride_prints_one_object_per_line_with_windows()
    {
        var file = Path.GetTempFileName();
        try
        {
            File.WriteAllText(file, "one two three four five six\nwho?\tone two three four five six\n\n");
            var (code, stdout, stderr) = Run("tokenize", "--vocab", TestAssets.Path(Vocab), "--input", file, "--max-length", "8",
                "--truncation", "only_second", "--stride", "1", "--json");
            Assert.True(code == 0, stderr);
            var lines = stdout.Split('\n', StringSplitOptions.RemoveEmptyEntries);
            Assert.Equal(2, lines.Length);
            using var single = JsonDocument.Parse(lines[0]);
            Assert.Equal(0, single.RootElement.GetProperty("overflow").GetArrayLength()); // 6 + 2 fits in 8
            using var pair = JsonDocument.Parse(lines[1]);
            // 8 - 3 specials - 2 = 3 context tokens per window, step 2: [one two three] [three four five] [five six]
            var windows = pair.RootElement.GetProperty("overflow");
            Assert.Equal(2, windows.GetArrayLength());
            Assert.Equal(["[CLS]", "who", "?", "[SEP]", "five", "six", "[SEP]"], windows[1].GetProperty("tokens").EnumerateArray().Select(x => x.GetString()));
            Assert.Equal([24, 27], windows[1].GetProperty("offsets")[5].EnumerateArray().Select(x => x.GetInt32()));
        }
        finally { File.Delete(file); }
    }

    [AssetFact(Vocab)]
    public void Errors_are_one_line_with_exit_code_2()
    {
        var (code, _, err) = Run("tokenize", "--vocab", TestAssets.Path(Vocab), "a", "b", "c");
        Assert.Equal(2, code);
        Assert.Contains("at most two texts", err);
        (code, _, err) = Run("tokenize", "--vocab", TestAssets.Path(Vocab), "a", "--truncation", "middle", "--max-length", "4");
        Assert.Equal(2, code);
        Assert.Contains("--truncation", err);
        (code, _, err) = Run("tokenize", "a");
        Assert.Equal(2, code);
        Assert.Contains("--model", err);
    }

    [AssetFact(Vocab)]
    public void Table_output()
    {
        var (code, stdout, stderr) = Run("tokenize", "--vocab", TestAssets.Path(Vocab), "Hello world");
        Assert.True(code == 0, stderr);
        // The data rows, in order: index, token, id, type, special, offsets, text.
        var rows = stdout.Split('\n')
            .Select(l => l.Split('│', StringSplitOptions.TrimEntries))
            .Where(c => c.Length >= 8 && int.TryParse(c[1], out _))
            .Select(c => string.Join("|", c[1..8]))
            .ToList();
        Assert.Equal(
        [
            "0|[CLS]|101|0|1|0-0|",
            "1|hello|7592|0|0|0-5|Hello",
            "2|world|2088|0|0|6-11|world",
            "3|[SEP]|102|0|1|0-0|",
        ], rows);
    }
}
