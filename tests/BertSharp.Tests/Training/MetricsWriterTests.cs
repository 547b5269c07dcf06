using BertSharp.Training;
using Xunit;

namespace BertSharp.Tests.Training;

/// <summary>Plots of a fine-tuning run: the task's dev metrics get their own chart (eval_scores.png).</summary>
public class MetricsWriterTests
{
    [Fact]
    public void Fine_tuning_dev_metrics_are_plotted_and_pretraining_runs_get_no_scores_chart()
    {
        var dir = Directory.CreateTempSubdirectory("bertsharp-metrics-").FullName;
        try
        {
            foreach (var (name, keys) in new[] { ("ft", new[] { "spearmanr", "pearson" }), ("pt", new[] { "mlm_loss", "mlm_acc", "perplexity" }) })
            {
                var outDir = Path.Combine(dir, name);
                Directory.CreateDirectory(outDir);
                using (var w = new MetricsWriter(outDir, new TrainConfig { TensorBoard = false, Plots = true }, 0, false, _ => { }))
                {
                    for (int step = 10; step <= 30; step += 10)
                        w.OnEval(new EvalRecord(step, keys.ToDictionary(k => k, k => step / 40.0), 0.5));
                }
                bool scores = File.Exists(Path.Combine(outDir, "plots", "eval_scores.png"));
                Assert.Equal(name == "ft", scores);
                if (scores) Assert.True(new FileInfo(Path.Combine(outDir, "plots", "eval_scores.png")).Length > 1000);
                Assert.Empty(Directory.GetFiles(Path.Combine(outDir, "plots"), "*.tmp.png"));
            }
        }
        finally
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}
