using System.Diagnostics;
using BertSharp.Checkpoints;
using Xunit;
using G = BertSharp.Tests.Checkpoints.OnnxGraph;

namespace BertSharp.Tests.Checkpoints;

/// <summary>
/// Hostile and corrupt ONNX files: every failure is one <see cref="InvalidDataException"/> naming the file — never
/// another exception type, an allocation beyond the file's size, or a hang (each case has a time budget). A flip
/// inside tensor data can load successfully with different values (ONNX has no checksums); that is allowed.
/// </summary>
public class OnnxCorruptionTests
{
    static readonly TimeSpan Budget = TimeSpan.FromSeconds(5);

    /// <summary>Parses, recovers names, infers the config and reads every tensor; returns the error or null.</summary>
    static InvalidDataException? TryImport(string path, string what)
    {
        var sw = Stopwatch.StartNew();
        try
        {
            var w = OnnxWeights.Analyze(path);
            try { OnnxConfig.Infer(w); } catch (InvalidDataException) { }
            foreach (var t in w.LoadTensors().Values) t.Dispose();
            return null;
        }
        catch (InvalidDataException e)
        {
            Assert.Contains(path, e.Message);
            return e;
        }
        catch (Exception e)
        {
            Assert.Fail($"{what}: {e.GetType().Name} instead of InvalidDataException: {e.Message}\n{e.StackTrace}");
            return null;
        }
        finally
        {
            Assert.True(sw.Elapsed < Budget, $"{what}: took {sw.Elapsed}");
        }
    }

    static byte[] Sample(string dir)
    {
        File.WriteAllBytes(Path.Combine(dir, "w.bin"), G.Values(8, 3).SelectMany(BitConverter.GetBytes).ToArray());
        return new G()
            .Input("input_ids", [1, 2], 7)
            .Init("embeddings.word_embeddings.weight", [6, 4], G.Values(24, 1))
            .Init("onnx::MatMul_1", [4, 4], G.Values(16, 2), TensorEncoding.FloatDataPacked)
            .Init("encoder.layer.0.attention.self.query.bias", [4], G.Values(4, 4), TensorEncoding.Float16Raw)
            .Init("onnx::MatMul_2", [4, 2], G.Values(8, 3), TensorEncoding.External, "w.bin")
            .Init("classifier.bias", [2], G.Values(2, 5), TensorEncoding.Float16Int32Data)
            .InitInt64("shape", [0, 0, 2, 2])
            .Node("Gather", ["embeddings.word_embeddings.weight", "input_ids"], ["e"])
            .Node("MatMul", ["e", "onnx::MatMul_1"], ["m"]).Node("Add", ["encoder.layer.0.attention.self.query.bias", "m"], ["q"])
            .Node("Reshape", ["q", "shape"], ["qr"], G.IntAttr("allowzero", 0))
            .Node("MatMul", ["q", "onnx::MatMul_2"], ["c"]).Node("Add", ["c", "classifier.bias"], ["logits"])
            .Output("logits", [1, 2, 2]).Output("qr", [1, 2, 2, 2])
            .ToModel();
    }

    static byte[] Mutate(byte[] src, Random rng)
    {
        var b = (byte[])src.Clone();
        var n = rng.Next(1, 4);
        for (var i = 0; i < n; i++)
        {
            var at = rng.Next(b.Length);
            b[at] = rng.Next(3) switch { 0 => (byte)rng.Next(256), 1 => (byte)(b[at] ^ (1 << rng.Next(8))), _ => 0xff };
        }
        return b;
    }

    [Fact]
    public void TheSampleLoads()
    {
        using var dir = new TempDir();
        var path = dir.File("m.onnx");
        File.WriteAllBytes(path, Sample(dir.Path));
        Assert.Null(TryImport(path, "original"));
        var w = OnnxWeights.Analyze(path);
        Assert.Equal(["classifier.weight", "encoder.layer.0.attention.self.query.weight"], w.Names.Where(r => r.Transposed).Select(r => r.HfName).Order());
    }

    [Fact]
    public void SeededTruncationsAndBitFlips_FailCleanly()
    {
        using var dir = new TempDir();
        var good = Sample(dir.Path);
        var path = dir.File("fuzz.onnx");
        var rng = new Random(20261201);
        int failed = 0;
        for (var i = 0; i < 600; i++)
        {
            var bad = i % 4 == 0 ? good[..rng.Next(good.Length)] : Mutate(good, rng);
            File.WriteAllBytes(path, bad);
            if (TryImport(path, $"mutation {i}") is not null) failed++;
        }
        Assert.True(failed > 100, $"only {failed} of 600 corruptions were detected");
    }

