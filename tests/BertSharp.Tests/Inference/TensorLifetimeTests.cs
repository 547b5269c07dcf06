using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Inference;

/// <summary>
/// Load paths leave no tensor wrapper to the finalizer thread: every temporary is created inside a dispose scope
/// (TorchSharp counts wrappers created outside any scope per thread). The code runs on a fresh thread, outside the
/// harness's per-test scope (<see cref="TensorScopePerTestAttribute"/>), so the counts see what the library does.
/// </summary>
public class TensorLifetimeTests
{
    static string Model => TestAssets.Path(TestAssets.TinyRandom);

    /// <summary>Runs <paramref name="action"/> on a new thread (no dispose scope there); it returns what it counted.</summary>
    static long OnFreshThread(Func<long> action)
    {
        long count = -1;
        Exception? error = null;
        var t = new Thread(() =>
        {
            try { count = action(); }
            catch (Exception e) { error = e; }
        });
        t.Start();
        t.Join();
        if (error is not null) throw new Xunit.Sdk.XunitException("the action failed: " + error);
        return count;
    }

    /// <summary>Tensors created outside any dispose scope on this thread while <paramref name="action"/> runs.</summary>
    static long CreatedOutsideScope(Action action)
    {
        var before = DisposeScopeManager.Statistics.CreatedOutsideScopeCount;
        action();
        return DisposeScopeManager.Statistics.CreatedOutsideScopeCount - before;
    }

    [Fact]
    public void TheHarnessRunsEachTestInAScope() => Assert.True(TensorScopePerTestAttribute.Opened > 0);

    [AssetFact(TestAssets.TinyRandom)]
    public void InitialisingAndLoadingWeightsLeavesNoTemporaries()
    {
        var dir = ModelDirectory.Open(Model);
        long construction = 0;
        var loading = OnFreshThread(() =>
        {
            BertForMaskedLM? m = null;
            construction = CreatedOutsideScope(() => m = new BertForMaskedLM(dir.Config));
            using (m)
                return CreatedOutsideScope(() =>
                {
                    ModelUtils.InitWeights(m!, dir.Config, 7);
                    var w = CheckpointFiles.LoadWeights(dir.WeightsPath);
                    StateDictLoader.Load(m!, w);
                    foreach (var t in w.Values) t.Dispose();
                    ModelUtils.ToInferenceDType(m!, ScalarType.BFloat16);
                });
        });
        Assert.True(construction > 0, "the counter sees the parameters a constructor makes outside a scope");
        Assert.Equal(0, loading);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void EmbeddingAndFillMaskLeaveNoTemporaries()
    {
        var during = OnFreshThread(() =>
        {
            using var e = Embedder.Load(Model);
            using var p = BertPipeline.Load(Model);
            return CreatedOutsideScope(() =>
            {
                e.Embed(["a short text", "and a somewhat longer second text"]);
                p.FillMask("the capital of france is [MASK].", 3);
            });
        });
        Assert.Equal(0, during);
    }
}
