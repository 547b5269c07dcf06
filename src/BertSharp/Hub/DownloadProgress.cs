using Spectre.Console;

namespace BertSharp.Hub;

/// <summary>Hands out a progress reporter per downloaded file.</summary>
public interface IDownloadProgress
{
    HubClient.IFileProgress File(string name);
}

/// <summary>
/// A Spectre.Console progress bar on stderr (file, bar, percentage, bytes done/total, rate, ETA) when stderr is a
/// terminal; nothing otherwise.
/// </summary>
public static class DownloadProgress
{
    /// <summary>True when stderr is an interactive terminal.</summary>
    public static bool StderrIsTerminal => !Console.IsErrorRedirected;

    public static T Run<T>(Func<IDownloadProgress?, T> body, bool? show = null)
    {
        if (!(show ?? StderrIsTerminal)) return body(null);
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Error) });
        if (show is null && !console.Profile.Capabilities.Interactive) return body(null);
        T result = default!;
        console.Progress()
            .AutoClear(false)
            .HideCompleted(false)
            .Columns(new TaskDescriptionColumn { Alignment = Justify.Left }, new ProgressBarColumn(), new PercentageColumn(),
                new DownloadedColumn(), new TransferSpeedColumn(), new RemainingTimeColumn())
            .Start(ctx => result = body(new SpectreProgress(ctx)));
        return result;
    }

    sealed class SpectreProgress(ProgressContext ctx) : IDownloadProgress
    {
        public HubClient.IFileProgress File(string name) => new FileBar(ctx, name);
    }

    sealed class FileBar(ProgressContext ctx, string name) : HubClient.IFileProgress
    {
        ProgressTask? _task;

        public void Start(long? total, long have)
        {
            _task = ctx.AddTask(Markup.Escape(name), maxValue: Math.Max(1, total ?? have));
            _task.IsIndeterminate = total is null;
            _task.Value = have;
        }

        public void Advance(long bytes)
        {
            if (_task is null) return;
            if (_task.IsIndeterminate && _task.Value + bytes > _task.MaxValue) _task.MaxValue = _task.Value + bytes;
            _task.Increment(bytes);
        }

        public void Restart()
        {
            if (_task is not null) _task.Value = 0;
        }
    }
}
