using System.Text.Json;
using Apache.Arrow;
using Apache.Arrow.Types;
using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Tests.Cli;
using ParquetSharp;
using Column = ParquetSharp.Column;
using Xunit;

namespace BertSharp.Tests.Inference;

/// <summary>
/// Parquet inputs and outputs of <c>bert embed</c> (Parquet.Net), checked with an independent implementation:
/// ParquetSharp, which wraps Apache Arrow's C++ Parquet library (the code pyarrow and pandas run). ParquetSharp writes
/// the inputs we read and reads, through its Arrow API, the files we write.
/// </summary>
public class ParquetTests(Xunit.Abstractions.ITestOutputHelper log) : IDisposable
{
    static string Model => TestAssets.Path(TestAssets.TinyRandom);
    readonly string _dir = Directory.CreateTempSubdirectory("bertsharp-parquet-").FullName;

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    // ---- inputs written by Arrow C++ (ParquetSharp) ----

    /// <summary>A file with string column <c>text</c> (nullable, as pyarrow writes strings), int32 <c>n</c>, string
    /// <c>label</c> and a list column <c>arr</c>, one row group per entry of <paramref name="groups"/>.</summary>
    string WriteInput(string name, IReadOnlyList<string?[]> groups)
    {
        var path = Path.Combine(_dir, name);
        var columns = new Column[] { new Column<int>("n"), new Column<string>("text"), new Column<string>("label"), new Column<float[]>("arr") };
        using var w = new ParquetFileWriter(path, columns);
        int k = 0;
        foreach (var texts in groups)
        {
            using var rg = w.AppendRowGroup();
            var n = Enumerable.Range(k, texts.Length).ToArray();
            k += texts.Length;
            using (var c = rg.NextColumn().LogicalWriter<int>()) c.WriteBatch(n);
            using (var c = rg.NextColumn().LogicalWriter<string>()) c.WriteBatch(texts!);
            using (var c = rg.NextColumn().LogicalWriter<string>()) c.WriteBatch(n.Select(i => i % 2 == 0 ? "pos" : "neg").ToArray());
            using (var c = rg.NextColumn().LogicalWriter<float[]>()) c.WriteBatch(n.Select(i => new[] { (float)i }).ToArray());
        }
        w.Close();
        return path;
    }

    static readonly string[] Texts = ["A man is playing a guitar.", "Zürich café 你好 🙂", "", "two\nlines", "say \"hi\", twice", "The quick brown fox jumps over the lazy dog.", "last"];

    [Fact]
    public void ReadsTextAndLabelColumnsAcrossRowGroupsInOrder()
    {
        var p = WriteInput("in.parquet", [Texts[..3], Texts[3..4], Texts[4..]]);
        using (var f = new ParquetFileReader(p)) Assert.Equal(3, f.FileMetaData.NumRowGroups);
        var rows = TextInputs.ReadRows(p, "text", "label").ToList();
        Assert.Equal(Texts, rows.Select(r => r.Text));
        Assert.Equal(Texts.Select((_, i) => i % 2 == 0 ? "pos" : "neg"), rows.Select(r => r.Label));
        Assert.Equal(Enumerable.Range(1, Texts.Length).Select(i => (long)i), rows.Select(r => r.Line));
        Assert.Equal(Texts.Length, TextInputs.Count(p, column: "text"));
        // an integer column as labels (written back in invariant form), and the classify-demo reader
        Assert.Equal(Enumerable.Range(0, Texts.Length).Select(i => i.ToString(System.Globalization.CultureInfo.InvariantCulture)),
            TextInputs.ReadRows(p, "text", "n").Select(r => r.Label));
        Assert.Equal(["pos", "neg", "pos"], ClassifyDemo.Read(p, "text", "label").Take(3).Select(l => l.Label));
        Assert.Equal(TextInputFormat.Parquet, TextInputs.Validate(p, null, "text"));
        Assert.Contains("needs --column", Assert.Throws<ArgumentException>(() => TextInputs.Validate(p, "text", null)).Message);
    }

    [Fact]
    public void ReadsAManyRowGroupFileOneGroupAtATime()
    {
        // 50 row groups of 200 rows: every row comes back once, in order
        var groups = Enumerable.Range(0, 50).Select(g => Enumerable.Range(0, 200).Select(i => $"row {g * 200 + i}").ToArray<string?>()).ToList();
        var p = WriteInput("many.parquet", groups);
        long expected = 0;
        foreach (var r in TextInputs.Read(p, column: "text"))
        {
            Assert.Equal($"row {expected}", r.Text);
            Assert.Equal(++expected, r.Line);
        }
        Assert.Equal(10_000, expected);
        Assert.Equal(10_000, TextInputs.Count(p, column: "text"));
    }

