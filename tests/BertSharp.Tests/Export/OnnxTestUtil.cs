using BertSharp.Checkpoints;
using BertSharp.Export;
using BertSharp.Modeling;
using Microsoft.ML.OnnxRuntime;
using Microsoft.ML.OnnxRuntime.Tensors;
using Tensor = TorchSharp.torch.Tensor;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Export;

/// <summary>
/// Every test class that exports files (or uses <see cref="OnnxTestUtil.TinyRandom"/> / <see cref="OnnxTestUtil.Head"/>,
/// e.g. the ONNX importer's tests) belongs here; the fixture removes the temp directory when they are done.
/// </summary>
[CollectionDefinition(Name)]
public sealed class OnnxExportCollection : ICollectionFixture<OnnxExportCollection.TempFiles>
{
    public const string Name = "onnx-export";

    public sealed class TempFiles : IDisposable
    {
        public void Dispose() => OnnxTestUtil.Cleanup();
    }
}

/// <summary>Exports into a per-run temp directory (cached per key) and runs the files in ONNX Runtime.</summary>
static class OnnxTestUtil
{
    public static readonly string TempDir = CreateTempDir();

    /// <summary>
    /// A fresh temp directory named after this process, removed at exit; directories of earlier test processes that
    /// are no longer running (killed hosts never reach ProcessExit) are removed first. The exports total ~350 MB.
    /// </summary>
    static string CreateTempDir()
    {
        const string prefix = "bertsharp-onnx-tests-";
        foreach (var old in Directory.GetDirectories(Path.GetTempPath(), prefix + "*"))
        {
            var pid = Path.GetFileName(old)[prefix.Length..].Split('-')[0];
            if (int.TryParse(pid, out var id) && !IsRunning(id)) TryDelete(old);
        }
        var dir = Directory.CreateTempSubdirectory($"{prefix}{Environment.ProcessId}-").FullName;
        AppDomain.CurrentDomain.ProcessExit += (_, _) => TryDelete(dir);
        return dir;
    }

    /// <summary>Deletes the exported files (end of the test collection).</summary>
    public static void Cleanup()
    {
        lock (Exported)
        {
            Exported.Clear();
            TryDelete(TempDir);
        }
    }

    static bool IsRunning(int pid)
    {
        try
        {
            using var p = System.Diagnostics.Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException) { return false; }
        catch (InvalidOperationException) { return false; }
    }

    static void TryDelete(string dir)
    {
        try { Directory.Delete(dir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }

    static readonly Dictionary<string, string> Exported = new();

    public static string Root => TestAssets.Path(TestAssets.TinyRandom);
    public static string HeadsRoot => Path.Combine(Root, "heads");
    public static BertConfig TinyConfig => BertConfig.Load(Path.Combine(Root, "config.json"));

    /// <summary>The tiny-random weights (the BertForPreTraining checkpoint).</summary>
    public static Dictionary<string, Tensor> TinyWeights() => CheckpointFiles.LoadWeights(Path.Combine(Root, "model.safetensors"));

    /// <summary>The file for <paramref name="key"/>, exported once by <paramref name="export"/>(path).</summary>
    public static string Cached(string key, Action<string> export)
    {
        lock (Exported)
        {
            if (Exported.TryGetValue(key, out var p)) return p;
            p = Path.Combine(TempDir, key.Replace('/', '_') + ".onnx");
            export(p);
            return Exported[key] = p;
        }
    }

    /// <summary>tiny-random exported as <paramref name="task"/> at <paramref name="opset"/>.</summary>
    public static string TinyRandom(OnnxExportTask task, int opset) => Cached($"tiny-{task}-{opset}", path =>
    {
        using var scope = NewDisposeScope();
        var r = OnnxExporter.Export(TinyConfig, TinyWeights(), path, new OnnxExportOptions { Task = task, Opset = opset });
        Assert.Equal(task, r.Task);
    });

    /// <summary>
    /// A head checkpoint as a user has it: seq-classification-3 is complete; the others are the tiny-random encoder
    /// plus head.safetensors, without the tensors HF's class does not have (pooler for token/QA heads, cls.*).
    /// </summary>
    public static (BertConfig Config, Dictionary<string, Tensor> Weights) Head(string folder)
    {
        var dir = Path.Combine(HeadsRoot, folder);
        var config = BertConfig.Load(Path.Combine(dir, "config.json"));
        if (File.Exists(Path.Combine(dir, "pytorch_model.bin"))) return (config, CheckpointFiles.LoadWeights(Path.Combine(dir, "pytorch_model.bin")));
        var weights = TinyWeights();
        var noPooler = folder is "token-classification-9" or "question-answering";
        foreach (var k in weights.Keys.ToList())
            if (k.StartsWith("cls.", StringComparison.Ordinal) || (noPooler && k.StartsWith("bert.pooler.", StringComparison.Ordinal)))
            {
                weights[k].Dispose();
                weights.Remove(k);
            }
        foreach (var (k, t) in CheckpointFiles.LoadWeights(Path.Combine(dir, "head.safetensors"))) weights[k] = t;
        return (config, weights);
    }

    public static Dictionary<string, Tensor> RunOrt(string modelPath, Tensor ids, Tensor mask, Tensor types,
        GraphOptimizationLevel level = GraphOptimizationLevel.ORT_DISABLE_ALL)
    {
        using var options = new SessionOptions { GraphOptimizationLevel = level, IntraOpNumThreads = 1 };
        using var session = new InferenceSession(modelPath, options);
        static NamedOnnxValue Input(string name, Tensor t) =>
            NamedOnnxValue.CreateFromTensor(name, new DenseTensor<long>(t.data<long>().ToArray(), t.shape.Select(d => (int)d).ToArray()));
        var inputs = new List<NamedOnnxValue> { Input("input_ids", ids), Input("attention_mask", mask), Input("token_type_ids", types) };
        using var results = session.Run(inputs);
        var outputs = new Dictionary<string, Tensor>();
        foreach (var r in results)
        {
            var t = r.AsTensor<float>();
            outputs[r.Name] = torch.tensor(t.ToArray(), t.Dimensions.ToArray().Select(d => (long)d).ToArray());
        }
        return outputs;
    }

    /// <summary>See <see cref="TensorAssert.MaxAbsDiff"/>.</summary>
    public static double MaxAbsDiff(Tensor a, Tensor b, Tensor? mask = null) => TensorAssert.MaxAbsDiff(a, b, mask);
}
