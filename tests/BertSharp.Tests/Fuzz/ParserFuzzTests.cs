using System.Diagnostics;
using System.Security.Cryptography;
using System.Text;
using BertSharp.Checkpoints;
using BertSharp.Data;
using BertSharp.Modeling;
using BertSharp.Tests.Checkpoints;
using BertSharp.Tests.Cli;
using BertSharp.Tokenization;
using TorchSharp;
using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests.Fuzz;

/// <summary>
/// Seeded mutations (truncation, bit flips, length fields set huge, numbers/dims changed, fields swapped) of a valid
/// input for every parser. Each case must end in one of:
/// <list type="bullet">
/// <item>refused: <see cref="InvalidDataException"/>, <see cref="FormatException"/> or (a mutated reference to another
///   file) <see cref="FileNotFoundException"/>, with a one-line message that names the file;</item>
/// <item>identical: success with the output of the unaltered input;</item>
/// <item>reported (checkpoints only): the load succeeds, every tensor it did load equals the original, and its
///   LoadReport names the difference (a head tensor renamed: initialised and listed as missing/unexpected);</item>
/// <item>different (only where the format has nothing to check it against — text files, and a safetensors header
///   whose mutation yields another consistent header): success with other output, counted and allowed.</item>
/// </list>
/// Never another exception type, a case running past its time budget, or managed allocation beyond a multiple of the
/// input size. <c>BERTSHARP_FUZZ_ITERATIONS=N</c> runs N cases per parser (default 40, a few seconds in all).
/// </summary>
public class ParserFuzzTests(Xunit.Abstractions.ITestOutputHelper log)
{
    /// <summary>What a parse produced: a digest of everything, and for checkpoints the per-tensor digests and the report.</summary>
    public sealed record Output(string Digest, IReadOnlyDictionary<string, string>? Tensors = null, string? Report = null);

    /// <summary>One parser under test.</summary>
    /// <param name="Create">writes the valid input files into the given directory</param>
    /// <param name="Files">the files (relative) that mutations may alter</param>
    /// <param name="Parse">parses the directory's files; throws to refuse</param>
    /// <param name="Checked">true when the format can detect any change (checksums, or every byte constrained): success must be identical or reported</param>
    /// <param name="Region">the byte range of a file that mutations other than truncation may touch (default: all)</param>
    public sealed record Target(
        string Name, Action<string> Create, string[] Files, Func<string, Output> Parse, bool Checked,
        Func<string, byte[], (int Start, int End)>? Region = null);

    static readonly string Sentence = "the cat sat on the mat . cats";

    // ---- the table of parsers --------------------------------------------------------------------------------------

