using System.CommandLine;
using BertSharp.Cli;

// The `bert` command: one file per verb, each exposing Create(); all logic lives in the BertSharp library.
var root = new RootCommand("BertSharp: BERT in .NET — inference, tokenization, pretraining.");
root.Options.Add(Cli.VerboseOption);
foreach (var verb in new Func<Command>[]
{
    // verbs: keep one line each, alphabetical
    TokenizeCommand.Create,
})
    root.Subcommands.Add(verb());
return root.Parse(args).Invoke();
