using System.CommandLine;
using System.Text.Json.Nodes;
using BertSharp.Configuration;

namespace BertSharp.Cli;

/// <summary>
/// The System.CommandLine options of a <see cref="ConfigTable"/>: one option per table entry, its help text and
/// value placeholder from the table; <see cref="ToLayer"/> returns the configuration layer of the flags given.
/// </summary>
sealed class ConfigFlags
{
    readonly ConfigTable _table;
    readonly List<(ConfigOption Entry, Option Option)> _options = [];

    public ConfigFlags(ConfigTable table)
    {
        _table = table;
        foreach (var e in table.Options)
        {
            Option option = e.IsSwitch ? new Option<bool>(e.Flag)
                : e.IsList ? new Option<string[]>(e.Flag) { AllowMultipleArgumentsPerToken = true, HelpName = e.ValueName }
                : new Option<string?>(e.Flag) { HelpName = e.ValueName };
            option.Description = e.HelpText;
            _options.Add((e, option));
        }
    }

    public void AddTo(Command command)
    {
        foreach (var (_, option) in _options) command.Options.Add(option);
    }

    /// <summary>The <c>{section: {key: value}}</c> layer of the flags present on the command line.</summary>
    public JsonObject ToLayer(ParseResult parse)
    {
        var given = new List<(ConfigOption, IReadOnlyList<string>)>();
        foreach (var (e, option) in _options)
        {
            switch (option)
            {
                case Option<bool> b when parse.GetValue(b): given.Add((e, [])); break;
                case Option<string[]> l when parse.GetValue(l) is { Length: > 0 } values: given.Add((e, values)); break;
                case Option<string?> s when parse.GetValue(s) is { } value: given.Add((e, [value])); break;
            }
        }
        return _table.ToLayer(given);
    }
}
