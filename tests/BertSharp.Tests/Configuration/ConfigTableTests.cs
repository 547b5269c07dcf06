using System.Text.Json;
using System.Text.Json.Nodes;
using BertSharp.Configuration;
using BertSharp.Data;
using BertSharp.Training;
using BertSharp.Training.Pretraining;
using Xunit;

namespace BertSharp.Tests.Configuration;

/// <summary>
/// The flag table is the only place a configuration flag is defined: for every entry the help shows it with the
/// record's default, and a value given on the command line arrives, through JSON, in the record property it names.
/// </summary>
[Collection("Console")]
public class ConfigTableTests
{
    /// <summary>A value for <paramref name="o"/> that differs from its default, as command-line tokens.</summary>
    static string[] Sample(ConfigOption o)
    {
        if (o.IsSwitch) return [];
        if (o.IsList) return ["a.txt", "b.txt"];
        var t = o.ValueType;
        if (t == typeof(int) || t == typeof(long)) return [((o.Default?.GetValue<long>() ?? 2) + 3).ToString()];
        if (t == typeof(double)) return ["0.375"];
        if (t.IsEnum) return [ConfigJson.EnumNames(t).Select(n => n.Name).First(n => n != o.DefaultText)];
        return ["some-value"];
    }

    public static TheoryData<string> Flags() => [.. PretrainConfig.Flags.Options.Select(o => o.Flag)];

    [Theory]
    [MemberData(nameof(Flags))]
    public void FlagHelpAndJsonAgree(string flag)
    {
        var o = PretrainConfig.Flags.Options.Single(x => x.Flag == flag);
        var (code, help, _) = Cli.CliHarness.Run("pretrain", "--help");
        Assert.Equal(0, code);
        var line = help.Split('\n').SingleOrDefault(l => l.TrimStart().StartsWith(flag + " ", StringComparison.Ordinal));
        Assert.True(line is not null, $"{flag} missing from the help");
        Assert.Contains(o.Description, line);
        if (o.DefaultText is { } d) Assert.Contains($"(default {d})", line);

        // The default shown is the record's: a fresh section record serialises it under the entry's key.
        var record = o.Section == "train_cfg" ? (object)new TrainConfig() : new PretrainDataConfig();
        Assert.True(JsonNode.DeepEquals(o.Default, JsonSerializer.SerializeToNode(o.Read(record), ConfigJson.Options)));

        // A value given as the flag reaches the property, and the record writes it back under the same key.
        var tokens = Sample(o);
        var layer = PretrainConfig.Flags.ToLayer([(o, tokens)]);
        var config = PretrainConfig.FromJson(layer);
        var section = o.Section == "train_cfg" ? (object)config.Train : config.Data;
        var expected = o.Parse(tokens);
        Assert.False(JsonNode.DeepEquals(expected, o.Default), $"{flag}: the sample should differ from the default");
        Assert.True(JsonNode.DeepEquals(expected, JsonSerializer.SerializeToNode(o.Read(section), ConfigJson.Options)), $"{flag}: {expected?.ToJsonString()}");
        var saved = config.ToJson(BertSharp.Modeling.BertConfig.Preset("tiny"));
        Assert.True(JsonNode.DeepEquals(expected, saved[o.Section]![o.Key]), $"{flag}: train_config.json has {saved[o.Section]![o.Key]?.ToJsonString()}");
    }

    [Fact]
    public void EveryKeyOfTheSectionsIsReachableOrDeliberatelyFileOnly()
    {
        // Keys without a flag are set in config files only (optimizer constants, bucketing); a new key shows up here.
        string[] fileOnly = ["weight_decay", "adam_beta1", "adam_beta2", "adam_eps", "bias_correction", "max_grad_norm",
            "mode", "short_seq_prob", "bucket_window_batches"];
        var flagged = PretrainConfig.Flags.Options.Select(o => o.Key).ToHashSet();
        foreach (var (section, record) in new[] { ("train_cfg", (object)new TrainConfig()), ("data_cfg", new PretrainDataConfig()) })
            foreach (var (key, _) in JsonSerializer.SerializeToNode(record, ConfigJson.Options)!.AsObject())
                Assert.True(flagged.Contains(key) || fileOnly.Contains(key), $"{section}.{key} has no flag");
    }

