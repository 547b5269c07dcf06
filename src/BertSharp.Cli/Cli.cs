using System.CommandLine;
using System.Text.Json;

namespace BertSharp.Cli;

/// <summary>Shared plumbing for verbs: error reporting, JSON output.</summary>
static class Cli
{
    /// <summary>Global --verbose: print stack traces on error (pretrain-demo also uses it for extra output).</summary>
    public static readonly Option<bool> VerboseOption = new("--verbose") { Description = "Verbose output; show stack traces on errors", Recursive = true };

    public static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    /// <summary>
    /// Runs a verb body: any exception becomes one clear line on stderr and a non-zero exit code
    /// (the stack trace only with --verbose).
    /// </summary>
    public static int Run(ParseResult parse, Func<int> body)
    {
        try
        {
            return body();
        }
        catch (OperationCanceledException)
        {
            Console.Error.WriteLine("bert: cancelled");
            return 130;
        }
        catch (Exception e)
        {
            var inner = e is TypeInitializationException { InnerException: not null } t ? t.InnerException! : e;
            Console.Error.WriteLine($"bert: error: {inner.Message}");
            if (parse.GetValue(VerboseOption)) Console.Error.WriteLine(inner);
            return inner is ArgumentException or FileNotFoundException or DirectoryNotFoundException or FormatException or InvalidDataException ? 2 : 1;
        }
    }

    public static void WriteJson<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, Json));
}
