using System.CommandLine;

namespace BertSharp.Cli;

/// <summary>The `bert` command tree: one file per verb, each exposing Create(); all logic lives in the library.</summary>
public static class BertCli
{
    public static RootCommand Build()
    {
        var root = new RootCommand("BertSharp: BERT in .NET — inference, tokenization, pretraining.");
        root.Options.Add(Cli.VerboseOption);
        foreach (var verb in new Func<Command>[]
        {
            // verbs: keep one line each, alphabetical
            ClassifyDemoCommand.Create,
            ConvertCommand.Create,
            EmbedCommand.Create,
            EvalCommand.Create,
            ExportCommand.Create,
            FillMaskCommand.Create,
            FinetuneCommand.Create,
            InfoCommand.Create,
            ModelsCommand.Create,
            NspCommand.Create,
            PredictCommand.Create,
            PretrainCommand.Create,
            PretrainDemoCommand.Create,
            SearchCommand.Create,
            ServeCommand.Create,
            SimilarityCommand.Create,
            TokenizeCommand.Create,
            VocabCommand.Create,
        })
            root.Subcommands.Add(verb());
        return root;
    }

    /// <summary>The `bert` entry point: parses, reports parser errors as one line (exit 2), runs the verb.</summary>
    public static int Run(string[] args)
    {
        var parse = Build().Parse(args);
        return parse.Errors.Count > 0 || Cli.UnknownOptions(parse).Count > 0 ? Cli.ParseError(parse) : parse.Invoke();
    }
}
