using System.Globalization;
using System.Text;
using Spectre.Console;

namespace BertSharp.Training;

/// <summary>
/// Console output for a training run: a Spectre.Console progress bar (step, loss, lr, tokens/s, ETA) with log,
/// evaluation and checkpoint lines above it when the terminal is interactive; plain periodic log lines when output
/// is redirected.
/// </summary>
public static class TrainingConsole
{
    /// <summary>True when a live progress bar can be drawn.</summary>
    public static bool IsInteractive => !Console.IsOutputRedirected && AnsiConsole.Profile.Capabilities.Interactive;

    /// <summary>Runs <paramref name="body"/> with an observer that draws the progress.</summary>
    public static T Run<T>(Func<ITrainingObserver, T> body, bool? interactive = null, TextWriter? plainOut = null)
    {
        if (!(interactive ?? IsInteractive)) return body(new PlainObserver(plainOut ?? Console.Out));
        T result = default!;
        AnsiConsole.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(), new ElapsedTimeColumn())
            .Start(ctx => result = body(new SpectreObserver(ctx)));
        return result;
    }

    static string Fmt(double v) => v.ToString(Math.Abs(v) >= 100 ? "F1" : "F4", CultureInfo.InvariantCulture);

    static string FormatEta(TimeSpan? eta) => eta is { } e ? (e.TotalHours >= 1 ? $"{(int)e.TotalHours}:{e:mm\\:ss}" : e.ToString(@"mm\:ss")) : "--:--";

    /// <summary>One line for a log record: step, metrics, lr, throughput.</summary>
    public static string FormatLog(LogRecord r, long totalSteps, TimeSpan? eta)
    {
        var sb = new StringBuilder();
        sb.Append(CultureInfo.InvariantCulture, $"step {r.Step}/{totalSteps}");
        foreach (var (k, v) in r.Metrics)
            if (k != "grad_norm") sb.Append(CultureInfo.InvariantCulture, $" | {k} {Fmt(v)}");
        sb.Append(CultureInfo.InvariantCulture, $" | lr {r.Lr:0.00e+00} | {r.TokensPerSecond:N0} tok/s | ETA {FormatEta(eta)}");
        return sb.ToString();
    }

    public static string FormatEval(EvalRecord r) =>
        $"eval @{r.Step}: " + string.Join(" | ", r.Metrics.Select(kv => $"{kv.Key} {Fmt(kv.Value)}")) +
        string.Create(CultureInfo.InvariantCulture, $" ({r.Seconds:F1} s)");

    static string FormatStart(TrainingStart s) =>
        string.Create(CultureInfo.InvariantCulture,
            $"training {s.Parameters:N0} parameters for {s.TotalSteps:N0} steps ({s.BatchesPerEpoch:N0} batches/epoch, batch {s.BatchSize}, " +
            $"warm-up {s.WarmupSteps:N0}, {s.Threads} threads, {s.DType})") +
        (s.ResumedFrom is null ? "" : $", resumed from {s.ResumedFrom} at step {s.StartStep}") + $" → {s.OutputDir}";

    sealed class PlainObserver(TextWriter output) : ITrainingObserver
    {
        long _total;
        TimeSpan? _eta;

        public void OnStart(TrainingStart start) { _total = start.TotalSteps; output.WriteLine(FormatStart(start)); output.Flush(); }
        public void OnStep(StepInfo step) => _eta = step.Eta;
        public void OnLog(LogRecord log) { output.WriteLine(FormatLog(log, _total, _eta)); output.Flush(); }
        public void OnEval(EvalRecord eval) { output.WriteLine(FormatEval(eval)); output.Flush(); }
        public void OnCheckpoint(long step, string dir) { output.WriteLine($"checkpoint @{step}: {dir}"); output.Flush(); }
        public void OnMessage(string message) { output.WriteLine(message); output.Flush(); }
        public void OnEnd(TrainingResult r)
        {
            output.WriteLine(r.Interrupted ? $"stopped at step {r.Step}/{r.TotalSteps}; resume with --resume {r.LastCheckpoint}" : $"done: {r.Step} steps");
            output.Flush();
        }
    }

    sealed class SpectreObserver(ProgressContext ctx) : ITrainingObserver
    {
        ProgressTask? _task;
        long _total;
        TimeSpan? _eta;
        DateTime _lastDraw;

        public void OnStart(TrainingStart start)
        {
            _total = start.TotalSteps;
            AnsiConsole.MarkupLine(Markup.Escape(FormatStart(start)));
            _task = ctx.AddTask("starting", maxValue: start.TotalSteps);
            _task.Value = start.StartStep;
        }

        public void OnStep(StepInfo s)
        {
            _eta = s.Eta;
            if (_task is null) return;
            _task.Value = s.Step;
            var now = DateTime.UtcNow;
            if (s.Step < s.TotalSteps && (now - _lastDraw).TotalMilliseconds < 200) return;
            _lastDraw = now;
            _task.Description = Markup.Escape(string.Create(CultureInfo.InvariantCulture,
                $"step {s.Step}/{s.TotalSteps} loss {s.Loss:F4} lr {s.Lr:0.00e+00} {s.TokensPerSecond:N0} tok/s ETA {FormatEta(s.Eta)}"));
            ctx.Refresh();
        }

        public void OnLog(LogRecord log) => AnsiConsole.MarkupLine("[grey]" + Markup.Escape(FormatLog(log, _total, _eta)) + "[/]");
        public void OnEval(EvalRecord eval) => AnsiConsole.MarkupLine("[green]" + Markup.Escape(FormatEval(eval)) + "[/]");
        public void OnCheckpoint(long step, string dir) => AnsiConsole.MarkupLine("[blue]" + Markup.Escape($"checkpoint @{step}: {dir}") + "[/]");
        public void OnMessage(string message) => AnsiConsole.MarkupLine(Markup.Escape(message));
        public void OnEnd(TrainingResult r)
        {
            if (_task is not null) _task.StopTask();
            AnsiConsole.MarkupLine(Markup.Escape(r.Interrupted
                ? $"stopped at step {r.Step}/{r.TotalSteps}; resume with --resume {r.LastCheckpoint}"
                : $"done: {r.Step} steps"));
        }
    }
}

/// <summary>
/// Ctrl-C handling for training: the first Ctrl-C requests a stop (the trainer finishes the current update, saves a
/// checkpoint and returns); a second one terminates the process immediately.
/// </summary>
public sealed class ConsoleCancellation : IDisposable
{
    readonly CancellationTokenSource _cts = new();
    readonly Action<string> _notify;

    public ConsoleCancellation(Action<string>? notify = null)
    {
        _notify = notify ?? (m => Console.Error.WriteLine(m));
        Console.CancelKeyPress += OnCancel;
    }

    public CancellationToken Token => _cts.Token;

    void OnCancel(object? sender, ConsoleCancelEventArgs e)
    {
        if (_cts.IsCancellationRequested) return;  // second Ctrl-C: let the process end
        e.Cancel = true;
        _cts.Cancel();
        _notify("Ctrl-C: stopping after the current step and saving a checkpoint (press Ctrl-C again to abort)");
    }

    public void Dispose()
    {
        Console.CancelKeyPress -= OnCancel;
        _cts.Dispose();
    }
}
