using System.Text;
using System.Text.Json;
using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Tests.Inference;
using Xunit;

namespace BertSharp.Tests.Cli;

public class EmbedCliTests : IDisposable
{
    static string Model => TestAssets.Path(TestAssets.TinyRandom);
    readonly string _dir = Directory.CreateTempSubdirectory("bertsharp-embed-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    string File_(string name, string text) => File_(name, Encoding.UTF8.GetBytes(text));

    string File_(string name, byte[] bytes)
    {
        var p = Path.Combine(_dir, name);
        File.WriteAllBytes(p, bytes);
        return p;
    }

    static readonly string[] Lines = ["A man is playing a guitar.", "", "Zürich café naïve 你好 😀", "The quick brown fox jumps over the lazy dog."];

    [Theory]
    [InlineData("embed")]
    [InlineData("convert")]
    public void VerbIsRegisteredWithHelp(string verb)
    {
        var (exit, stdout, _) = CliHarness.Run(verb, "--help");
        Assert.Equal(0, exit);
        Assert.Contains("Usage:", stdout);
        Assert.Contains("--output", stdout);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void NpyHasNumPyHeaderShapeAndRowOrder()
    {
        var input = File_("in.txt", string.Join("\n", Lines) + "\n");
        var output = Path.Combine(_dir, "out.npy");
        var (exit, stdout, stderr) = CliHarness.Run("embed", "--model", Model, "--input", input, "--output", output, "--batch-size", "3", "--json");
        Assert.True(exit == 0, stderr);
        using var doc = JsonDocument.Parse(stdout);
        Assert.Equal(4, doc.RootElement.GetProperty("rows").GetInt32());
        Assert.Equal("mean", doc.RootElement.GetProperty("pooling").GetString());

        var bytes = File.ReadAllBytes(output);
        Assert.Equal(new byte[] { 0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0 }, bytes[..8]);
        int headerLen = BitConverter.ToUInt16(bytes, 8);
        Assert.Equal(0, (10 + headerLen) % 64);
        var header = Encoding.ASCII.GetString(bytes, 10, headerLen);
        Assert.Equal("{'descr': '<f4', 'fortran_order': False, 'shape': (4, 128), }", header.TrimEnd(' ', '\n'));
        Assert.EndsWith("\n", header);
        Assert.Equal(10 + headerLen + 4 * 128 * 4, bytes.Length);

        var npy = Npy.Read(output);
        Assert.Equal("<f4", npy.Descr);
        Assert.Equal(new long[] { 4, 128 }, npy.Shape);
        var flat = npy.ToFloat();
        using var embedder = Embedder.Load(Model);
        for (int i = 0; i < Lines.Length; i++)
        {
            var expected = embedder.Embed(Lines[i]);   // line i, one at a time (line 1 is the empty text)
            Assert.True(EmbedderTests.MaxDiff(expected, flat.AsSpan(i * 128, 128).ToArray()) <= 1e-5, $"row {i}");
        }
        Assert.Empty(Directory.GetFiles(_dir, ".out.npy.tmp-*"));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void JsonlRoundTripsTheSameFloatsAndCrlfEqualsLf()
    {
        var lf = File_("lf.txt", string.Join("\n", Lines));
        var crlf = File_("crlf.txt", "\uFEFF" + string.Join("\r\n", Lines) + "\r\n");
        var npyPath = Path.Combine(_dir, "a.npy");
        var jsonlPath = Path.Combine(_dir, "b.jsonl");
        Assert.Equal(0, CliHarness.Run("embed", "--model", Model, "--input", lf, "--output", npyPath, "--normalize").Exit);
        var (exit, _, stderr) = CliHarness.Run("embed", "--model", Model, "--input", crlf, "--output", jsonlPath, "--normalize");
        Assert.True(exit == 0, stderr);
        var flat = Npy.Read(npyPath).ToFloat();
        var rows = File.ReadAllLines(jsonlPath);
        Assert.Equal(Lines.Length, rows.Length);
        for (int i = 0; i < rows.Length; i++)
        {
            using var doc = JsonDocument.Parse(rows[i]);
            Assert.Equal(i, doc.RootElement.GetProperty("index").GetInt32());
            var v = doc.RootElement.GetProperty("embedding").EnumerateArray().Select(e => e.GetSingle()).ToArray();
            Assert.Equal(128, v.Length);
            Assert.Equal(1.0, Math.Sqrt(v.Sum(x => (double)x * x)), 5);
            Assert.True(EmbedderTests.MaxDiff(flat.AsSpan(i * 128, 128).ToArray(), v) <= 1e-6, $"row {i}");
        }
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void JsonlFloatsAreExactRoundTrips()
    {
        var a = Path.Combine(_dir, "a.npy");
        var b = Path.Combine(_dir, "b.jsonl");
        // Awkward floats (shortest-form edge cases, the largest and the smallest subnormal, -0): both writers keep every bit.
        var vectors = new[] { new[] { 0.1f, -1.0000001f, 3.4028235e38f, 1.401298e-45f, -0f, 123456.79f } };
        EmbeddingFiles.Write(a, vectors, 6);
        EmbeddingFiles.Write(b, vectors, 6);
        using var doc = JsonDocument.Parse(File.ReadAllLines(b).Single());
        var back = doc.RootElement.GetProperty("embedding").EnumerateArray().Select(e => float.Parse(e.GetRawText(), System.Globalization.CultureInfo.InvariantCulture)).ToArray();
        Assert.Equal(vectors[0].Select(BitConverter.SingleToInt32Bits), back.Select(BitConverter.SingleToInt32Bits));
        Assert.Equal(vectors[0].Select(BitConverter.SingleToInt32Bits), Npy.Read(a).ToFloat().Select(BitConverter.SingleToInt32Bits));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void EmptyFileGivesZeroRows()
    {
        var input = File_("empty.txt", "");
        var output = Path.Combine(_dir, "e.npy");
        var (exit, _, stderr) = CliHarness.Run("embed", "--model", Model, "--input", input, "--output", output);
        Assert.True(exit == 0, stderr);
        Assert.Equal(new long[] { 0, 128 }, Npy.Read(output).Shape);
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void TruncationIsReported()
    {
        var input = File_("in.txt", "short\n" + string.Join(" ", Enumerable.Repeat("word", 40)) + "\n");
        var output = Path.Combine(_dir, "t.npy");
        var (exit, stdout, stderr) = CliHarness.Run("embed", "--model", Model, "--input", input, "--output", output, "--max-length", "16");
        Assert.True(exit == 0, stderr);
        Assert.Contains("1 of 2 texts were longer than 16 tokens", stderr);
        Assert.Contains("line 2", stderr);
        Assert.Contains("wrote 2 × 128", stdout);
    }

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData("unknown output format '.feather'", "--output", "OUT.feather")]
    [InlineData("unknown output format '(no extension)'", "--output", "OUT")]
    [InlineData("--pooling 'sum' is not supported", "--pooling", "sum")]
    [InlineData("--batch-size must be at least 1", "--batch-size", "0")]
    [InlineData("max length must be at least 2", "--max-length", "1")]
    [InlineData("exceeds the model's max_position_embeddings 512", "--max-length", "1000")]
    [InlineData("--dtype 'int8' is not supported", "--dtype", "int8")]
    [InlineData("give --normalize or --no-normalize, not both", "--normalize", "--no-normalize")]
    [InlineData("in.txt:2: invalid UTF-8", "--input", "BADUTF8")]
    [InlineData("input file not found", "--input", "MISSING")]
    [InlineData("model directory not found", "--model", "/nonexistent/model")]
    public void BadInputIsOneLineExitTwoAndNoOutputFile(string expected, params string[] extra)
    {
        var good = File_("good.txt", "a\nb\n");
        var bad = File_("in.txt", [(byte)'o', (byte)'k', (byte)'\n', 0xC3, 0x28, (byte)'\n']);
        var args = new List<string> { "embed" };
        var given = extra.Select(x => x switch
        {
            "OUT.feather" => Path.Combine(_dir, "out.feather"),
            "OUT" => Path.Combine(_dir, "out"),
            "BADUTF8" => bad,
            "MISSING" => Path.Combine(_dir, "missing.txt"),
            _ => x,
        }).ToList();
        if (!given.Contains("--model")) args.AddRange(["--model", Model]);
        if (!given.Contains("--input")) args.AddRange(["--input", good]);
        if (!given.Contains("--output")) args.AddRange(["--output", Path.Combine(_dir, "out.npy")]);
        args.AddRange(given);
        var (exit, stdout, stderr) = CliHarness.Run([.. args]);
        Assert.Equal(2, exit);
        Assert.Contains(expected, stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.StartsWith("bert: error: ", stderr);
        Assert.Equal("", stdout.Trim());
        Assert.Empty(Directory.GetFiles(_dir).Where(f => Path.GetFileName(f).StartsWith("out", StringComparison.Ordinal) || Path.GetFileName(f).StartsWith(".out", StringComparison.Ordinal)));
    }

    [AssetFact(TestAssets.TinyRandom)]
    public void PoolerOnACheckpointWithoutPoolerExitsTwo()
    {
        using var dir = new TempModelDir().Link(Model, "config.json", "vocab.txt", "tokenizer_config.json");
        var weights = CheckpointFiles.LoadWeights(Path.Combine(Model, "model.safetensors"));
        SafeTensors.Save(Path.Combine(dir.Path, "model.safetensors"), weights.Where(kv => !kv.Key.Contains("pooler.")));
        foreach (var t in weights.Values) t.Dispose();
        var input = File_("in.txt", "a\n");
        var (exit, _, stderr) = CliHarness.Run("embed", "--model", dir.Path, "--input", input, "--output", Path.Combine(_dir, "p.npy"), "--pooling", "pooler");
        Assert.Equal(2, exit);
        Assert.Contains("needs the pooler weights", stderr);
        Assert.Single(stderr.Trim().Split('\n'));
    }
}
