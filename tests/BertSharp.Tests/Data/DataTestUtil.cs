using BertSharp.Data;

namespace BertSharp.Tests.Data;

/// <summary>Synthetic vocabularies, encoders and corpora for data-pipeline tests.</summary>
internal static class DataTestUtil
{
    public const int Pad = 0, Unk = 1, Cls = 2, Sep = 3, Mask = 4, FirstWord = 5;

    /// <summary>A vocab of <paramref name="size"/> ids: 5 specials, then words; ids in <paramref name="continuation"/> are ## pieces.</summary>
    public static PretrainingVocab Vocab(int size, Func<int, bool>? continuation = null)
    {
        var cont = new bool[size];
        if (continuation is not null)
            for (int i = FirstWord; i < size; i++) cont[i] = continuation(i);
        return new PretrainingVocab(size, Pad, Cls, Sep, Mask, cont);
    }

    /// <summary>
    /// Documents whose token ids are unique across the corpus and increase along each document, so any token tells
    /// which document (and where) it came from. Returns the corpus and, per id, its document.
    /// </summary>
    public static (InMemoryTokenizedCorpus Corpus, int[] DocOf, int VocabSize) UniqueCorpus(int documents, int minSentences, int maxSentences,
        int minLength, int maxLength, int seed)
    {
        var rng = new Random(seed);
        var docs = new List<List<int[]>>();
        var docOf = new List<int>();
        for (int i = 0; i < FirstWord; i++) docOf.Add(-1);
        int next = FirstWord;
        for (int d = 0; d < documents; d++)
        {
            var sentences = new List<int[]>();
            int n = rng.Next(minSentences, maxSentences + 1);
            for (int s = 0; s < n; s++)
            {
                var ids = new int[rng.Next(minLength, maxLength + 1)];
                for (int k = 0; k < ids.Length; k++) { ids[k] = next++; docOf.Add(d); }
                sentences.Add(ids);
            }
            docs.Add(sentences);
        }
        return (new InMemoryTokenizedCorpus(docs), docOf.ToArray(), next);
    }

}

/// <summary>A fresh temporary folder, deleted on dispose.</summary>
internal sealed class TempFolder : IDisposable
{
    public TempFolder(string name)
    {
        Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "bertsharp-data-tests", name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(Path);
    }

    public string Path { get; }

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}

/// <summary>A whitespace "tokenizer" over a fixed word list: <c>w12</c> → id, <c>w12+3</c> → w12 then continuation piece 3.</summary>
internal sealed class SyntheticEncoder : ITextEncoder
{
    public const int Words = 200, Pieces = 20;

    public SyntheticEncoder()
    {
        Vocab = DataTestUtil.Vocab(DataTestUtil.FirstWord + Words + Pieces, id => id >= DataTestUtil.FirstWord + Words);
    }

    public PretrainingVocab Vocab { get; }
    public string Fingerprint => "synthetic-v1";

    public int[] Encode(string text)
    {
        var ids = new List<int>();
        foreach (var word in text.Split(' ', StringSplitOptions.RemoveEmptyEntries))
        {
            var parts = word.Trim('.', ',', '!', '?').Split('+');
            if (parts[0].Length < 2 || parts[0][0] != 'w' || !int.TryParse(parts[0][1..], out var w)) { ids.Add(DataTestUtil.Unk); continue; }
            ids.Add(DataTestUtil.FirstWord + w % Words);
            foreach (var p in parts.Skip(1)) ids.Add(DataTestUtil.FirstWord + Words + int.Parse(p) % Pieces);
        }
        return ids.ToArray();
    }
}
