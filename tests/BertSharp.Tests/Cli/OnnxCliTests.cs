using BertSharp.Tests.Checkpoints;
using Xunit;

namespace BertSharp.Tests.Cli;

/// <summary>`--model FILE.onnx` through the CLI: a corrupt file is one clear error line; the real file resolves and loads.</summary>
public class OnnxCliTests
{
    [Fact]
    public void CorruptOnnxFile_IsOneErrorLine()
    {
        using var dir = new TempDir();
        var path = dir.File("model.onnx");
        var good = new OnnxGraph().Input("x", [2]).Init("a.bias", [2], [1f, 2f]).Node("Add", ["x", "a.bias"], ["y"]).Output("y", [2]).ToModel();
        File.WriteAllBytes(path, good[..(good.Length - 5)]);
        var (exit, stdout, stderr) = CliHarness.Run("fill-mask", "--model", path, "a [MASK] b");
        Assert.NotEqual(0, exit); // Cli.Guard maps InvalidDataException (bad file content) to 1, usage errors to 2
        Assert.Equal("", stdout);
        var lines = stderr.Trim().Split('\n');
        Assert.Single(lines);
        Assert.StartsWith("bert: error:", lines[0]);
        Assert.Contains(path, lines[0]);
        Assert.DoesNotContain("   at ", stderr);
    }

    [AssetFact("assets/models/all-MiniLM-L6-v2/model.onnx")]
    public void EncoderOnlyOnnx_ForFillMask_SaysTheHeadIsMissing()
    {
        // all-MiniLM-L6-v2 has no MLM head: the model loads from the .onnx file, then fill-mask refuses clearly.
        var (exit, _, stderr) = CliHarness.Run("fill-mask", "--model", TestAssets.Path("assets/models/all-MiniLM-L6-v2/model.onnx"), "a [MASK] b");
        Assert.NotEqual(0, exit);
        Assert.Contains("bert: error:", stderr);
        Assert.Contains("masked-language-model head", stderr);
        Assert.DoesNotContain("   at ", stderr);
    }
}
