using System.Text.Json.Nodes;
using BertSharp.Training;
using Xunit;

namespace BertSharp.Tests.Training;

/// <summary>`bert pretrain` in-process with Console.Out redirected (so the plain log lines are used).</summary>
[Collection("Console")]
public class PretrainCommandTests
{
    const string Sample = "assets/data/bert_pretraining_sample/sample_text.txt";

    static (int Code, string Out, string Err) Run(params string[] args) => Cli.CliHarness.Run(args);

    static string TinyModelConfig(string dir)
    {
        var path = Path.Combine(dir, "model.json");
        File.WriteAllText(path, """
            { "hidden_size": 32, "num_hidden_layers": 2, "num_attention_heads": 2, "intermediate_size": 64, "max_position_embeddings": 64 }
            """);
        return path;
    }

    static double[] StepLosses(string output) =>
        File.ReadLines(Path.Combine(output, MetricsWriter.FileName)).Select(l => JsonNode.Parse(l)!)
            .Where(n => (string?)n["type"] == "train").Select(n => (double)n["loss"]!).ToArray();

    [AssetFact(Sample, TestAssets.UncasedVocab)]
    public void PretrainsSavesLoadableCheckpointsAndResumesExactly()
    {
        var dir = TinyPretraining.TempDir("cli");
        var model = TinyModelConfig(dir);
        var output = Path.Combine(dir, "out");
        string[] common =
        [
            "pretrain", "--corpus", TestAssets.Path(Sample), "--vocab", TestAssets.Path(TestAssets.UncasedVocab),
            "--model-config", model, "--steps", "6", "--batch-size", "4", "--max-seq-length", "32", "--max-pred", "5",
            "--lr", "1e-3", "--eval-every", "3", "--save-every", "3", "--log-every", "1", "--threads", "1", "--no-tensorboard", "--no-plots",
        ];
        var (code, stdout, stderr) = Run([.. common, "--probe", "the man went to the [MASK] .", "--output", output]);
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("probe @3: the man went to the [MASK] . →", stdout);
        Assert.Contains("eval @6:", stdout);
        var cp = Path.Combine(output, "checkpoint-6");
        foreach (var f in new[] { "config.json", "model.safetensors", "vocab.txt", "tokenizer_config.json", Checkpoint.OptimizerFile, Checkpoint.StateFileName, Checkpoint.ConfigFile })
            Assert.True(File.Exists(Path.Combine(cp, f)), f);
        var effective = JsonNode.Parse(File.ReadAllText(Path.Combine(cp, Checkpoint.ConfigFile)))!;
        Assert.Equal(4, (int)effective["train_cfg"]!["batch_size"]!);
        Assert.Equal(32, (int)effective["data_cfg"]!["max_seq_length"]!);
        Assert.Equal(32, (int)effective["model_cfg"]!["hidden_size"]!);
        Assert.Equal(30522, (int)effective["model_cfg"]!["vocab_size"]!);
        var hfConfig = JsonNode.Parse(File.ReadAllText(Path.Combine(cp, "config.json")))!;
        Assert.Equal("bert", (string?)hfConfig["model_type"]);
        // Only real keys are written (derived properties such as the head size or micro-batch size are not).
        foreach (var derived in new[] { "HeadDim", "MicroBatchSize", "ExampleMode", "MaskingMode" })
        {
            Assert.DoesNotContain(derived, File.ReadAllText(Path.Combine(cp, "config.json")));
            Assert.DoesNotContain(derived, File.ReadAllText(Path.Combine(cp, Checkpoint.ConfigFile)));
        }
        // The checkpoint is a model directory that the inference pipeline (bert fill-mask) loads; its predictions
        // are the ones the training-time probe printed.
        using (var pipeline = BertSharp.Inference.BertPipeline.Load(cp))
        {
            var top = pipeline.FillMask("the man went to the [MASK] .", 5).Single().Predictions;
            var probeLine = stdout.Split('\n').Single(l => l.StartsWith("probe @6:", StringComparison.Ordinal));
            Assert.Contains($"→ {top[0].Token} (", probeLine);
        }
        var straight = StepLosses(output);
        Assert.Equal(6, straight.Length);

        // --eval-only scores the saved checkpoint on the same held-out examples: the same numbers as the run's own eval.
        static string EvalLine(string text) => text.Split('\n').Single(l => l.StartsWith("eval @6:", StringComparison.Ordinal)).Split(" (")[0];
        var (evalCode, evalOut, evalErr) = Run("pretrain", "--resume", cp, "--eval-only", "--eval-batches", "0");
        Assert.True(evalCode == 0, evalErr + evalOut);
        Assert.Equal(EvalLine(stdout), EvalLine(evalOut));
        Assert.Equal(6, StepLosses(output).Length);  // nothing was trained or logged

        // Resume from the step-3 checkpoint into another output folder: steps 4–6 repeat exactly.
        var output2 = Path.Combine(dir, "out2");
        (code, stdout, stderr) = Run("pretrain", "--resume", Path.Combine(output, "checkpoint-3"), "--output", output2);
        Assert.True(code == 0, stderr + stdout);
        Assert.Contains("resumed from", stdout);
        var resumed = StepLosses(output2);
        Assert.Equal(straight[3..], resumed);
    }

