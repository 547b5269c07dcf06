namespace BertSharp.Inference;

/// <summary>What <see cref="EmbeddingJob.Run"/> did.</summary>
public sealed record EmbeddingJobReport(long Rows, long Tokens, long Truncated, long FirstTruncatedLine, long Windowed, long Windows, double Seconds);

/// <summary>
/// Streams a text file (any format <see cref="TextInputs"/> reads) through an <see cref="Embedder"/> into an
/// embeddings file: <c>chunkSize</c> texts at a time are read, embedded (length-sorted batches within the
/// chunk, input order restored) and appended to the output, so memory stays bounded by the chunk whatever the file
/// size. The output appears only when everything succeeded (see <see cref="EmbeddingFileWriter"/>).
/// </summary>
public static class EmbeddingJob
{
    public const int DefaultChunkSize = 4096;

    /// <param name="progress">called with the number of texts finished</param>
    public static EmbeddingJobReport Run(Embedder embedder, IEnumerable<TextRecord> input, string outputPath, int chunkSize = DefaultChunkSize,
        Action<int>? progress = null, CancellationToken cancellationToken = default)
    {
        if (chunkSize < 1) throw new ArgumentException($"chunk size must be at least 1 (got {chunkSize})");
        var clock = System.Diagnostics.Stopwatch.StartNew();
        using var writer = new EmbeddingFileWriter(outputPath, embedder.Dimensions);
        long rows = 0, tokens = 0, truncated = 0, windowed = 0, windows = 0, firstCut = -1;
        var chunk = new List<string>(Math.Min(chunkSize, 1 << 16));
        var lines = new List<long>(chunk.Capacity);
        void Flush()
        {
            if (chunk.Count == 0) return;
            var r = embedder.EmbedWithReport(chunk, progress, cancellationToken);
            writer.Append(r.Vectors);
            tokens += r.Tokens;
            if (r.Truncated.Count > 0 && firstCut < 0) firstCut = lines[r.Truncated[0]];
            truncated += r.Truncated.Count;
            windowed += r.Windowed.Count;
            windows += r.Windows;
            rows += chunk.Count;
            chunk.Clear();
            lines.Clear();
        }
        foreach (var rec in input)
        {
            cancellationToken.ThrowIfCancellationRequested();
            chunk.Add(rec.Text);
            lines.Add(rec.Line);
            if (chunk.Count == chunkSize) Flush();
        }
        Flush();
        cancellationToken.ThrowIfCancellationRequested();
        writer.Commit();
        return new EmbeddingJobReport(rows, tokens, truncated, firstCut, windowed, windows, clock.Elapsed.TotalSeconds);
    }
}