    [Theory]
    [InlineData("text", "in.parquet: column 'text': row 5 is null; expected a string in every row")]
    [InlineData("missing", "in.parquet: column 'missing': no such column (columns: n, text, label, arr)")]
    [InlineData("n", "in.parquet: column 'n': holds int32 values; expected a column of strings")]
    [InlineData("arr", "in.parquet: column 'arr': is a list column; expected a column of strings")]
    public void MalformedColumnsNameFileAndColumn(string column, string expected)
    {
        var p = WriteInput("in.parquet", [["a", "b", "c"], ["d", null, "f"]]);
        var e = Assert.Throws<FormatException>(() => TextInputs.Read(p, column: column).ToList());
        Assert.Equal(expected, e.Message.Replace(_dir + Path.DirectorySeparatorChar, ""));
    }

    [Fact]
    public void NotAParquetFileIsAFormatError()
    {
        var p = Path.Combine(_dir, "fake.parquet");
        File.WriteAllText(p, "id,text\n1,hello\n");
        Assert.Contains("fake.parquet: not a readable Parquet file", Assert.Throws<FormatException>(() => TextInputs.Read(p, column: "text").ToList()).Message);
    }

    // ---- outputs read by Arrow C++ (ParquetSharp.Arrow) ----

    static async Task<(Schema Schema, long[] Index, float[] Values, int Batches)> ReadWithArrow(string path)
    {
        using var reader = new ParquetSharp.Arrow.FileReader(path);
        var schema = reader.Schema;
        using var batches = reader.GetRecordBatchReader();
        var index = new List<long>();
        var values = new List<float>();
        int count = 0;
        while (await batches.ReadNextRecordBatchAsync() is { } b)
        {
            using (b)
            {
                count++;
                var ix = (Int64Array)b.Column("index");
                var emb = (FixedSizeListArray)b.Column("embedding");
                Assert.Equal(0, emb.NullCount);
                for (int i = 0; i < ix.Length; i++) index.Add(ix.GetValue(i)!.Value);
                var v = (FloatArray)emb.Values;
                values.AddRange(v.Values.Slice(emb.Offset * ((FixedSizeListType)emb.Data.DataType).ListSize, emb.Length * ((FixedSizeListType)emb.Data.DataType).ListSize).ToArray());
            }
        }
        return (schema, index.ToArray(), values.ToArray(), count);
    }

    static void AssertEmbeddingSchema(Schema schema, int dims)
    {
        Assert.Equal(["index", "embedding"], schema.FieldsList.Select(f => f.Name));
        Assert.IsType<Int64Type>(schema.GetFieldByName("index").DataType);
        var list = Assert.IsType<FixedSizeListType>(schema.GetFieldByName("embedding").DataType);
        Assert.Equal(dims, list.ListSize);
        Assert.IsType<FloatType>(list.ValueDataType);
    }

    [Fact]
    public async Task WriterStreamsRowGroupsThatArrowReadsAsAFixedSizeListBitForBit()
    {
        var path = Path.Combine(_dir, "v.parquet");
        float[][] rows = [.. Enumerable.Range(0, 10).Select(i => new[] { i, -i / 3f, 1e-8f * i }),
            [float.NaN, float.PositiveInfinity, -0f], [float.Epsilon, float.MaxValue, float.NegativeInfinity]];
        using (var w = new EmbeddingFileWriter(path, 3, parquetRowsPerGroup: 4))
        {
            w.Append(rows[..5]);
        }   // no Commit: as after an error or Ctrl-C
        Assert.Empty(Directory.GetFiles(_dir));
        using (var w = new EmbeddingFileWriter(path, 3, parquetRowsPerGroup: 4))
        {
            w.Append(rows[..5]);
            w.Append(rows[5..]);
            Assert.Empty(Directory.GetFiles(_dir, "*.parquet"));   // still the temporary file
            w.Commit();
        }
        Assert.Single(Directory.GetFiles(_dir));
        using (var f = new ParquetFileReader(path))
        {
            Assert.Equal(3, f.FileMetaData.NumRowGroups);   // 12 rows in groups of 4
            Assert.Equal(12, f.FileMetaData.NumRows);
            Assert.Equal(LogicalTypeEnum.List, f.FileMetaData.Schema.GroupNode.Field(1).LogicalType.Type);
            Assert.True(f.FileMetaData.KeyValueMetadata.ContainsKey("ARROW:schema"));
        }
        var (schema, index, values, batches) = await ReadWithArrow(path);
        log.WriteLine($"arrow schema: {string.Join(", ", schema.FieldsList.Select(f => $"{f.Name}: {f.DataType.Name}"))}; {batches} batches");
        AssertEmbeddingSchema(schema, 3);
        Assert.Equal(Enumerable.Range(0, 12).Select(i => (long)i), index);
        Assert.Equal(rows.SelectMany(r => r).Select(BitConverter.SingleToInt32Bits), values.Select(BitConverter.SingleToInt32Bits));
    }