    [Fact]
    public void RealFile_Truncated_FailsCleanly()
    {
        var why = TestAssets.MissingReason("assets/models/all-MiniLM-L6-v2/model.onnx");
        if (why is not null && !TestAssets.Required) return; // asset-backed part; the synthetic cases above always run
        var bytes = File.ReadAllBytes(TestAssets.Path("assets/models/all-MiniLM-L6-v2/model.onnx"));
        var rng = new Random(7);
        foreach (var n in new[] { 1, 17, 4096, rng.Next(bytes.Length), bytes.Length - 1 })
        {
            var sw = Stopwatch.StartNew();
            var e = Assert.Throws<InvalidDataException>(() => OnnxModel.Parse(bytes[..n], "cut.onnx"));
            Assert.Contains("cut.onnx", e.Message);
            Assert.True(sw.Elapsed < Budget);
        }
    }

    static string Write(TempDir dir, Pb tensor, string name = "h.onnx")
    {
        var g = new Pb().Msg(1, new Pb().Str(1, "x").Str(1, "t").Str(2, "y").Str(4, "Add")).Msg(5, tensor);
        var path = dir.File(name);
        File.WriteAllBytes(path, new Pb().Int(1, 7).Msg(7, g).Msg(8, new Pb().Str(1, "").Int(2, 13)).ToArray());
        return path;
    }

    [Fact]
    public void HugeDims_WrongDims_OverflowingDims_AreRefusedBeforeAllocating()
    {
        using var dir = new TempDir();
        var data = G.Values(4, 1).SelectMany(BitConverter.GetBytes).ToArray();
        // dims claim 2^20 × 2^20 floats (4 TiB) backed by 16 bytes.
        var huge = new Pb().PackedVarints(1, [1 << 20, 1 << 20]).Int(2, 1).Str(8, "a.bias").Bytes(9, data);
        Assert.Contains("needs", TryImport(Write(dir, huge), "huge")!.Message);
        // a product that overflows long
        var overflow = new Pb().PackedVarints(1, [int.MaxValue, int.MaxValue, int.MaxValue]).Int(2, 1).Str(8, "a.bias").Bytes(9, data);
        Assert.NotNull(TryImport(Write(dir, overflow, "o.onnx"), "overflow"));
        // wrong dims for the data: 5 floats declared, 4 present (raw and typed)
        var wrong = new Pb().PackedVarints(1, [5]).Int(2, 1).Str(8, "a.bias").Bytes(9, data);
        Assert.Contains("raw_data holds 16", TryImport(Write(dir, wrong, "w.onnx"), "wrong")!.Message);
        var wrongTyped = new Pb().PackedVarints(1, [5]).Int(2, 1).Str(8, "a.bias").Bytes(4, data);
        Assert.Contains("float_data holds 4", TryImport(Write(dir, wrongTyped, "wt.onnx"), "wrong typed")!.Message);
        // typed data declared far beyond the bytes present
        var typedHuge = new Pb().PackedVarints(1, [1 << 30]).Int(2, 7).Str(8, "a.bias").PackedVarints(7, [1, 2, 3]);
        Assert.Contains("declares", TryImport(Write(dir, typedHuge, "th.onnx"), "typed huge")!.Message);
        // a negative dim (as a 10-byte varint) and an unknown data type
        var negative = new Pb().PackedVarints(1, [-4]).Int(2, 1).Str(8, "a.bias").Bytes(9, data);
        Assert.Contains("invalid dimension", TryImport(Write(dir, negative, "n.onnx"), "negative")!.Message);
        var unknown = new Pb().PackedVarints(1, [4]).Int(2, 99).Str(8, "a.bias").Bytes(9, data);
        Assert.Contains("unknown data type 99", TryImport(Write(dir, unknown, "u.onnx"), "unknown")!.Message);
        // external data whose offset is beyond its file
        File.WriteAllBytes(dir.File("small.bin"), data);
        var extFar = G.Tensor("a.bias", [4], G.Values(4, 1), TensorEncoding.External, "small.bin", long.MaxValue / 2);
        Assert.Contains("runs past the end", TryImport(Write(dir, extFar, "e.onnx"), "external offset")!.Message);
    }

    [Fact]
    public void HugeLengthPrefix_IsRefused()
    {
        using var dir = new TempDir();
        // A graph field whose length prefix claims 2^40 bytes.
        var bytes = new Pb().Int(1, 7).Tag(7, 2).Varint(1UL << 40).ToArray().Concat(new byte[32]).ToArray();
        var path = dir.File("len.onnx");
        File.WriteAllBytes(path, bytes);
        var e = TryImport(path, "huge length");
        Assert.Contains("runs past the end", e!.Message);
        // Not a protobuf at all.
        File.WriteAllText(path, "hello, this is not an ONNX model");
        Assert.NotNull(TryImport(path, "text"));
    }
}
