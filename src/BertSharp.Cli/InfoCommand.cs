using System.CommandLine;
using System.Text.Json.Nodes;
using BertSharp.Inference;
using BertSharp.Modeling;
using Spectre.Console;

namespace BertSharp.Cli;

/// <summary><c>bert info</c>: a model's config and its parameter count per head.</summary>
static class InfoCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Model directory (reads its config.json / bert_config.json)" };
        var preset = new Option<string?>("--preset") { Description = $"A preset: {string.Join(", ", BertConfig.PresetNames)}" };
        var json = new Option<bool>("--json") { Description = "Machine-readable JSON output" };
        var cmd = new Command("info", "Show a model's configuration and parameter counts");
        cmd.Options.Add(model);
        cmd.Options.Add(preset);
        cmd.Options.Add(json);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var m = parse.GetValue(model);
            var p = parse.GetValue(preset);
            if ((m is null) == (p is null)) throw new ArgumentException("give exactly one of --model DIR or --preset NAME");
            if (m is not null) return ShowModel(ModelInfo.Read(ModelResolver.Resolve(m)), parse.GetValue(json));
            var config = BertConfig.Preset(p!);
            var counts = ModelInfo.CountParameters(config);
            if (parse.GetValue(json))
            {
                var root = new JsonObject
                {
                    ["config"] = JsonNode.Parse(config.ToJson()),
                    ["parameters"] = new JsonObject(counts.Select(kv => KeyValuePair.Create(kv.Key, (JsonNode?)JsonValue.Create(kv.Value)))),
                };
                Console.WriteLine(root.ToJsonString());
                return 0;
            }
            var table = new Table().AddColumns("key", "value");
            foreach (var (k, v) in JsonNode.Parse(config.ToJson())!.AsObject()) table.AddRow(Markup.Escape(k), Markup.Escape(v?.ToJsonString() ?? "null"));
            AnsiConsole.Write(table);
            var ptable = new Table().AddColumns("model", "parameters");
            foreach (var (k, v) in counts) ptable.AddRow(k, v.ToString("N0"));
            AnsiConsole.Write(ptable);
            return 0;
        }));
        return cmd;
    }

    static int ShowModel(ModelInfo info, bool json)
    {
        if (json)
        {
            Console.WriteLine(info.ToJson().ToJsonString());
            return 0;
        }
        // A console on the current Console.Out (AnsiConsole's default binds to whatever stdout was at first use).
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        var summary = new Table().AddColumns("", "");
        summary.AddRow("format", Markup.Escape(info.Format));
        summary.AddRow("weights", Markup.Escape(info.WeightsPath));
        summary.AddRow("source", Markup.Escape(info.Source.Path + (info.Source.Commit is { } c ? $" (commit {c})" : "")));
        summary.AddRow("config", Markup.Escape(info.ConfigSource));
        summary.AddRow("checkpoint tensors", info.CheckpointTensors.ToString("N0"));
        summary.AddRow("checkpoint parameters", info.CheckpointParameters.ToString("N0"));
        summary.AddRow("dtypes", Markup.Escape(string.Join(", ", info.DTypes.Select(kv => $"{kv.Key} × {kv.Value}"))));
        summary.AddRow("heads", Markup.Escape(string.Join(", ", info.Heads.Where(kv => kv.Value).Select(kv => kv.Key)) is { Length: > 0 } h ? h : "(encoder only)"));
        console.Write(summary);
        var table = new Table().AddColumns("key", "value");
        foreach (var (k, v) in JsonNode.Parse(info.Config.ToJson())!.AsObject()) table.AddRow(Markup.Escape(k), Markup.Escape(v?.ToJsonString() ?? "null"));
        console.Write(table);
        var ptable = new Table().AddColumns("model", "parameters");
        foreach (var (k, v) in info.ParameterCounts) ptable.AddRow(k, v.ToString("N0"));
        console.Write(ptable);
        foreach (var n in info.Notes) Console.WriteLine($"note: {n}");
        return 0;
    }
}
