namespace BertSharp.Training;

/// <summary>What the trainer knows when a run starts.</summary>
public sealed record TrainingStart(long StartStep, long TotalSteps, long WarmupSteps, long BatchesPerEpoch,
    int BatchSize, long Parameters, string OutputDir, string? ResumedFrom, int Threads, string DType);

/// <summary>Reported after every optimizer update.</summary>
public sealed record StepInfo(long Step, long TotalSteps, DataPosition Position, double Loss, double Lr, double GradNorm,
    double TokensPerSecond, TimeSpan Elapsed, TimeSpan? Eta);

/// <summary>Metrics averaged over the updates since the previous log line (every <c>log_every</c> updates).</summary>
public sealed record LogRecord(long Step, DataPosition Position, double Lr, double GradNorm, IReadOnlyDictionary<string, double> Metrics,
    double TokensPerSecond, double ElapsedSeconds);

/// <summary>Held-out metrics.</summary>
public sealed record EvalRecord(long Step, IReadOnlyDictionary<string, double> Metrics, double Seconds);

/// <summary>How a run ended (<paramref name="StoppedEarly"/>: <c>TrainerOptions.AfterEval</c> ended it before the last update).</summary>
public sealed record TrainingResult(long Step, long TotalSteps, bool Interrupted, IReadOnlyDictionary<string, double>? LastEval,
    string? LastCheckpoint, IReadOnlyList<double> StepLosses, bool StoppedEarly = false);

/// <summary>Receives training events (progress display, metric files, probes). Every method is optional.</summary>
public interface ITrainingObserver
{
    void OnStart(TrainingStart start) { }
    void OnStep(StepInfo step) { }
    void OnLog(LogRecord log) { }
    void OnEval(EvalRecord eval) { }
    void OnCheckpoint(long step, string dir) { }
    void OnMessage(string message) { }
    void OnEnd(TrainingResult result) { }
}
