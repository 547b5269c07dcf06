namespace BertSharp.Inference;

/// <summary>Cosine similarity between sentence embeddings (accumulated in double: identical vectors give exactly 1).</summary>
public static class Similarity
{
    public static double Cosine(ReadOnlySpan<float> a, ReadOnlySpan<float> b)
    {
        if (a.Length != b.Length) throw new ArgumentException($"vectors differ in length ({a.Length} vs {b.Length})");
        double dot = 0, na = 0, nb = 0;
        for (int i = 0; i < a.Length; i++)
        {
            dot += (double)a[i] * b[i];
            na += (double)a[i] * a[i];
            nb += (double)b[i] * b[i];
        }
        return na == 0 || nb == 0 ? 0 : dot / Math.Sqrt(na * nb);
    }

    /// <summary>The symmetric matrix of pairwise cosines of <paramref name="vectors"/> (1 on the diagonal unless a vector is 0).</summary>
    public static double[][] Matrix(IReadOnlyList<float[]> vectors)
    {
        var m = new double[vectors.Count][];
        for (int i = 0; i < vectors.Count; i++) m[i] = new double[vectors.Count];
        for (int i = 0; i < vectors.Count; i++)
            for (int j = i; j < vectors.Count; j++)
                m[i][j] = m[j][i] = Cosine(vectors[i], vectors[j]);
        return m;
    }
}
