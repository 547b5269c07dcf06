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
            var config = p is not null ? BertConfig.Preset(p) : BertConfig.Load(ModelDirectory.FindConfig(ModelResolver.Resolve(m)));
            var counts = ParameterCounts(config);
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

    /// <summary>Counts by building each model on the CPU (distinct parameters, tied ones once).</summary>
    static Dictionary<string, long> ParameterCounts(BertConfig c)
    {
        using var _ = TorchSharp.torch.no_grad();
        var counts = new Dictionary<string, long>();
        using (var m = new BertModel(c)) counts["BertModel"] = ModelUtils.CountParameters(m);
        using (var m = new BertForMaskedLM(c)) counts["BertForMaskedLM"] = ModelUtils.CountParameters(m);
        using (var m = new BertForPreTraining(c)) counts["BertForPreTraining"] = ModelUtils.CountParameters(m);
        return counts;
    }
}
