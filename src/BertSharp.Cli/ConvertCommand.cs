using System.CommandLine;
using BertSharp.Inference;

namespace BertSharp.Cli;

/// <summary><c>bert convert</c>: any loadable model → Hugging Face layout (config.json, model.safetensors, vocab.txt, …).</summary>
static class ConvertCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = $"Model to convert (any format BertSharp loads); default ${ModelResolver.EnvVar}" };
        var output = new Option<string>("--output") { Description = "Directory to write (replaced atomically if it exists)", Required = true };
        var json = new Option<bool>("--json") { Description = "Machine-readable JSON output" };
        var cmd = new Command("convert", "Write a model in Hugging Face layout: config.json, model.safetensors (all tensors, HF names), vocab.txt, tokenizer_config.json");
        cmd.Options.Add(model);
        cmd.Options.Add(output);
        cmd.Options.Add(json);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var r = ModelConverter.Convert(ModelResolver.Resolve(parse.GetValue(model)), parse.GetValue(output)!);
            if (parse.GetValue(json))
            {
                Cli.WriteJson(new { source = r.Source, source_format = r.SourceFormat, output = r.Output, tensors = r.Tensors, dropped = r.Dropped, copied = r.CopiedFiles });
                return 0;
            }
            Console.WriteLine($"converted {r.Source} ({r.SourceFormat}) → {r.Output}: {r.Tensors} tensors in model.safetensors" +
                              (r.Dropped.Count > 0 ? $", {r.Dropped.Count} tied aliases stored once ({string.Join(", ", r.Dropped)})" : "") +
                              (r.CopiedFiles.Count > 0 ? $", copied {string.Join(", ", r.CopiedFiles)}" : ""));
            return 0;
        }));
        return cmd;
    }
}
