using System.Numerics.Tensors;
using System.Text;
using System.Text.Json;
using System.Text.Json.Serialization;
using BertSharp.Checkpoints;
using BertSharp.Data;

namespace BertSharp.Inference;

/// <summary>What an index directory was built with (<c>index.json</c>); a query must use the same settings.</summary>
public sealed record VectorIndexInfo
{
    [JsonPropertyName("format")] public int Format { get; init; } = 1;
    [JsonPropertyName("model")] public required string Model { get; init; }
    [JsonPropertyName("model_path")] public required string ModelPath { get; init; }
    [JsonPropertyName("pooling")] public required string Pooling { get; init; }
    [JsonPropertyName("layer")] public required string Layer { get; init; }
    [JsonPropertyName("model_normalize")] public bool ModelNormalize { get; init; }
    [JsonPropertyName("normalized")] public bool Normalized { get; init; } = true;
    [JsonPropertyName("max_length")] public int MaxLength { get; init; }
    [JsonPropertyName("dims")] public int Dimensions { get; init; }
    [JsonPropertyName("count")] public long Count { get; init; }
    [JsonPropertyName("corpus")] public string? Corpus { get; init; }
    [JsonPropertyName("corpus_bytes")] public long CorpusBytes { get; init; }

    /// <summary>Settings of <paramref name="embedder"/> in the form they are stored.</summary>
    public static VectorIndexInfo Of(Embedder embedder, string? corpus, long count) => new()
    {
        Model = embedder.ModelId,
        ModelPath = Path.GetFullPath(embedder.ModelPath),
        Pooling = embedder.Pooling.ToString().ToLowerInvariant(),
        Layer = embedder.Layer.ToString(),
        ModelNormalize = embedder.Normalize,
        MaxLength = embedder.MaxLength,
        Dimensions = embedder.Dimensions,
        Count = count,
        Corpus = corpus is null ? null : Path.GetFullPath(corpus),
        CorpusBytes = corpus is null ? 0 : new FileInfo(corpus).Length,
    };

    /// <summary>Why vectors of <paramref name="embedder"/> cannot be compared with this index, or null when they can.</summary>
    public string? Mismatch(Embedder embedder)
    {
        var now = Of(embedder, null, 0);
        var diffs = new List<string>();
        if (now.ModelPath != ModelPath) diffs.Add($"model {Model} ({ModelPath}), this run uses {embedder.ModelId} ({now.ModelPath})");
        if (now.Pooling != Pooling) diffs.Add($"pooling {Pooling}, this run uses {now.Pooling}");
        if (now.Layer != Layer) diffs.Add($"layer {Layer}, this run uses {now.Layer}");
        if (now.MaxLength != MaxLength) diffs.Add($"max length {MaxLength}, this run uses {now.MaxLength}");
        if (now.Dimensions != Dimensions) diffs.Add($"{Dimensions} dimensions, this model gives {now.Dimensions}");
        return diffs.Count == 0 ? null : string.Join("; ", diffs);
    }
}

/// <summary>One search hit: row <see cref="Index"/> of the corpus (its 1-based file line), cosine <see cref="Score"/>.</summary>
public readonly record struct SearchHit(long Index, float Score);

/// <summary>
/// Exact cosine search over L2-normalised vectors held in one float32 block: a query's scores are
/// <see cref="TensorPrimitives.Dot(ReadOnlySpan{float}, ReadOnlySpan{float})"/> (SIMD) against every row, and a bounded min-heap of size k
/// keeps the best, so a query costs one pass over the vectors and O(N log k) comparisons. Rows are scanned in
/// parallel partitions whose heaps are merged. Ties are broken by the lower row index, so results are deterministic.
/// An index directory holds <c>vectors.npy</c> (normalised float32 [N, H]), <c>texts.jsonl</c> (<c>{"line", "text"}</c>
/// per row) and <c>index.json</c> (<see cref="VectorIndexInfo"/>).
/// </summary>
public sealed class VectorIndex
{
    readonly float[] _vectors;

    public VectorIndexInfo Info { get; }
    public int Dimensions { get; }
    public long Count { get; }

    /// <summary>The directory it was opened from (null for an in-memory index).</summary>
    public string? Directory { get; }

    readonly List<(long Line, string Text)>? _texts;

    VectorIndex(float[] vectors, int dims, VectorIndexInfo info, string? directory, List<(long, string)>? texts)
    {
        _vectors = vectors;
        Dimensions = dims;
        Count = dims == 0 ? 0 : vectors.LongLength / dims;
        Info = info;
        Directory = directory;
        _texts = texts;
    }

