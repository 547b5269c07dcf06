using System.CommandLine;
using BertSharp.Inference;
using Spectre.Console;

namespace BertSharp.Cli;

/// <summary><c>bert similarity</c>: cosine similarity of the sentence embeddings of two or more texts.</summary>
static class SimilarityCommand
{
    public static Command Create()
    {
        var m = new ModelOptions();
        var texts = new Argument<string[]>("texts") { Description = "Two or more texts", Arity = new ArgumentArity(2, 1000) };
        var pooling = new Option<string?>("--pooling") { Description = "mean | cls | max | pooler (default: the model's sentence-transformers pooling, else mean)" };
        var cmd = new Command("similarity", "Cosine similarity of sentence embeddings: one number for two texts, a matrix for more");
        cmd.Arguments.Add(texts);
        cmd.Options.Add(pooling);
        m.AddTo(cmd);
        m.AddEngineTo(cmd);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var input = parse.GetValue(texts)!;
            Runtime.SetThreads(parse.GetValue(m.Threads));
            using var embedder = Embedder.Load(parse.GetValue(m.Model) ?? "", new EmbedderOptions
            {
                Pooling = parse.GetValue(pooling) is { } p ? SentenceTransformersConfig.ParsePooling(p) : null,
                DType = Runtime.ParseDType(parse.GetValue(m.DType)),
                Device = Runtime.ParseDevice(parse.GetValue(m.Device)),
                Engine = m.ParseEngine(parse),
                Onnx = m.ParseOnnx(parse),
            });
            var matrix = Similarity.Matrix(embedder.Embed(input));
            if (parse.GetValue(m.Json))
            {
                Cli.WriteJson(new { texts = input, pooling = embedder.Pooling.ToString().ToLowerInvariant(), similarity = matrix });
                return 0;
            }
            if (input.Length == 2)
            {
                Console.WriteLine($"cosine = {matrix[0][1]:F4}");
                return 0;
            }
            var table = new Table().AddColumn("#").AddColumn("text");
            for (int j = 0; j < input.Length; j++) table.AddColumn(new TableColumn($"{j + 1}").RightAligned());
            for (int i = 0; i < input.Length; i++)
                table.AddRow([$"{i + 1}", Markup.Escape(input[i].Length > 48 ? input[i][..47] + "…" : input[i]), .. matrix[i].Select(v => v.ToString("F3"))]);
            var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
            console.Write(table);
            return 0;
        }));
        return cmd;
    }
}
