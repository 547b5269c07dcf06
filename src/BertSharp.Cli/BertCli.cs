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
            ConvertCommand.Create,
            EmbedCommand.Create,
            FillMaskCommand.Create,
            InfoCommand.Create,
            NspCommand.Create,
            PretrainCommand.Create,
            PretrainDemoCommand.Create,
            TokenizeCommand.Create,
            VocabCommand.Create,
        })
            root.Subcommands.Add(verb());
        return root;
    }
}
