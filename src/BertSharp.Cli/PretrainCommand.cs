using System.CommandLine;
using BertSharp.Inference;
using BertSharp.Training;
using BertSharp.Training.Pretraining;

namespace BertSharp.Cli;

/// <summary><c>bert pretrain</c>: MLM (+ NSP) pretraining from scratch. All logic is in <see cref="Pretrainer"/>.</summary>
public static class PretrainCommand
{
    public static Command Create()
    {
        // Configuration flags: one table (PretrainConfig.Flags) gives each its data_cfg/train_cfg key, type, default and help.
        var flags = new ConfigFlags(PretrainConfig.Flags);
        // Run options: what to start from, where to write, what to print.
        var modelConfig = new Option<string?>("--model-config") { Description = "tiny|mini|small|medium|base|large or an HF config.json", HelpName = "PRESET|FILE" };
        var init = new Option<string?>("--init") { Description = "Start from the weights of this model directory", HelpName = "DIR" };
        var trainConfig = new Option<string[]>("--train-config") { Description = "JSON config: {\"model_cfg\":…,\"train_cfg\":…,\"data_cfg\":…} or a bare train_cfg (repeatable; later files win)", HelpName = "FILE" };
        var probe = new Option<string[]>("--probe") { Description = "Text with [MASK] whose top-5 predictions are printed at each evaluation (repeatable)" };
        var output = new Option<string?>("--output", "-o") { Description = "Output directory (checkpoints, metrics, plots)", HelpName = "DIR" };
        var resume = new Option<string?>("--resume") { Description = "Continue exactly from a checkpoint (or the newest one of an output directory)", HelpName = "DIR" };
        var evalOnly = new Option<bool>("--eval-only") { Description = "Only score the weights of --resume CHECKPOINT (or --init DIR) on the held-out data (--eval-batches 0 = all of it)" };

        var cmd = new Command("pretrain", "Pretrain BERT from scratch with masked-LM (+ next-sentence) objectives")
        {
            modelConfig, init, trainConfig,
        };
        flags.AddTo(cmd);
        foreach (var o in new Option[] { probe, output, resume, evalOnly }) cmd.Options.Add(o);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var resumeDir = parse.GetValue(resume);
            var config = PretrainConfig.FromLayers(
                resumeDir is null ? null : Pretrainer.CheckpointConfig(resumeDir),
                parse.GetValue(trainConfig) ?? [], flags.ToLayer(parse), parse.GetValue(modelConfig), parse.GetValue(init));
            var outDir = parse.GetValue(output) ?? (resumeDir is null ? null : OutputOf(resumeDir))
                ?? throw new ArgumentException("--output DIR is required");
            Runtime.SetThreads(config.Train.Threads);
            using var cancel = new ConsoleCancellation();
            var result = TrainingConsole.Run(observer => Pretrainer.Run(config, new PretrainRunOptions
            {
                OutputDir = outDir, Resume = resumeDir, Probes = parse.GetValue(probe) ?? [],
                Observers = [observer], Log = observer.OnMessage, EvaluateOnly = parse.GetValue(evalOnly),
            }, cancel.Token));
            return result.Interrupted ? 130 : 0;
        }));
        return cmd;
    }

    /// <summary>The output directory a checkpoint (or output directory) belongs to.</summary>
    static string OutputOf(string resume)
    {
        var dir = Path.GetFullPath(resume).TrimEnd(Path.DirectorySeparatorChar);
        return Path.GetFileName(dir).StartsWith(Checkpoint.Prefix, StringComparison.Ordinal) ? Path.GetDirectoryName(dir)! : dir;
    }
}