    [Fact]
    public void MissingVocabularyIsOneClearError()
    {
        var dir = TinyPretraining.TempDir("cli-err");
        var corpus = Path.Combine(dir, "c.txt");
        File.WriteAllText(corpus, "a b c.\nd e f.\n\ng h i.\n");
        var (code, _, stderr) = Run("pretrain", "--corpus", corpus, "--model-config", "tiny", "--output", Path.Combine(dir, "o"));
        Assert.Equal(2, code);
        Assert.StartsWith("bert: error: no vocabulary", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [AssetFact(Sample)]
    public void EvalOnlyWithoutWeightsOrHeldOutDataIsOneClearError()
    {
        var dir = TinyPretraining.TempDir("cli-evalonly");
        string[] common =
        [
            "pretrain", "--corpus", TestAssets.Path(Sample), "--vocab", TestAssets.Path(TestAssets.UncasedVocab),
            "--model-config", TinyModelConfig(dir), "--max-seq-length", "32", "--batch-size", "4", "--threads", "1",
            "--eval-only", "--output", Path.Combine(dir, "o"),
        ];
        var (code, _, stderr) = Run(common);
        Assert.Equal(2, code);
        Assert.StartsWith("bert: error: --eval-only scores existing weights: pass --resume CHECKPOINT or --init MODEL_DIR", stderr);
        Assert.Single(stderr.Trim().Split('\n'));

        (code, _, stderr) = Run([.. common, "--eval-fraction", "0"]);
        Assert.Equal(2, code);
        Assert.StartsWith("bert: error: --eval-only needs held-out data", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }

    [Fact]
    public void UnknownTrainConfigKeyIsAnError()
    {
        var dir = TinyPretraining.TempDir("cli-cfg");
        var cfg = Path.Combine(dir, "train.json");
        File.WriteAllText(cfg, """{ "train_cfg": { "batch_sise": 8 } }""");
        var (code, _, stderr) = Run("pretrain", "--train-config", cfg, "--output", Path.Combine(dir, "o"));
        Assert.NotEqual(0, code);
        Assert.Contains("batch_sise", stderr);
    }

    [AssetFact(Sample)]
    public void TrainVocabLearnsAVocabularyFromTheCorpusFirst()
    {
        var dir = TinyPretraining.TempDir("cli-vocab");
        var output = Path.Combine(dir, "out");
        var (code, stdout, stderr) = Run("pretrain", "--corpus", TestAssets.Path(Sample), "--train-vocab", "300",
            "--model-config", TinyModelConfig(dir), "--steps", "2", "--batch-size", "4", "--max-seq-length", "32", "--max-pred", "5",
            "--threads", "1", "--no-tensorboard", "--no-plots", "--eval-fraction", "0", "--output", output);
        Assert.True(code == 0, stderr + stdout);
        var vocab = File.ReadAllLines(Path.Combine(output, "vocab.txt"));
        Assert.Equal(300, vocab.Length);
        Assert.Equal(["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"], vocab[..5]);
        Assert.Contains("the", vocab);
        // The checkpoint carries the learned vocabulary and a matching vocab_size.
        var cp = Directory.GetDirectories(output, "checkpoint-*").Single();
        Assert.Equal(vocab, File.ReadAllLines(Path.Combine(cp, "vocab.txt")));
        Assert.Equal(300, (int)JsonNode.Parse(File.ReadAllText(Path.Combine(cp, "config.json")))!["vocab_size"]!);
    }
}
