using System.CommandLine;
using BertSharp.Inference;
using BertSharp.Training;
using BertSharp.Training.FineTuning;

namespace BertSharp.Cli;

/// <summary><c>bert finetune</c>: fine-tune a model directory on a task. All logic is in <see cref="FineTuner"/>.</summary>
public static class FinetuneCommand
{
    public static Command Create()
    {
        var flags = new ConfigFlags(FineTuneTaskConfig.Table);
        var output = new Option<string?>("--output", "-o") { Description = "Output directory (checkpoints, metrics, best/)", HelpName = "DIR" };
        var resume = new Option<bool>("--resume") { Description = "Continue from the last checkpoint in --output (same data order, RNG and optimizer state)" };
        var cmd = new Command("finetune", "Fine-tune a BERT model on a classification, regression, tagging or SQuAD task");
        flags.AddTo(cmd);
        cmd.Options.Add(output);
        cmd.Options.Add(resume);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var (task, train) = FineTuneTaskConfig.FromLayer(flags.ToLayer(parse));
            var outDir = parse.GetValue(output) ?? throw new ArgumentException("--output DIR is required");
            bool resuming = parse.GetValue(resume);
            Runtime.SetThreads(train.Threads);
            using var cancel = new ConsoleCancellation();
            if (task.ParseSeeds() is { } seeds)
            {
                // One progress display per seed; the mean ± std line comes after the last one.
                var summary = FineTuner.RunSeeds(task, train, outDir, seeds, body => TrainingConsole.Run(o => body([o])), Console.WriteLine,
                    cancel.Token, resuming);
                return 0;
            }
            var result = TrainingConsole.Run(observer => FineTuner.Run(task, train, outDir, [observer], observer.OnMessage, cancel.Token, resuming));
            return result.Training.Interrupted ? 130 : 0;
        }));
        return cmd;
    }
}
