using System.CommandLine;
using Spectre.Console;

namespace BertSharp.Cli;

/// <summary><c>bert fill-mask</c>: top-k predictions for every [MASK].</summary>
static class FillMaskCommand
{
    public static Command Create()
    {
        var m = new ModelOptions();
        var text = new Argument<string>("text") { Description = "Text containing one or more [MASK] tokens" };
        var topK = new Option<int>("--top-k") { Description = "Predictions per mask", DefaultValueFactory = _ => 5 };
        var cmd = new Command("fill-mask", "Predict the words behind [MASK] tokens (Hugging Face fill-mask semantics)");
        cmd.Arguments.Add(text);
        cmd.Options.Add(topK);
        m.AddTo(cmd);
        m.AddEngineTo(cmd);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            using var pipeline = m.LoadPipeline(parse, m.ParseEngine(parse), m.ParseOnnx(parse));
            var masks = pipeline.FillMask(parse.GetValue(text)!, parse.GetValue(topK));
            if (parse.GetValue(m.Json))
            {
                Cli.WriteJson(new
                {
                    masks = masks.Select(x => new
                    {
                        position = x.Position,
                        predictions = x.Predictions.Select(p => new { token = p.Token, id = p.Id, score = p.Score }),
                    }),
                });
                return 0;
            }
            foreach (var mask in masks)
            {
                var table = new Table().Title(Markup.Escape($"[MASK] at position {mask.Position}")).AddColumns("rank", "token", "id", "score");
                int rank = 1;
                foreach (var p in mask.Predictions) table.AddRow((rank++).ToString(), Markup.Escape(p.Token), p.Id.ToString(), p.Score.ToString("F4"));
                AnsiConsole.Write(table);
            }
            return 0;
        }));
        return cmd;
    }
}
