using Xunit;

namespace BertSharp.Tests.Training.FineTuning;

public class FinetuneCommandTests
{
    static (int Code, string Out, string Err) Run(params string[] args) => Cli.CliHarness.Run(args);

    [Theory]
    [InlineData("--task", "nope", "--model", "m", "--train", "t", "-o", "o", "unknown task 'nope'")]
    [InlineData("--model", "m", "--train", "t", "-o", "o", "--task NAME is required")]
    [InlineData("--task", "sst2", "--model", "m", "--train", "t", "--lr", "x", "-o", "o", "--lr: expected a number")]
    public void Bad_input_exits_2_with_one_line(params string[] args)
    {
        var expected = args[^1];
        var (code, _, err) = Run(["finetune", .. args[..^1]]);
        Assert.Equal(2, code);
        var lines = err.Trim().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("bert: error:", lines[0]);
        Assert.Contains(expected, lines[0]);
    }
}