    /// <summary>An in-memory index of <paramref name="vectors"/> (each is normalised here), with optional texts.</summary>
    public static VectorIndex FromVectors(IReadOnlyList<float[]> vectors, int dimensions, VectorIndexInfo? info = null, IReadOnlyList<string>? texts = null)
    {
        var flat = new float[checked((long)vectors.Count * dimensions)];
        for (int i = 0; i < vectors.Count; i++)
        {
            if (vectors[i].Length != dimensions) throw new ArgumentException($"vector {i} has {vectors[i].Length} values, expected {dimensions}");
            var v = (float[])vectors[i].Clone();
            Embedder.NormalizeInPlace(v);
            v.CopyTo(flat.AsSpan(i * dimensions));
        }
        info ??= new VectorIndexInfo { Model = "", ModelPath = "", Pooling = "", Layer = "", Dimensions = dimensions, Count = vectors.Count };
        return new VectorIndex(flat, dimensions, info, null, texts?.Select((t, i) => ((long)i + 1, t)).ToList());
    }

    /// <summary>Embeds <paramref name="corpus"/> into an in-memory index (texts kept).</summary>
    public static VectorIndex Build(Embedder embedder, IEnumerable<TextRecord> corpus, string? corpusPath, Action<int>? progress = null, CancellationToken ct = default)
    {
        var texts = new List<(long, string)>();
        var flat = new List<float>();
        foreach (var chunk in corpus.Chunk(EmbeddingJob.DefaultChunkSize))
        {
            var r = embedder.EmbedWithReport(chunk.Select(c => c.Text).ToList(), progress, ct);
            foreach (var v in r.Vectors)
            {
                Embedder.NormalizeInPlace(v);
                flat.AddRange(v);
            }
            texts.AddRange(chunk.Select(c => (c.Line, c.Text)));
        }
        var info = VectorIndexInfo.Of(embedder, corpusPath, texts.Count);
        return new VectorIndex(flat.ToArray(), embedder.Dimensions, info, null, texts);
    }

    /// <summary>
    /// Embeds <paramref name="corpus"/> (streamed in chunks) into the index directory <paramref name="directory"/>:
    /// written under a temporary name beside it and renamed into place, so it appears complete or not at all.
    /// </summary>
    public static VectorIndexInfo BuildDirectory(Embedder embedder, IEnumerable<TextRecord> corpus, string corpusPath, string directory,
        Action<int>? progress = null, CancellationToken ct = default)
    {
        var full = Path.GetFullPath(directory);
        if (System.IO.Directory.Exists(full) || File.Exists(full)) throw new ArgumentException($"{directory} already exists; not overwriting it");
        var parent = Path.GetDirectoryName(full)!;
        if (!System.IO.Directory.Exists(parent)) throw new DirectoryNotFoundException($"{directory}: parent directory {parent} does not exist");
        var tmp = Path.Combine(parent, $".{Path.GetFileName(full)}.tmp-{Guid.NewGuid():N}");
        System.IO.Directory.CreateDirectory(tmp);
        try
        {
            long count = 0;
            using (var vectors = new EmbeddingFileWriter(Path.Combine(tmp, "vectors.npy"), embedder.Dimensions))
            using (var texts = new StreamWriter(Path.Combine(tmp, "texts.jsonl"), false, new UTF8Encoding(false), 1 << 16) { NewLine = "\n" })
            {
                foreach (var chunk in corpus.Chunk(EmbeddingJob.DefaultChunkSize))
                {
                    ct.ThrowIfCancellationRequested();
                    var r = embedder.EmbedWithReport(chunk.Select(c => c.Text).ToList(), progress, ct);
                    foreach (var v in r.Vectors)
                    {
                        Embedder.NormalizeInPlace(v);
                        vectors.Append(v);
                    }
                    foreach (var c in chunk) texts.WriteLine(JsonSerializer.Serialize(new TextRow(c.Line, c.Text)));
                    count += chunk.Length;
                }
                vectors.Commit();
            }
            var info = VectorIndexInfo.Of(embedder, corpusPath, count);
            File.WriteAllText(Path.Combine(tmp, "index.json"), JsonSerializer.Serialize(info, new JsonSerializerOptions { WriteIndented = true }) + "\n");
            System.IO.Directory.Move(tmp, full);
            return info;
        }
        catch
        {
            try { System.IO.Directory.Delete(tmp, recursive: true); } catch (IOException) { }
            throw;
        }
    }