    static readonly Dictionary<string, Target> Targets = new Target[]
    {
        // safetensors has no checksum: the data region is bytes nobody can check, so only the header is mutated
        // (and the file truncated anywhere). A mutated header that is still consistent is the one thing it cannot see.
        new("safetensors", dir => FuzzFixtures.SaveMicroModel(dir), ["model.safetensors"],
            dir => LoadIntoModel(Path.Combine(dir, "model.safetensors")), Checked: false,
            Region: (_, b) => (0, 8 + (int)Math.Min(BitConverter.ToUInt64(b), (ulong)(b.Length - 8)))),
        // .bin: every zip entry is CRC-32 checked, the end records validated; any change is refused or harmless.
        new("pytorch-bin", dir => FuzzFixtures.ConvertToBin(FuzzFixtures.SaveMicroModel(dir)), ["pytorch_model.bin"],
            dir => LoadIntoModel(Path.Combine(dir, "pytorch_model.bin")), Checked: true),
        // TF bundle: crc32c on every index block and every tensor.
        new("tf-bundle", CreateTfBundle, ["bert_model.ckpt.index", "bert_model.ckpt.data-00000-of-00001"],
            dir => LoadIntoModel(Path.Combine(dir, "bert_model.ckpt")), Checked: true),
        // ONNX has no checksum: a flip inside tensor data loads with other values; everything else (lengths, dims,
        // graph structure, names) is refused or harmless. The file is the micro model as `bert export` writes it.
        new("onnx", dir => BertSharp.Export.OnnxExporter.ExportDirectory(FuzzFixtures.SaveMicroModel(Path.Combine(dir, "src")),
                Path.Combine(dir, "model.onnx"), new BertSharp.Export.OnnxExportOptions { Task = BertSharp.Export.OnnxExportTask.Pretraining }),
            ["model.onnx"], dir => LoadIntoModel(Path.Combine(dir, "model.onnx")), Checked: false),
        new("vocab.txt", dir => File.WriteAllLines(Path.Combine(dir, "vocab.txt"), FuzzFixtures.VocabTokens), ["vocab.txt"],
            dir => Tokens(BertTokenizer.FromVocabFile(Path.Combine(dir, "vocab.txt"))), Checked: false),
        new("tokenizer.json", dir => File.WriteAllText(Path.Combine(dir, "tokenizer.json"), TokenizerJson), ["tokenizer.json"],
            dir => Tokens(BertTokenizer.FromTokenizerJson(Path.Combine(dir, "tokenizer.json"))), Checked: false),
        new("config.json", dir => FuzzFixtures.MicroConfig.Save(Path.Combine(dir, "config.json")), ["config.json"],
            dir => new Output(BertConfig.Load(Path.Combine(dir, "config.json")).ToJson()), Checked: false),
        new("corpus-text", dir => File.WriteAllText(Path.Combine(dir, "c.txt"), "The cat sat.\nIt was happy.\n\nA dog ran.\nIt barked twice.\n"), ["c.txt"],
            dir => Docs(CorpusReader.ReadGoogleText(Path.Combine(dir, "c.txt"))), Checked: false),
        new("corpus-wikitext", dir => File.WriteAllText(Path.Combine(dir, "w.txt"), " = Title = \n The cat sat . It was happy . \n = = Sub = = \n A dog @-@ ran . \n = Other = \n Text here . \n"), ["w.txt"],
            dir => Docs(CorpusReader.ReadWikiText(Path.Combine(dir, "w.txt"))), Checked: false),
        new("corpus-jsonl", dir => File.WriteAllText(Path.Combine(dir, "d.jsonl"), "{\"text\": \"The cat sat. It was happy.\"}\n{\"text\": \"A dog<br />ran.\", \"label\": 1}\n"), ["d.jsonl"],
            dir => Docs(CorpusReader.ReadJsonl(Path.Combine(dir, "d.jsonl"))), Checked: false),
    }.ToDictionary(t => t.Name);

    public static IEnumerable<object[]> TargetNames() => Targets.Keys.Select(k => new object[] { k });

    const string TokenizerJson =
        """{"version":"1.0","added_tokens":[{"id":0,"content":"[PAD]","special":true},{"id":1,"content":"[UNK]","special":true},{"id":2,"content":"[CLS]","special":true},{"id":3,"content":"[SEP]","special":true},{"id":4,"content":"[MASK]","special":true}],"normalizer":{"type":"BertNormalizer","clean_text":true,"handle_chinese_chars":true,"strip_accents":null,"lowercase":true},"pre_tokenizer":{"type":"BertPreTokenizer"},"post_processor":{"type":"BertProcessing","sep":["[SEP]",3],"cls":["[CLS]",2]},"model":{"type":"WordPiece","unk_token":"[UNK]","continuing_subword_prefix":"##","max_input_chars_per_word":100,"vocab":{"[PAD]":0,"[UNK]":1,"[CLS]":2,"[SEP]":3,"[MASK]":4,"the":5,"cat":6,"sat":7,"on":8,"mat":9,".":10,"##s":11}}}""";

    static void CreateTfBundle(string dir)
    {
        // A Google-layout bundle for the micro model: TF names, dense kernels transposed, as GoogleBertNames maps them back.
        var md = FuzzFixtures.SaveMicroModel(Path.Combine(dir, "src"));
        var weights = SafeTensors.Load(Path.Combine(md, "model.safetensors"));
        var items = new List<TfBundleWriter.Item>();
        foreach (var (name, t) in weights)
        {
            if (!name.StartsWith("bert.", StringComparison.Ordinal) || name.Contains("position_ids", StringComparison.Ordinal)) continue;
            var parts = name.Split('.').ToList();
            var last = parts[^1];
            parts.RemoveAt(parts.Count - 1);
            var tf = string.Join('/', parts.Select((p, i) => p == "layer" && i + 1 < parts.Count ? "layer_" + parts[i + 1] : p)
                .Where((p, i) => !(i > 0 && parts[i - 1] == "layer")));
            Tensor data;
            if (parts[^1].EndsWith("_embeddings", StringComparison.Ordinal)) { tf += ""; data = t; }
            else if (last == "weight" && parts[^1] == "LayerNorm") { tf += "/gamma"; data = t; }
            else if (last == "bias" && parts[^1] == "LayerNorm") { tf += "/beta"; data = t; }
            else if (last == "weight") { tf += "/kernel"; data = t.t().contiguous(); }
            else { tf += "/bias"; data = t; }
            items.Add(new(tf, TfDataType.Float, data.shape, data.bytes.ToArray()));
        }
        foreach (var t in weights.Values) t.Dispose();
        Directory.Delete(Path.Combine(dir, "src"), recursive: true);
        TfBundleWriter.Write(Path.Combine(dir, "bert_model.ckpt"), items);
    }

