using BertSharp.Tests.Cli;
using Xunit;

namespace BertSharp.Tests.Serving;

/// <summary><c>bert serve</c> refuses bad flags before it listens: one error line, exit 2.</summary>
public class ServeCliTests
{
    [Theory]
    [InlineData("--model no/such/model-dir --port 0", "model directory not found")]
    [InlineData("--model a=x --model a=y", "the name 'a' is given twice")]
    [InlineData("--model x --max-batch 0", "--max-batch must be at least 1 (got 0)")]
    [InlineData("--model x --port 70000", "--port must be in 0..65535 (got 70000)")]
    [InlineData("--model x --api-key-file no/such/key.txt", "--api-key-file: file not found: no/such/key.txt")]
    public void BadFlagsAreOneErrorLine(string args, string message)
    {
        var (exit, stdout, stderr) = CliHarness.Run(["serve", .. args.Split(' ')]);
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.Single(lines);
        Assert.StartsWith("bert: error: ", lines[0]);
        Assert.Contains(message, lines[0]);
    }
}
