using System.CommandLine;
using System.Text.Json;
using System.Text.RegularExpressions;

namespace BertSharp.Cli;

/// <summary>
/// Shared plumbing for verbs: the error contract and JSON output. Every error is one line on stderr,
/// <c>bert: error: …</c>; the exit code is 2 for bad input (arguments, files, data) and 1 for internal failures
/// (<c>--verbose</c> adds the stack trace).
/// </summary>
static partial class Cli
{
    /// <summary>Global --verbose: print stack traces on error.</summary>
    public static readonly Option<bool> VerboseOption = new("--verbose") { Description = "Show stack traces on errors", Recursive = true };

    public static readonly JsonSerializerOptions Json = new() { WriteIndented = false };

    /// <summary>
    /// Runs a verb body: any exception becomes one clear line on stderr and a non-zero exit code (see
    /// <see cref="IsBadInput"/>; the stack trace only with --verbose).
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
            Error(inner.Message);
            if (parse.GetValue(VerboseOption)) Console.Error.WriteLine(inner);
            return IsBadInput(inner) ? 2 : 1;
        }
    }

    /// <summary>
    /// Exceptions that mean the input is wrong (exit 2): bad arguments, missing files and folders, files that are
    /// not what they claim (malformed, truncated, invalid UTF-8). Everything else is an internal failure (exit 1).
    /// </summary>
    public static bool IsBadInput(Exception e) =>
        e is ArgumentException or FileNotFoundException or DirectoryNotFoundException or FormatException
            or InvalidDataException or EndOfStreamException or JsonException or UnauthorizedAccessException;

    /// <summary>Parser errors (unknown verb or flag, a value of the wrong type, a missing argument): one line naming
    /// the verb's help, exit 2.</summary>
    public static int ParseError(ParseResult parse)
    {
        var verb = new List<string>();
        for (var c = parse.CommandResult; c is not null; c = c.Parent as System.CommandLine.Parsing.CommandResult)
            if (c.Command is not RootCommand) verb.Insert(0, c.Command.Name);
        var help = string.Join(' ', ["bert", .. verb, "--help"]);
        // An unknown verb also reports "Required command was not provided"; name only the token that is wrong then.
        var errors = UnknownOptions(parse).Select(t => $"Unrecognized command or argument '{t}'").Concat(parse.Errors.Select(e => e.Message.TrimEnd('.'))).ToList();
        if (errors.Count > 1) errors.RemoveAll(e => e.StartsWith("Required command", StringComparison.Ordinal));
        Error($"{string.Join("; ", errors)} (see `{help}`)");
        return 2;
    }

    /// <summary>
    /// Tokens that look like options (<c>--name</c>) but were taken as a positional argument because the verb has one
    /// (<c>bert fill-mask --topk 5 …</c>): a mistyped flag, not a text. After a <c>--</c> token they are texts.
    /// </summary>
    public static IReadOnlyList<string> UnknownOptions(ParseResult parse) =>
        [.. parse.Tokens.TakeWhile(t => t.Type != System.CommandLine.Parsing.TokenType.DoubleDash)
            .Where(t => t.Type == System.CommandLine.Parsing.TokenType.Argument && t.Value.StartsWith("--", StringComparison.Ordinal) && t.Value.Length > 2)
            .Select(t => t.Value)];

    /// <summary>Writes <c>bert: error: MESSAGE</c> as one line (newlines quoted from files become spaces).</summary>
    public static void Error(string message) => Console.Error.WriteLine($"bert: error: {OneLine(message)}");

    /// <summary>The message on one line: every run of line breaks (and the spaces around them) becomes one space.</summary>
    public static string OneLine(string message) => LineBreaks().Replace(message.Trim(), " ");

    [GeneratedRegex(@"[ \t]*[\r\n]+[ \t]*")]
    private static partial Regex LineBreaks();

    public static void WriteJson<T>(T value) => Console.Out.WriteLine(JsonSerializer.Serialize(value, Json));
}