    sealed record TextRow([property: JsonPropertyName("line")] long Line, [property: JsonPropertyName("text")] string Text);

    /// <summary>Reads <c>index.json</c> of an index directory.</summary>
    public static VectorIndexInfo ReadInfo(string directory)
    {
        var p = Path.Combine(directory, "index.json");
        if (!File.Exists(p)) throw new FileNotFoundException($"{directory} is not a search index (no index.json)", p);
        try
        {
            return JsonSerializer.Deserialize<VectorIndexInfo>(File.ReadAllText(p)) ?? throw new InvalidDataException($"{p}: empty");
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{p}: not a valid index description ({e.Message})");
        }
    }

    /// <summary>Opens an index directory (vectors in memory; texts are read from disk only for hits).</summary>
    public static VectorIndex Open(string directory)
    {
        var info = ReadInfo(directory);
        var npy = Npy.Read(Path.Combine(directory, "vectors.npy"));
        if (npy.Descr != "<f4" || npy.Shape.Length != 2 || npy.Shape[1] != info.Dimensions || npy.Shape[0] != info.Count)
            throw new InvalidDataException($"{directory}/vectors.npy: {npy.Descr} {string.Join('×', npy.Shape)}, index.json says float32 {info.Count}×{info.Dimensions}");
        return new VectorIndex(npy.ToFloat(), info.Dimensions, info, directory, null);
    }

    /// <summary>Row <paramref name="i"/>'s vector.</summary>
    public ReadOnlySpan<float> Vector(long i) => _vectors.AsSpan(checked((int)(i * Dimensions)), Dimensions);

    /// <summary>The best <paramref name="k"/> rows by cosine with <paramref name="query"/> (normalised here), best first.</summary>
    public SearchHit[] Search(ReadOnlySpan<float> query, int k)
    {
        if (query.Length != Dimensions) throw new ArgumentException($"query has {query.Length} dimensions, the index {Dimensions}");
        if (k < 1) throw new ArgumentException($"--top-k must be at least 1 (got {k})");
        var q = query.ToArray();
        Embedder.NormalizeInPlace(q);
        int parts = Count < 65536 ? 1 : Math.Min(Environment.ProcessorCount, 16);
        var heaps = new SearchHit[parts][];
        long per = (Count + parts - 1) / Math.Max(parts, 1);
        Parallel.For(0, parts, p =>
        {
            long from = p * per, to = Math.Min(Count, from + per);
            heaps[p] = TopK(q, from, to, k);
        });
        return heaps.SelectMany(h => h).OrderByDescending(h => h.Score).ThenBy(h => h.Index).Take(k).ToArray();
    }

    SearchHit[] TopK(float[] q, long from, long to, int k)
    {
        // min-heap on (score, -index): the root is the worst kept hit.
        var heap = new PriorityQueue<long, (float Score, long NegIndex)>(k + 1);
        var vectors = _vectors.AsSpan();
        for (long i = from; i < to; i++)
        {
            float s = TensorPrimitives.Dot(q, vectors.Slice((int)(i * Dimensions), Dimensions));
            if (heap.Count < k) heap.Enqueue(i, (s, -i));
            else if (heap.TryPeek(out _, out var worst) && (s > worst.Score || (s == worst.Score && -i > worst.NegIndex)))
                heap.EnqueueDequeue(i, (s, -i));
        }
        var hits = new SearchHit[heap.Count];
        for (int j = hits.Length - 1; j >= 0; j--)
        {
            heap.TryDequeue(out var idx, out var pr);
            hits[j] = new SearchHit(idx, pr.Score);
        }
        return hits;
    }

    /// <summary>The (line, text) of the given rows, read from memory or streamed once from texts.jsonl.</summary>
    public Dictionary<long, (long Line, string Text)> Texts(IEnumerable<long> rows)
    {
        var want = new HashSet<long>(rows);
        var found = new Dictionary<long, (long, string)>();
        if (_texts is not null)
        {
            foreach (var r in want) found[r] = _texts[(int)r];
            return found;
        }
        if (Directory is null) return found;
        var path = Path.Combine(Directory, "texts.jsonl");
        using var reader = new Utf8LineReader(path);
        long row = 0, max = want.Count == 0 ? -1 : want.Max();
        while (row <= max && reader.TryReadLine(out var line))
        {
            if (want.Contains(row))
            {
                var t = JsonSerializer.Deserialize<TextRow>(line) ?? throw new InvalidDataException($"{path}:{reader.LineNumber}: empty row");
                found[row] = (t.Line, t.Text);
            }
            row++;
        }
        return found;
    }
}