    // ---- parse operations ----------------------------------------------------------------------------------------------

    static string Hash(ReadOnlySpan<byte> b) => Convert.ToHexString(SHA256.HashData(b))[..16];

    /// <summary>What an inference verb does with a checkpoint: load into a fresh model under the strict policy.</summary>
    static Output LoadIntoModel(string path)
    {
        using var scope = torch.NewDisposeScope();
        var weights = CheckpointFiles.LoadWeights(path);
        try
        {
            using var model = new BertForPreTraining(FuzzFixtures.MicroConfig);
            ModelUtils.InitWeights(model, FuzzFixtures.MicroConfig, 42);
            var report = StateDictLoader.Load(model, weights, path);
            LoadPolicy.Strict.Enforce(report, path);
            var missing = report.Missing.ToHashSet(StringComparer.Ordinal);
            var tensors = model.state_dict()
                .Where(kv => !ModelUtils.IsTiedAlias(kv.Key) && !missing.Contains(kv.Key))
                .ToDictionary(kv => kv.Key, kv => $"{kv.Value.dtype}[{string.Join(",", kv.Value.shape)}]{Hash(kv.Value.contiguous().bytes)}", StringComparer.Ordinal);
            var reportText = $"missing={string.Join(",", report.Missing)};unexpected={string.Join(",", report.Unexpected)}";
            var digest = string.Join("\n", tensors.OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => kv.Key + "=" + kv.Value)) + "\n" + reportText;
            return new Output(digest, tensors, reportText);
        }
        finally
        {
            foreach (var t in weights.Values) t.Dispose();
        }
    }

    static Output Tokens(BertTokenizer tok)
    {
        var enc = tok.Encode(Sentence, "the mat");
        return new Output($"{tok.Vocab.Count}:{string.Join(" ", enc.InputIds)}|{string.Join(" ", enc.Tokens)}|{string.Join("", enc.TokenTypeIds)}");
    }

    static Output Docs(IEnumerable<Document> docs) =>
        new(string.Join("\n---\n", docs.Select(d => string.Join("\n", d.Sentences))));

    // ---- mutations ------------------------------------------------------------------------------------------------------

    public enum Mutation { Truncate, BitFlip, HugeLength, NumberChanged, Swapped }

    /// <summary>Runs of ASCII digits (numbers of a text header: lengths, dims, offsets, ids) inside [start, end).</summary>
    static List<(int At, int Length)> Numbers(byte[] b, int start, int end)
    {
        var runs = new List<(int, int)>();
        for (var i = start; i < end; i++)
        {
            if (b[i] < '0' || b[i] > '9') continue;
            var j = i;
            while (j < end && b[j] >= '0' && b[j] <= '9') j++;
            runs.Add((i, j - i));
            i = j;
        }
        return runs;
    }

    static byte[] Replace(byte[] b, int at, int length, byte[] with) => [.. b.AsSpan(0, at), .. with, .. b.AsSpan(at + length)];

    public static byte[] Mutate(byte[] src, Mutation m, Random rng, int start, int end)
    {
        if (src.Length == 0) return src;
        if (end <= start) (start, end) = (0, src.Length);
        var b = (byte[])src.Clone();
        var numbers = Numbers(b, start, end);
        switch (m)
        {
            case Mutation.Truncate:
                return b[..rng.Next(b.Length)];
            case Mutation.BitFlip:
                for (var i = rng.Next(1, 4); i > 0; i--) b[rng.Next(start, end)] ^= (byte)(1 << rng.Next(8));
                return b;
            case Mutation.HugeLength:
                if (numbers.Count > 0 && rng.Next(2) == 0)
                {
                    var (at, len) = numbers[rng.Next(numbers.Count)];
                    string[] huge = ["2147483647", "4294967295", "9223372036854775807", "18446744073709551615", "99999999999999999999999"];
                    return Replace(b, at, len, Encoding.ASCII.GetBytes(huge[rng.Next(huge.Length)]));
                }
                {
                    var width = rng.Next(2) == 0 ? 4 : 8;
                    if (end - start < width) return b;
                    var at = rng.Next(start, end - width + 1);
                    var value = rng.Next(3) switch { 0 => 0x7FFFFFFFUL, 1 => 0xFFFFFFFFUL, _ => ulong.MaxValue };
                    for (var i = 0; i < width; i++) b[at + i] = (byte)(value >> (8 * i));
                    if (width == 8 && value == 0x7FFFFFFFUL) b[at + 4] = 0;
                    return b;
                }
            case Mutation.NumberChanged:
                if (numbers.Count > 0)
                {
                    var (at, len) = numbers[rng.Next(numbers.Count)];
                    var old = long.TryParse(Encoding.ASCII.GetString(b, at, len), out var v) ? v : 0;
                    var nv = rng.Next(4) switch { 0 => old + 1, 1 => Math.Max(0, old - 1), 2 => 0, _ => old * 2 };
                    return Replace(b, at, len, Encoding.ASCII.GetBytes(nv.ToString(System.Globalization.CultureInfo.InvariantCulture)));
                }
                {
                    var at = rng.Next(start, end);
                    b[at] = (byte)(b[at] + (rng.Next(2) == 0 ? 1 : -1));
                    return b;
                }
            case Mutation.Swapped:
                if (numbers.Count >= 2)
                {
                    var i = rng.Next(numbers.Count);
                    var j = rng.Next(numbers.Count - 1);
                    if (j >= i) j++;
                    var (a, b2) = (numbers[Math.Min(i, j)], numbers[Math.Max(i, j)]);
                    var first = b.AsSpan(a.At, a.Length).ToArray();
                    var second = b.AsSpan(b2.At, b2.Length).ToArray();
                    return [.. b.AsSpan(0, a.At), .. second, .. b.AsSpan(a.At + a.Length, b2.At - a.At - a.Length), .. first, .. b.AsSpan(b2.At + b2.Length)];
                }
                if (end - start >= 16)
                {
                    var x = rng.Next(start, end - 8);
                    var y = rng.Next(start, end - 8);
                    var tmp = b.AsSpan(x, 8).ToArray();
                    b.AsSpan(y, 8).CopyTo(b.AsSpan(x));
                    tmp.CopyTo(b.AsSpan(y));
                }
                return b;
            default:
                throw new ArgumentOutOfRangeException(nameof(m));
        }
    }

    // ---- the harness ---------------------------------------------------------------------------------------------------

    static int Iterations => int.TryParse(Environment.GetEnvironmentVariable("BERTSHARP_FUZZ_ITERATIONS"), out var n) && n > 0 ? n : 40;

    /// <summary>Managed bytes a case may allocate: this multiple of its input size, plus a constant for fixed costs.</summary>
    const long AllocationMultiple = 64;
    const long AllocationConstant = 8 << 20;

    static readonly TimeSpan CaseBudget = TimeSpan.FromSeconds(20);

    sealed record CaseResult(Output? Output, Exception? Error, long Allocated, TimeSpan Elapsed);

    static CaseResult RunCase(Target target, string dir)
    {
        var task = Task.Factory.StartNew(() =>
        {
            var before = GC.GetAllocatedBytesForCurrentThread();
            var sw = Stopwatch.StartNew();
            try
            {
                var o = target.Parse(dir);
                return new CaseResult(o, null, GC.GetAllocatedBytesForCurrentThread() - before, sw.Elapsed);
            }
            catch (Exception e)
            {
                return new CaseResult(null, e, GC.GetAllocatedBytesForCurrentThread() - before, sw.Elapsed);
            }
        }, TaskCreationOptions.LongRunning);
        if (!task.Wait(CaseBudget))
            Assert.Fail($"{target.Name}: a case ran past its {CaseBudget.TotalSeconds} s budget (hang?) in {dir}");
        return task.Result;
    }

    static bool Refusal(Exception e) => e is InvalidDataException or FormatException or FileNotFoundException;

    [Theory]
    [MemberData(nameof(TargetNames))]
    public void MutatedInput_IsRefusedCleanly_OrGivesTheSameOutput(string name)
    {
        var target = Targets[name];
        using var temp = new TempDir();
        var good = Path.Combine(temp.Path, "good");
        Directory.CreateDirectory(good);
        target.Create(good);
        var original = RunCase(target, good);
        Assert.True(original.Error is null, $"{name}: the unaltered input must load: {original.Error}");
        var inputBytes = Directory.GetFiles(good, "*", SearchOption.AllDirectories).Sum(f => new FileInfo(f).Length);
        var allocationBudget = AllocationMultiple * inputBytes + AllocationConstant;

        var counts = new Dictionary<string, int>();
        void Count(string k) => counts[k] = counts.GetValueOrDefault(k) + 1;
        var rng = new Random(name.Aggregate(15, (h, c) => h * 31 + c) & 0x7fffffff);
        var mutations = Enum.GetValues<Mutation>();
        var work = Path.Combine(temp.Path, "case");
        for (var i = 0; i < Iterations; i++)
        {
            if (Directory.Exists(work)) Directory.Delete(work, recursive: true);
            Directory.CreateDirectory(work);
            foreach (var f in Directory.GetFiles(good)) File.Copy(f, Path.Combine(work, Path.GetFileName(f)));
            var file = target.Files[rng.Next(target.Files.Length)];
            var path = Path.Combine(work, file);
            var bytes = File.ReadAllBytes(path);
            var m = mutations[i % mutations.Length];
            var (start, end) = target.Region?.Invoke(file, bytes) ?? (0, bytes.Length);
            var bad = Mutate(bytes, m, rng, start, end);
            File.WriteAllBytes(path, bad);
            var what = $"{name} case {i} ({m} of {file})";

            var r = RunCase(target, work);
            Assert.True(r.Allocated <= allocationBudget,
                $"{what}: allocated {r.Allocated:N0} managed bytes for {inputBytes:N0} input bytes (budget {allocationBudget:N0})");
            if (r.Error is { } e)
            {
                Assert.True(Refusal(e), $"{what}: {e.GetType().Name} is not a clean refusal: {e.Message}\n{e.StackTrace}");
                Assert.False(string.IsNullOrWhiteSpace(e.Message), $"{what}: empty message");
                Assert.DoesNotContain('\n', e.Message);
                Assert.True(e.Message.Contains(work, StringComparison.Ordinal), $"{what}: the message does not name the file: {e.Message}");
                Count("refused");
                continue;
            }
            var o = r.Output!;
            if (o.Digest == original.Output!.Digest) { Count("identical"); continue; }
            if (o.Tensors is not null && o.Report != original.Output.Report
                && o.Tensors.All(kv => original.Output.Tensors!.TryGetValue(kv.Key, out var v) && v == kv.Value))
            {
                Count("reported");
                continue;
            }
            Assert.False(target.Checked, $"{what}: loaded without error but the output differs from the unaltered file's");
            Count("different");
        }
        log.WriteLine($"{name}: {Iterations} cases: {string.Join(", ", counts.OrderBy(kv => kv.Key).Select(kv => $"{kv.Key} {kv.Value}"))}");
        Assert.True(counts.GetValueOrDefault("refused") > 0, $"{name}: no mutation was refused ({string.Join(", ", counts)})");
    }

    // ---- the CLI: a handful of corrupted checkpoints through `bert fill-mask` -------------------------------------------

    public static IEnumerable<object[]> Corruptions() =>
        new[] { "dtype-I32", "header-length-short", "offsets-gap", "offsets-strings", "encoder-weight-deleted", "bin-crc", "bin-zip64-marker", "truncated" }
            .Select(c => new object[] { c });

    static void Corrupt(string md, string how)
    {
        var st = Path.Combine(md, "model.safetensors");
        byte[] Header(out int length)
        {
            var b = File.ReadAllBytes(st);
            length = (int)BitConverter.ToUInt64(b);
            return b;
        }
        void EditHeader(Func<string, string> edit)
        {
            // A consistent rewrite (new length, padded to 8 as writers do) so that only the edit is wrong.
            var b = Header(out var len);
            var json = Encoding.UTF8.GetString(b, 8, len).TrimEnd(' ');
            var edited = edit(json);
            Assert.NotEqual(json, edited);
            var bytes = Encoding.UTF8.GetBytes(edited.PadRight((edited.Length + 7) / 8 * 8));
            File.WriteAllBytes(st, [.. BitConverter.GetBytes((ulong)bytes.Length), .. bytes, .. b.AsSpan(8 + len)]);
        }
        switch (how)
        {
            case "dtype-I32":
                EditHeader(j => j.Replace("""{"dtype":"F32","shape":[8,8]""", """{"dtype":"I32","shape":[8,8]""", StringComparison.Ordinal));
                break;
            case "header-length-short":
            {
                var b = Header(out var len);
                BitConverter.TryWriteBytes(b.AsSpan(0, 8), (ulong)(len - 1));
                File.WriteAllBytes(st, b);
                break;
            }
            case "offsets-gap":
            {
                // Shift the last tensor's end and the file by 4 bytes: sizes still match, the data region has a gap.
                var weights = SafeTensors.ReadEntries(st);
                var lastEntry = weights[^1];
                EditHeader(j => j.Replace($"[{lastEntry.Begin},{lastEntry.End}]", $"[{lastEntry.Begin + 4},{lastEntry.End + 4}]", StringComparison.Ordinal));
                File.AppendAllText(st, "    ");
                break;
            }
            case "offsets-strings":
                EditHeader(j => j.Replace("\"data_offsets\":[0,", "\"data_offsets\":[\"0\",", StringComparison.Ordinal));
                break;
            case "encoder-weight-deleted":
            {
                var all = SafeTensors.Load(st);
                SafeTensors.Save(st, all.Where(kv => kv.Key != "bert.encoder.layer.0.attention.self.key.bias"));
                foreach (var t in all.Values) t.Dispose();
                break;
            }
            case "bin-crc":
            {
                byte[] embedding;
                using (var all = new DisposableDict(SafeTensors.Load(st)))
                    embedding = all.Items["bert.embeddings.word_embeddings.weight"].bytes.ToArray();
                FuzzFixtures.ConvertToBin(md);
                var bin = Path.Combine(md, "pytorch_model.bin");
                var b = File.ReadAllBytes(bin);
                var at = b.AsSpan().IndexOf(embedding);
                Assert.True(at > 0);
                b[at + embedding.Length / 2] ^= 0x01;
                File.WriteAllBytes(bin, b);
                break;
            }
            case "bin-zip64-marker":
            {
                FuzzFixtures.ConvertToBin(md);
                var bin = Path.Combine(md, "pytorch_model.bin");
                var b = File.ReadAllBytes(bin);
                var eocd = b.AsSpan().LastIndexOf("PK\u0005\u0006"u8);
                b[eocd + 10] = 0xff;
                b[eocd + 11] = 0xff;
                File.WriteAllBytes(bin, b);
                break;
            }
            case "truncated":
            {
                var b = File.ReadAllBytes(st);
                File.WriteAllBytes(st, b[..(b.Length - 3)]);
                break;
            }
        }
    }

    sealed class DisposableDict(Dictionary<string, Tensor> items) : IDisposable
    {
        public Dictionary<string, Tensor> Items { get; } = items;
        public void Dispose() { foreach (var t in Items.Values) t.Dispose(); }
    }

    [Theory]
    [MemberData(nameof(Corruptions))]
    public void FillMask_OnACorruptedCheckpoint_ExitsTwoWithOneLine(string how)
    {
        using var temp = new TempDir();
        var md = FuzzFixtures.SaveMicroModel(temp.File("model"));
        var ok = CliHarness.Run("fill-mask", "--model", md, "the cat [MASK] on the mat");
        Assert.True(ok.Exit == 0, ok.Err);
        Corrupt(md, how);
        var (exit, stdout, stderr) = CliHarness.Run("fill-mask", "--model", md, "the cat [MASK] on the mat");
        Assert.Equal(2, exit);
        Assert.Equal("", stdout);
        var lines = stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one stderr line, got {lines.Length}:\n{stderr}");
        Assert.StartsWith("bert: error: ", lines[0]);
        Assert.Contains(md, lines[0]);
        if (how == "encoder-weight-deleted")
        {
            Assert.Contains("bert.encoder.layer.0.attention.self.key.bias", lines[0]);
            var allowed = CliHarness.Run("fill-mask", "--model", md, "--allow-missing", "the cat [MASK] on the mat");
            Assert.Equal(0, allowed.Exit);
            Assert.Contains("newly initialised", allowed.Err);
        }
    }
}
