namespace BertSharp.Data;

/// <summary>A corpus of documents whose sentences are already WordPiece ids (no empty sentences or documents).</summary>
public interface ITokenizedCorpus
{
    int DocumentCount { get; }
    long SentenceTotal { get; }
    long TokenTotal { get; }
    int SentenceCount(int document);
    int SentenceLength(int document, int sentence);
    /// <summary>Appends the ids of one sentence to <paramref name="destination"/>.</summary>
    void AppendSentence(int document, int sentence, List<int> destination);
}

/// <summary>An in-memory <see cref="ITokenizedCorpus"/> (tests, small corpora).</summary>
public sealed class InMemoryTokenizedCorpus : ITokenizedCorpus
{
    readonly List<int[][]> _documents = new();

    /// <summary>Empty sentences and then empty documents are dropped (as Google does).</summary>
    public InMemoryTokenizedCorpus(IEnumerable<IEnumerable<int[]>> documents)
    {
        foreach (var d in documents)
        {
            var sentences = d.Where(s => s.Length > 0).ToArray();
            if (sentences.Length == 0) continue;
            _documents.Add(sentences);
            SentenceTotal += sentences.Length;
            TokenTotal += sentences.Sum(s => (long)s.Length);
        }
    }

    /// <summary>Tokenizes raw documents with <paramref name="encoder"/>.</summary>
    public static InMemoryTokenizedCorpus Tokenize(IEnumerable<Document> documents, ITextEncoder encoder) =>
        new(documents.Select(d => d.Sentences.Select(encoder.Encode)));

    public int DocumentCount => _documents.Count;
    public long SentenceTotal { get; }
    public long TokenTotal { get; }
    public int SentenceCount(int document) => _documents[document].Length;
    public int SentenceLength(int document, int sentence) => _documents[document][sentence].Length;
    public void AppendSentence(int document, int sentence, List<int> destination) => destination.AddRange(_documents[document][sentence]);
}