    [Fact]
    public void ReplacingFlagsResetTheirAlternativeUnlessBothAreGiven()
    {
        var steps = PretrainConfig.Flags.Options.Single(o => o.Flag == "--steps");
        var epochs = PretrainConfig.Flags.Options.Single(o => o.Flag == "--epochs");
        var file = new JsonObject { ["train_cfg"] = new JsonObject { ["epochs"] = 3.0 } };
        var onlySteps = PretrainConfig.FromJson(PretrainConfig.Merge([file, PretrainConfig.Flags.ToLayer([(steps, ["7"])])])).Train;
        Assert.Equal(7, onlySteps.TotalSteps);
        Assert.Null(onlySteps.Epochs);
        var both = PretrainConfig.FromJson(PretrainConfig.Flags.ToLayer([(steps, ["7"]), (epochs, ["2"])])).Train;
        Assert.Equal((7L, 2.0), (both.TotalSteps!.Value, both.Epochs!.Value));
    }

    [Theory]
    [InlineData("--batch-size", "abc", "--batch-size: expected an integer (got 'abc')")]
    [InlineData("--lr", "fast", "--lr: expected a number (got 'fast')")]
    [InlineData("--masking", "sometimes", "--masking: expected static or dynamic (got 'sometimes')")]
    [InlineData("--corpus-format", "csv", "--corpus-format: expected text, wikitext, jsonl or dir (got 'csv')")]
    public void BadValuesNameTheFlagAndWhatItTakes(string flag, string value, string message)
    {
        var o = PretrainConfig.Flags.Options.Single(x => x.Flag == flag);
        Assert.Equal(message, Assert.Throws<ArgumentException>(() => o.Parse([value])).Message);
    }

    [Fact]
    public void EnumsReadAndWriteTheirConfigNames()
    {
        var data = JsonSerializer.Deserialize<PretrainDataConfig>("""{"mode":"line_by_line","masking":"STATIC","corpus_format":"wikitext"}""", ConfigJson.Options)!;
        Assert.Equal((ExampleMode.LineByLine, MaskingMode.Static, CorpusFormat.WikiText), (data.Mode, data.Masking, data.CorpusFormat));
        var json = JsonSerializer.SerializeToNode(new PretrainDataConfig(), ConfigJson.Options)!;
        Assert.Equal(("nsp", "dynamic", "text"), ((string?)json["mode"], (string?)json["masking"], (string?)json["corpus_format"]));
        var e = Assert.Throws<FormatException>(() => PretrainConfig.FromJson(new JsonObject { ["data_cfg"] = new JsonObject { ["mode"] = "nextsent" } }));
        Assert.Equal("data_cfg.mode: expected nsp, line_by_line or packed (got 'nextsent')", e.Message);
    }

    [Fact]
    public void DataDefaultsAreTheDataPipelinesDefaults()
    {
        var library = new PretrainingDataOptions();
        var verb = new PretrainDataConfig().ToDataOptions((long)library.Seed);
        Assert.Equal(library, verb);
    }

    /// <summary>Every `bert pretrain` command the docs show parses (no unknown flag, no bad value).</summary>
    [Fact]
    public void DocumentedPretrainCommandsParse()
    {
        var root = new DirectoryInfo(AppContext.BaseDirectory);
        while (root is not null && !File.Exists(Path.Combine(root.FullName, "BertSharp.slnx"))) root = root.Parent;
        Assert.NotNull(root);
        int n = 0;
        foreach (var doc in new[] { "README.md", "docs/pretraining.md", "docs/training.md" })
        {
            var text = File.ReadAllText(Path.Combine(root!.FullName, doc)).Replace("\\\n", " ");
            foreach (var raw in text.Split('\n').Select(l => l.Trim()).Where(l => l.StartsWith("bert pretrain ", StringComparison.Ordinal)))
            {
                var line = raw.Split("  #")[0];
                var args = System.Text.RegularExpressions.Regex.Matches(line, "\"([^\"]*)\"|(\\S+)")
                    .Select(m => m.Groups[1].Success ? m.Groups[1].Value : m.Groups[2].Value).Skip(1).ToArray();
                var parse = BertSharp.Cli.BertCli.Build().Parse(args);
                Assert.True(parse.Errors.Count == 0, $"{doc}: {line}: {string.Join("; ", parse.Errors.Select(e => e.Message))}");
                n++;
            }
        }
        Assert.True(n >= 7, $"found only {n} commands");
    }
}
