using System.Globalization;
using System.Text.Json;
using System.Text.Json.Nodes;
using TorchSharp;

namespace BertSharp.Training;

/// <summary>
/// Writes <c>metrics.jsonl</c> (one JSON object per logged step and per evaluation), TensorBoard event files under
/// <c>tensorboard/</c> (TorchSharp's SummaryWriter) and PNG plots under <c>plots/</c> (ScottPlot), regenerated at
/// each evaluation. On resume, log lines after the resumed step are dropped so the file reads like one run.
/// </summary>
public sealed class MetricsWriter : ITrainingObserver, IDisposable
{
    public const string FileName = "metrics.jsonl";

    readonly string _dir;
    readonly TrainConfig _config;
    readonly Action<string> _message;
    readonly StreamWriter _jsonl;
    TorchSharp.Modules.SummaryWriter? _tb;
    readonly List<(long Step, Dictionary<string, double> Values)> _train = new();
    readonly List<(long Step, Dictionary<string, double> Values)> _eval = new();

    public MetricsWriter(string outputDir, TrainConfig config, long startStep, bool resumed, Action<string> message)
    {
        _dir = outputDir;
        _config = config;
        _message = message;
        var path = Path.Combine(outputDir, FileName);
        var kept = new List<string>();
        if (resumed && File.Exists(path))
        {
            foreach (var line in File.ReadLines(path))
            {
                if (string.IsNullOrWhiteSpace(line)) continue;
                JsonObject? o;
                try { o = JsonNode.Parse(line) as JsonObject; }
                catch (JsonException) { continue; }
                if (o is null || o["step"] is not JsonValue sv || !sv.TryGetValue<long>(out var s) || s > startStep) continue;
                kept.Add(line);
                Remember(o, s);
            }
        }
        _jsonl = new StreamWriter(path, append: false) { AutoFlush = true };
        foreach (var line in kept) _jsonl.WriteLine(line);

        if (config.TensorBoard)
        {
            try
            {
                _tb = torch.utils.tensorboard.SummaryWriter(Path.Combine(outputDir, "tensorboard"));
            }
            catch (Exception e) when (e is not OutOfMemoryException)
            {
                _message($"warning: TensorBoard output disabled ({e.Message})");
            }
        }
    }

    void Remember(JsonObject o, long step)
    {
        var kind = (string?)o["type"];
        var values = new Dictionary<string, double>(StringComparer.Ordinal);
        foreach (var (k, v) in o)
            if (v is JsonValue jv && jv.TryGetValue<double>(out var d) && k is not "step" and not "epoch" and not "batch_index") values[k] = d;
        (kind == "eval" ? _eval : _train).Add((step, values));
    }

    public void OnLog(LogRecord log)
    {
        var o = new JsonObject
        {
            ["type"] = "train", ["step"] = log.Step, ["epoch"] = log.Position.Epoch, ["batch_index"] = log.Position.Index,
            ["lr"] = log.Lr,
        };
        foreach (var (k, v) in log.Metrics) o[k] = Finite(v);
        o["tokens_per_s"] = Math.Round(log.TokensPerSecond, 1);
        o["elapsed_s"] = Math.Round(log.ElapsedSeconds, 3);
        _jsonl.WriteLine(o.ToJsonString());
        var values = new Dictionary<string, double>(log.Metrics) { ["lr"] = log.Lr };
        _train.Add((log.Step, values));
        Scalars("train/", values, log.Step);
    }

    public void OnEval(EvalRecord eval)
    {
        var o = new JsonObject { ["type"] = "eval", ["step"] = eval.Step };
        foreach (var (k, v) in eval.Metrics) o[k] = Finite(v);
        o["eval_s"] = Math.Round(eval.Seconds, 3);
        _jsonl.WriteLine(o.ToJsonString());
        _eval.Add((eval.Step, new Dictionary<string, double>(eval.Metrics)));
        Scalars("eval/", eval.Metrics, eval.Step);
        if (_config.Plots) WritePlots();
    }

    public void OnEnd(TrainingResult result)
    {
        if (_config.Plots && _train.Count > 0) WritePlots();
    }

    static JsonNode? Finite(double v) => double.IsFinite(v) ? JsonValue.Create(v) : JsonValue.Create(v.ToString(CultureInfo.InvariantCulture));

    void Scalars(string prefix, IReadOnlyDictionary<string, double> values, long step)
    {
        if (_tb is null) return;
        try
        {
            foreach (var (k, v) in values)
                if (double.IsFinite(v)) _tb.add_scalar(prefix + k, (float)v, (int)Math.Min(step, int.MaxValue));
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _message($"warning: TensorBoard output disabled ({e.Message})");
            _tb = null;
        }
    }

    void WritePlots()
    {
        try
        {
            var dir = Path.Combine(_dir, "plots");
            Directory.CreateDirectory(dir);
            Plot(Path.Combine(dir, "train_loss.png"), "Training loss", "loss", _train, ["loss", "mlm_loss", "nsp_loss"]);
            if (_eval.Count > 0)
            {
                Plot(Path.Combine(dir, "eval_loss.png"), "Held-out loss", "loss", _eval, ["loss", "mlm_loss", "nsp_loss"]);
                Plot(Path.Combine(dir, "eval_accuracy.png"), "Held-out accuracy", "accuracy", _eval, ["mlm_acc", "nsp_acc", "accuracy"]);
                Plot(Path.Combine(dir, "eval_perplexity.png"), "Held-out MLM perplexity", "perplexity", _eval, ["perplexity"]);
                // Fine-tuning: the task's dev metrics (f1, spearmanr, exact_match, …) beside accuracy.
                var scores = _eval.SelectMany(e => e.Values.Keys).Distinct().Where(k => !NotScores.Contains(k)).Order(StringComparer.Ordinal).ToArray();
                if (scores.Any(k => k != "accuracy"))
                    Plot(Path.Combine(dir, "eval_scores.png"), "Dev scores", "score", _eval, scores);
            }
            Plot(Path.Combine(dir, "lr.png"), "Learning rate", "lr", _train, ["lr"]);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            _message($"warning: could not write plots ({e.Message})");
        }
    }

    static readonly HashSet<string> NotScores = ["loss", "mlm_loss", "nsp_loss", "perplexity", "mlm_acc", "nsp_acc", "nsp_is_next", "eval_s"];

    static void Plot(string path, string title, string yLabel, List<(long Step, Dictionary<string, double> Values)> series, string[] keys)
    {
        var plot = new ScottPlot.Plot();
        int drawn = 0;
        foreach (var key in keys)
        {
            var pts = series.Where(s => s.Values.TryGetValue(key, out var v) && double.IsFinite(v)).ToList();
            if (pts.Count == 0) continue;
            var xs = pts.Select(p => (double)p.Step).ToArray();
            var ys = pts.Select(p => p.Values[key]).ToArray();
            var sc = plot.Add.Scatter(xs, ys);
            sc.LegendText = key;
            sc.MarkerSize = pts.Count > 50 ? 0 : 4;
            drawn++;
        }
        if (drawn == 0) return;
        plot.Title(title);
        plot.XLabel("step");
        plot.YLabel(yLabel);
        plot.ShowLegend();
        var tmp = path + ".tmp.png";
        plot.SavePng(tmp, 900, 540);
        File.Move(tmp, path, overwrite: true);
    }

    public void Dispose() => _jsonl.Dispose();
}
