using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Tests.Cli;
using Xunit;
using static BertSharp.Tests.Export.OnnxTestUtil;
using static TorchSharp.torch;

namespace BertSharp.Tests.Export;

/// <summary><c>bert export</c>: a complete HF head checkpoint to ONNX, run in ORT; bad input is one line and exit 2.</summary>
[Collection(OnnxExportCollection.Name)]
public class ExportCommandTests
{
    const string SeqCls = TestAssets.TinyRandom + "/heads/seq-classification-3";

    [AssetFact(SeqCls)]
    public void ExportsSequenceClassifierThatOrtRunsLikeHf()
    {
        var model = TestAssets.Path(SeqCls);
        var outPath = Path.Combine(TempDir, "cli", "seq-cls.onnx");
        var (exit, stdout, stderr) = CliHarness.Run("export", "--model", model, "--format", "onnx", "--output", outPath, "--opset", "17", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal("sequence-classification", doc.RootElement.GetProperty("task").GetString());
        Assert.Equal(17, doc.RootElement.GetProperty("opset").GetInt32());
        Assert.Equal(["logits"], doc.RootElement.GetProperty("outputs").EnumerateArray().Select(e => e.GetString()));
        Assert.True(File.Exists(outPath));

        var dir = Path.Combine(model, "golden", "batch3_padded");
        using var scope = NewDisposeScope();
        Tensor Load(string f) => Npy.Read(Path.Combine(dir, f + ".npy")).ToTensor();
        var o = RunOrt(outPath, Load("input_ids"), Load("attention_mask"), Load("token_type_ids"));
        Assert.True(MaxAbsDiff(o["logits"], Load("logits")) <= 1e-4);

        // Human-readable summary without --json.
        (exit, stdout, stderr) = CliHarness.Run("export", "--model", model, "--output", outPath);
        Assert.True(exit == 0, stderr);
        Assert.Contains("sequence-classification, opset 14", stdout);
    }

    [AssetTheory(SeqCls)]
    [InlineData("--opset", "12", "--opset: 12 is not supported")]
    [InlineData("--format", "tflite", "--format: 'tflite' is not supported")]
    [InlineData("--task", "summarization", "--task: unknown task 'summarization'")]
    [InlineData("--task", "masked-lm", "tensor 'cls.predictions.transform.dense.weight' is missing")]
    public void BadInputIsOneLineAndExitTwo(string option, string value, string expected)
    {
        var outPath = Path.Combine(TempDir, "cli-bad", "x.onnx");
        var (exit, _, stderr) = CliHarness.Run("export", "--model", TestAssets.Path(SeqCls), "--output", outPath, option, value);
        Assert.Equal(2, exit);
        var line = Assert.Single(stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries));
        Assert.StartsWith("bert: error: ", line);
        Assert.Contains(expected, line);
        Assert.False(File.Exists(outPath));
    }

    [AssetFact(SeqCls)]
    public void OutputThatIsADirectoryIsExitTwo()
    {
        var dir = Directory.CreateDirectory(Path.Combine(TempDir, "out-dir")).FullName;
        var (exit, _, stderr) = CliHarness.Run("export", "--model", TestAssets.Path(SeqCls), "--output", dir);
        Assert.Equal(2, exit);
        Assert.Contains("is a directory", stderr);
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public void MissingModelDirectoryIsExitTwo()
    {
        var (exit, _, stderr) = CliHarness.Run("export", "--model", Path.Combine(TempDir, "no-such-model"), "--output", Path.Combine(TempDir, "y.onnx"));
        Assert.Equal(2, exit);
        Assert.Contains("model directory not found", stderr);
    }
}
