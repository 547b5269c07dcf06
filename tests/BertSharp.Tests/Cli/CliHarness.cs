using BertSharp.Cli;

namespace BertSharp.Tests.Cli;

/// <summary>Runs the `bert` command tree in-process and captures stdout/stderr.</summary>
static class CliHarness
{
    static readonly object Gate = new();

    public static (int Exit, string Out, string Err) Run(params string[] args)
    {
        lock (Gate)
        {
            var (oldOut, oldErr) = (Console.Out, Console.Error);
            var (o, e) = (new StringWriter(), new StringWriter());
            Console.SetOut(o);
            Console.SetError(e);
            // Spectre's static console binds to whatever Console.Out was when it was first used; point it at the capture.
            var oldAnsi = Spectre.Console.AnsiConsole.Console;
            Spectre.Console.AnsiConsole.Console = Spectre.Console.AnsiConsole.Create(new Spectre.Console.AnsiConsoleSettings
            {
                Out = new Spectre.Console.AnsiConsoleOutput(o),
                Ansi = Spectre.Console.AnsiSupport.No,
                ColorSystem = Spectre.Console.ColorSystemSupport.NoColors,
            });
            try
            {
                int exit = BertCli.Run(args);
                return (exit, o.ToString(), e.ToString());
            }
            finally
            {
                Spectre.Console.AnsiConsole.Console = oldAnsi;
                Console.SetOut(oldOut);
                Console.SetError(oldErr);
            }
        }
    }
}