    [Fact]
    public async Task AnEmptyInputGivesAValidFileWithTheSchema()
    {
        var path = Path.Combine(_dir, "empty.parquet");
        using (var w = new EmbeddingFileWriter(path, 8)) w.Commit();
        var (schema, index, values, _) = await ReadWithArrow(path);
        AssertEmbeddingSchema(schema, 8);
        Assert.Empty(index);
        Assert.Empty(values);
    }

    [Fact]
    public void TheArrowSchemaMessageParsesWithApacheArrowsOwnIpcReader()
    {
        var bytes = ArrowSchemaMetadata.IpcSchemaMessage([
            new("index", false, new ArrowSchemaMetadata.IntType(64, true)),
            new("embedding", true, new ArrowSchemaMetadata.FixedSizeListType(384, new("element", false, new ArrowSchemaMetadata.Float32Type()))),
            new("text", true, new ArrowSchemaMetadata.Utf8Type()),
        ]);
        Assert.Equal(0, bytes.Length % 8);
        using var reader = new Apache.Arrow.Ipc.ArrowStreamReader(new MemoryStream(bytes));
        var s = reader.Schema;
        Assert.Equal(["index", "embedding", "text"], s.FieldsList.Select(f => f.Name));
        Assert.False(s.FieldsList[0].IsNullable);
        Assert.True(s.FieldsList[1].IsNullable);
        var i = Assert.IsType<Int64Type>(s.FieldsList[0].DataType);
        Assert.True(i.IsSigned);
        var l = Assert.IsType<FixedSizeListType>(s.FieldsList[1].DataType);
        Assert.Equal(384, l.ListSize);
        Assert.Equal("element", l.ValueField.Name);
        Assert.False(l.ValueField.IsNullable);
        Assert.IsType<FloatType>(l.ValueDataType);
        Assert.IsType<StringType>(s.FieldsList[2].DataType);
    }

    // ---- the command ----

    [AssetFact(TestAssets.TinyRandom)]
    public async Task EmbedParquetToParquetEqualsTheNpyOutputBitForBitInRowOrder()
    {
        var input = WriteInput("in.parquet", [Texts[..2], Texts[2..5], Texts[5..]]);
        var pq = Path.Combine(_dir, "v.parquet");
        var npy = Path.Combine(_dir, "v.npy");
        var (exit, stdout, stderr) = CliHarness.Run("embed", "--model", Model, "--input", input, "--column", "text", "--output", pq, "--chunk-size", "3", "--batch-size", "2", "--json");
        Assert.True(exit == 0, stderr);
        Assert.Equal(Texts.Length, JsonDocument.Parse(stdout).RootElement.GetProperty("rows").GetInt32());
        // the same batches (results move by ~1e-7 with the batch composition), so the same bits
        (exit, _, stderr) = CliHarness.Run("embed", "--model", Model, "--input", input, "--column", "text", "--output", npy, "--chunk-size", "3", "--batch-size", "2");
        Assert.True(exit == 0, stderr);
        var (schema, index, values, _) = await ReadWithArrow(pq);
        AssertEmbeddingSchema(schema, 128);
        Assert.Equal(Enumerable.Range(0, Texts.Length).Select(i => (long)i), index);
        var fromNpy = Npy.Read(npy).ToFloat();
        Assert.Equal(fromNpy.Select(BitConverter.SingleToInt32Bits), values.Select(BitConverter.SingleToInt32Bits));
        using var e = Embedder.Load(Model);
        for (int i = 0; i < Texts.Length; i++)
            Assert.True(EmbedderTests.MaxDiff(e.Embed(Texts[i]), values.AsSpan(i * 128, 128).ToArray()) <= 1e-5, $"row {i}");
    }

    [AssetTheory(TestAssets.TinyRandom)]
    [InlineData("text", "column 'text': row 5 is null")]
    [InlineData("n", "column 'n': holds int32 values; expected a column of strings")]
    [InlineData("nope", "column 'nope': no such column")]
    public void MalformedParquetInputIsOneLineExitTwoAndNoOutput(string column, string expected)
    {
        var p = WriteInput("in.parquet", [["a", "b", "c"], ["d", null, "f"]]);
        // a chunk of 1: the first rows are embedded and written before the null is read
        var (exit, stdout, stderr) = CliHarness.Run("embed", "--model", Model, "--input", p, "--column", column, "--output", Path.Combine(_dir, "out.parquet"), "--chunk-size", "1");
        Assert.Equal(2, exit);
        Assert.StartsWith("bert: error: ", stderr);
        Assert.Contains("in.parquet: " + expected, stderr);
        Assert.Single(stderr.Trim().Split('\n'));
        Assert.Equal("", stdout);
        Assert.Single(Directory.GetFiles(_dir));   // only the input: no output, no temporary file
    }
}
