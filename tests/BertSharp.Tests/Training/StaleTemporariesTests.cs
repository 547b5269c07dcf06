using System.Diagnostics;
using BertSharp.Training;
using Xunit;

namespace BertSharp.Tests.Training;

/// <summary>A kill -9 during a checkpoint write leaves a temporary folder: the next save or resume removes it, but only
/// when its owner is gone.</summary>
public class StaleTemporariesTests
{
    /// <summary>The PID of a process that has exited (so the PID is, for now, not alive).</summary>
    static int DeadPid()
    {
        using var p = Process.Start(new ProcessStartInfo("true") { UseShellExecute = false })!;
        p.WaitForExit();
        Assert.Throws<ArgumentException>(() => Process.GetProcessById(p.Id));
        return p.Id;
    }

    static string Fake(string output, string name)
    {
        var d = Path.Combine(output, name);
        Directory.CreateDirectory(d);
        File.WriteAllBytes(Path.Combine(d, "model.safetensors"), new byte[1024]);
        return d;
    }

    [Fact]
    public void SaveRemovesOnlyTemporariesOfDeadOrForeignProcesses()
    {
        var output = TinyPretraining.TempDir("stale-save");
        int dead = DeadPid();
        using var sleeper = Process.Start(new ProcessStartInfo("sleep", "30") { UseShellExecute = false })!;  // alive, not bert
        try
        {
            var deadTmp = Fake(output, $".tmp-checkpoint-4-{dead}");
            var foreignTmp = Fake(output, $".tmp-checkpoint-5-{sleeper.Id}");
            var liveTmp = Fake(output, $".tmp-checkpoint-6-{Environment.ProcessId}");
            var unrelated = Fake(output, $".tmp-notes-{dead}");

            var saved = Checkpoint.Save(output, 8, tmp => File.WriteAllText(Path.Combine(tmp, Checkpoint.StateFileName), "{}"), keep: 3);

            Assert.False(Directory.Exists(deadTmp), "the dead process's temporary survived a save");
            Assert.False(Directory.Exists(foreignTmp), "a temporary named after a live non-bert process survived a save");
            Assert.True(Directory.Exists(liveTmp), "the running process's own temporary was removed");
            Assert.True(Directory.Exists(unrelated), "a folder that is not a checkpoint temporary was touched");
            Assert.True(File.Exists(Path.Combine(saved, Checkpoint.StateFileName)));
        }
        finally
        {
            sleeper.Kill();
            Directory.Delete(output, recursive: true);
        }
    }

    [Fact]
    public void AnOldCopyWithoutItsCheckpointIsRestoredNotDeleted()
    {
        var output = TinyPretraining.TempDir("stale-old");
        int dead = DeadPid();
        try
        {
            // Killed between "checkpoint-6 → checkpoint-6.old-PID" and "tmp → checkpoint-6": the old copy is the only one.
            var orphan = Fake(output, $"checkpoint-6.old-{dead}");
            // Killed after the rename but before the old copy was deleted: the old copy is redundant.
            Fake(output, "checkpoint-7");
            var redundant = Fake(output, $"checkpoint-7.old-{dead}");
            var removed = StaleTemporaries.Remove(output);
            Assert.Equal(2, removed.Count);
            Assert.False(Directory.Exists(orphan));
            Assert.True(File.Exists(Path.Combine(output, "checkpoint-6", "model.safetensors")));
            Assert.False(Directory.Exists(redundant));
            Assert.True(Directory.Exists(Path.Combine(output, "checkpoint-7")));
        }
        finally { Directory.Delete(output, recursive: true); }
    }

    [Fact]
    public void AReusedPidDoesNotProtectAnOlderTemporary()
    {
        // A live process whose command line names bert: it owns a temporary written after it started, but not one
        // written before it existed (the PID was reused).
        using var p = Process.Start(new ProcessStartInfo("sh", ["-c", "sleep 20; : bert"]) { UseShellExecute = false })!;
        try
        {
            Thread.Sleep(200);
            Assert.True(StaleTemporaries.OwnerIsAlive(p.Id, DateTime.UtcNow.AddMinutes(1)));
            Assert.False(StaleTemporaries.OwnerIsAlive(p.Id, DateTime.UtcNow.AddDays(-1)));
            Assert.True(StaleTemporaries.OwnerIsAlive(Environment.ProcessId, DateTime.UtcNow.AddDays(-1)), "its own temporaries are always live");
        }
        finally { p.Kill(); }
    }

    [Fact]
    public void ResumeRemovesTheTemporaryOfTheKilledRun()
    {
        var output = TinyPretraining.TempDir("stale-resume");
        try
        {
            var cfg = TinyPretraining.Train(steps: 2, batch: 8) with { SaveEvery = 2, EvalEvery = 0 };
            Train(cfg, output, resume: null);
            var deadTmp = Fake(output, $".tmp-checkpoint-3-{DeadPid()}");
            var liveTmp = Fake(output, $".tmp-checkpoint-9-{Environment.ProcessId}");
            var messages = new List<string>();
            var r = Train(cfg with { TotalSteps = 3 }, output, resume: output, messages);
            Assert.Equal(3, r.Step);
            Assert.False(Directory.Exists(deadTmp), "the killed run's temporary survived the resume");
            Assert.True(Directory.Exists(liveTmp));
            Assert.Contains(messages, m => m.Contains(Path.GetFileName(deadTmp)));
        }
        finally { Directory.Delete(output, recursive: true); }
    }

    sealed class Messages(List<string> sink) : ITrainingObserver
    {
        public void OnMessage(string message) => sink.Add(message);
    }

    static TrainingResult Train(TrainConfig cfg, string output, string? resume, List<string>? messages = null)
    {
        var config = TinyPretraining.Config();
        using var model = TinyPretraining.Model(config, 1);
        var task = new BertSharp.Training.Pretraining.PretrainingTask(model, config, tokenizer: null);
        var train = TinyPretraining.Source(TinyPretraining.Examples(16, seed: 3), cfg.MicroBatchSize, cfg.Seed);
        var eval = TinyPretraining.Source(TinyPretraining.Examples(8, seed: 4), 8, 0, shuffle: false);
        var trainer = new Trainer<BertSharp.Data.PretrainingBatch>(task, train, eval, new TrainerOptions
        {
            Config = cfg, OutputDir = output, Observers = messages is null ? [] : [new Messages(messages)],
        });
        return trainer.Run(resume);
    }
}
