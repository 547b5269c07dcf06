using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Training;
using BertSharp.Training.FineTuning;
using Xunit;

namespace BertSharp.Tests.Training.FineTuning;

/// <summary>End to end on the golden tiny-random encoder: SST-2 files in, OUTPUT/best and dev scores out.</summary>
public class FineTunerTests
{
    [AssetFact(TestAssets.TinyRandom)]
    public void Sst2_from_an_encoder_overfits_32_sentences_and_writes_an_hf_task_directory()
    {
        var dir = Directory.CreateTempSubdirectory("bertsharp-ftr-").FullName;
        try
        {
            var tsv = Path.Combine(dir, "train.tsv");
            string[] good = ["good", "great", "fine", "nice"], bad = ["bad", "awful", "poor", "dull"];
            var rng = new Random(5);
            var lines = new List<string> { "sentence\tlabel" };
            for (int i = 0; i < 32; i++)
            {
                int label = i % 2;
                var w = (label == 1 ? good : bad)[rng.Next(4)];
                lines.Add($"the film was {w} and the story {(rng.Next(2) == 0 ? "too" : "as well")} .\t{label}");
            }
            File.WriteAllLines(tsv, lines);
            var cfg = new FineTuneTaskConfig { Task = "sst2", Model = TestAssets.Path(TestAssets.TinyRandom), Train = tsv, Dev = tsv, MaxLength = 32 };
            var train = FineTuneTaskConfig.DefaultTrain with
            {
                LearningRate = 1e-3, Epochs = null, TotalSteps = 60, BatchSize = 8, WarmupProportion = 0.1,
                TensorBoard = false, Plots = false, LogEvery = 20,
            };
            var messages = new List<string>();
            var result = FineTuner.Run(cfg, train, Path.Combine(dir, "out"), log: messages.Add);

            // The encoder has no classifier: the head is HF-initialised and the report says so.
            Assert.Contains(result.Init.Missing, m => m.StartsWith("classifier.", StringComparison.Ordinal));
            Assert.Contains(messages, m => m.Contains("newly initialised", StringComparison.Ordinal) && m.Contains("classifier.weight", StringComparison.Ordinal));
            Assert.Equal(1.0, result.DevScores!["accuracy"]);
            Assert.True(File.Exists(Path.Combine(dir, "out", "dev_metrics.json")));

            var best = ModelDirectory.Open(result.BestDir);
            Assert.Equal([nameof(BertForSequenceClassification)], best.Config.Architectures);
            Assert.Equal(["negative", "positive"], best.Config.Labels);
            // Restarting from the fine-tuned directory restores the head (nothing newly initialised).
            var (_, report) = best.LoadModel(c => new BertForSequenceClassification(c));
            Assert.True(report.IsComplete);
            // Evaluating the saved directory reproduces the run's dev scores.
            var again = FineTuner.Evaluate(result.BestDir, "sst2", tsv, maxLength: 32);
            Assert.Equal(result.DevScores["accuracy"], again["accuracy"]);
            Assert.Equal(result.DevScores["f1_macro"], again["f1_macro"]);
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    /// <summary>--random-init: the config and vocabulary of the model directory, none of its weights.</summary>
    [AssetFact(TestAssets.TinyRandom)]
    public void Random_init_uses_the_config_and_vocabulary_but_not_the_weights()
    {
        var dir = Directory.CreateTempSubdirectory("bertsharp-ftr-").FullName;
        try
        {
            var tsv = Path.Combine(dir, "train.tsv");
            File.WriteAllLines(tsv, ["sentence\tlabel", "a good film .\t1", "a bad film .\t0", "fine work .\t1", "dull work .\t0"]);
            var source = TestAssets.Path(TestAssets.TinyRandom);
            var cfg = new FineTuneTaskConfig { Task = "sst2", Model = source, Train = tsv, MaxLength = 16, RandomInit = true };
            var train = FineTuneTaskConfig.DefaultTrain with { Epochs = null, TotalSteps = 1, BatchSize = 4, TensorBoard = false, Plots = false, LearningRate = 1e-12 };
            var messages = new List<string>();
            var result = FineTuner.Run(cfg, train, Path.Combine(dir, "out"), log: messages.Add);
            Assert.Contains(messages, m => m.StartsWith("init: random", StringComparison.Ordinal));
            Assert.Equal(0, result.Init.Loaded);
            Assert.Contains("bert.embeddings.word_embeddings.weight", result.Init.Missing);

            using var trained = ModelDirectory.Open(result.BestDir).LoadModel(c => new BertForSequenceClassification(c)).Model;
            using var original = ModelDirectory.Open(source).LoadModel(c => new BertForSequenceClassification(c)).Model;
            var a = trained.state_dict()["bert.embeddings.word_embeddings.weight"];
            var b = original.state_dict()["bert.embeddings.word_embeddings.weight"];
            Assert.Equal(b.shape, a.shape);                                   // same config
            Assert.True(a.sub(b).abs().max().item<float>() > 1e-3f);          // not the checkpoint's weights
            Assert.Equal(ModelDirectory.Open(source).LoadTokenizer().Vocab.Count, ModelDirectory.Open(result.BestDir).LoadTokenizer().Vocab.Count);
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}
