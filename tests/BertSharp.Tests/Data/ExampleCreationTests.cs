using BertSharp.Data;
using Xunit;

namespace BertSharp.Tests.Data;

public class ExampleCreationTests
{
    static readonly PretrainingDataOptions Nsp = new() { MaxSeqLength = 64, DupeFactor = 2, Seed = 7 };

    [Fact]
    public void NspExamplesHaveBertStructureAndValidLengths()
    {
        var (corpus, docOf, size) = DataTestUtil.UniqueCorpus(40, 3, 25, 1, 20, seed: 1);
        var vocab = DataTestUtil.Vocab(size);
        var examples = ExampleFactory.Create(corpus, vocab, Nsp).ToList();
        Assert.True(examples.Count > 300);
        bool sawShort = false;
        foreach (var e in examples)
        {
            var ids = e.InputIds;
            Assert.True(ids.Length <= Nsp.MaxSeqLength);
            Assert.True(e.SegmentALength >= 1);
            int bLength = ids.Length - e.SegmentALength - 3;
            Assert.True(bLength >= 1);
            Assert.Equal(DataTestUtil.Cls, ids[0]);
            Assert.Equal(DataTestUtil.Sep, ids[e.SegmentALength + 1]);
            Assert.Equal(DataTestUtil.Sep, ids[^1]);
            Assert.Equal(3, ids.Count(i => i is DataTestUtil.Cls or DataTestUtil.Sep));
            var types = e.TokenTypeIds();
            Assert.All(types.Take(e.SegmentALength + 2), t => Assert.Equal(0, t));
            Assert.All(types.Skip(e.SegmentALength + 2), t => Assert.Equal(1, t));
            Assert.NotNull(e.NextSentenceLabel);
            if (ids.Length < Nsp.MaxSeqLength / 2) sawShort = true;
        }
        Assert.True(sawShort);
    }

    [Fact]
    public void NextSentenceLabelsAreBalancedAndRandomBComesFromAnotherDocument()
    {
        var (corpus, docOf, size) = DataTestUtil.UniqueCorpus(200, 10, 30, 2, 12, seed: 2);
        var vocab = DataTestUtil.Vocab(size);
        var examples = ExampleFactory.Create(corpus, vocab, Nsp with { DupeFactor = 3 }).ToList();
        Assert.True(examples.Count > 1000);
        int random = 0;
        foreach (var e in examples)
        {
            var a = e.InputIds.AsSpan(1, e.SegmentALength).ToArray();
            var b = e.InputIds.AsSpan(e.SegmentALength + 2, e.InputIds.Length - e.SegmentALength - 3).ToArray();
            int docA = docOf[a[0]];
            Assert.All(a, id => Assert.Equal(docA, docOf[id]));
            int docB = docOf[b[0]];
            Assert.All(b, id => Assert.Equal(docB, docOf[id]));
            if (e.NextSentenceLabel == 1)
            {
                random++;
                Assert.NotEqual(docA, docB);
            }
            else
            {
                Assert.Equal(0, e.NextSentenceLabel);
                Assert.Equal(docA, docB);
                Assert.True(b.Min() > a.Max(), "an is-next B must follow A in its document");
            }
        }
        double rate = (double)random / examples.Count;
        Assert.InRange(rate, 0.45, 0.56);
    }

    [Fact]
    public void UnusedSegmentsArePutBack()
    {
        // With put-back, every sentence of a document appears in some A (or is-next B) of that document.
        var (corpus, docOf, size) = DataTestUtil.UniqueCorpus(30, 5, 15, 3, 8, seed: 3);
        var vocab = DataTestUtil.Vocab(size);
        var examples = ExampleFactory.Create(corpus, vocab, Nsp with { DupeFactor = 1, MaxSeqLength = 512 }).ToList();
        var seen = new HashSet<int>();
        foreach (var e in examples)
        {
            foreach (var id in e.InputIds.AsSpan(1, e.SegmentALength)) seen.Add(id);
            if (e.NextSentenceLabel == 0)
                foreach (var id in e.InputIds.AsSpan(e.SegmentALength + 2, e.InputIds.Length - e.SegmentALength - 3)) seen.Add(id);
        }
        // No truncation at 512 with these sizes, so every token of the corpus must be covered.
        Assert.Equal(size - DataTestUtil.FirstWord, seen.Count);
    }

    [Fact]
    public void CreationIsDeterministicPerSeed()
    {
        var (corpus, _, size) = DataTestUtil.UniqueCorpus(20, 3, 12, 1, 15, seed: 4);
        var vocab = DataTestUtil.Vocab(size);
        var x = ExampleFactory.Create(corpus, vocab, Nsp).ToList();
        var y = ExampleFactory.Create(corpus, vocab, Nsp).ToList();
        var z = ExampleFactory.Create(corpus, vocab, Nsp with { Seed = 8 }).ToList();
        Assert.Equal(x.Select(e => e.InputIds), y.Select(e => e.InputIds));
        Assert.Equal(x.Select(e => e.NextSentenceLabel), y.Select(e => e.NextSentenceLabel));
        Assert.NotEqual(x.Select(e => string.Join(',', e.InputIds)), z.Select(e => string.Join(',', e.InputIds)));
    }

    [Fact]
    public void LineByLineMode()
    {
        var (corpus, _, size) = DataTestUtil.UniqueCorpus(10, 2, 6, 1, 40, seed: 5);
        var vocab = DataTestUtil.Vocab(size);
        var o = new PretrainingDataOptions { Mode = ExampleMode.LineByLine, MaxSeqLength = 20, DupeFactor = 1 };
        var examples = ExampleFactory.Create(corpus, vocab, o).ToList();
        Assert.Equal(corpus.SentenceTotal, examples.Count);
        int k = 0;
        for (int d = 0; d < corpus.DocumentCount; d++)
            for (int s = 0; s < corpus.SentenceCount(d); s++)
            {
                var sentence = new List<int>();
                corpus.AppendSentence(d, s, sentence);
                var e = examples[k++];
                Assert.Null(e.NextSentenceLabel);
                Assert.Equal([DataTestUtil.Cls, .. sentence.Take(18), DataTestUtil.Sep], e.InputIds);
                Assert.All(e.TokenTypeIds(), t => Assert.Equal(0, t));
            }
    }

    [Fact]
    public void PackedMode()
    {
        var (corpus, _, size) = DataTestUtil.UniqueCorpus(12, 2, 6, 1, 40, seed: 6);
        var vocab = DataTestUtil.Vocab(size);
        var o = new PretrainingDataOptions { Mode = ExampleMode.Packed, MaxSeqLength = 32, DupeFactor = 1 };
        var examples = ExampleFactory.Create(corpus, vocab, o).ToList();
        var stream = new List<int>();
        for (int d = 0; d < corpus.DocumentCount; d++)
        {
            if (d > 0) stream.Add(DataTestUtil.Sep);
            for (int s = 0; s < corpus.SentenceCount(d); s++) corpus.AppendSentence(d, s, stream);
        }
        Assert.Equal(stream.Count / 30, examples.Count);
        for (int i = 0; i < examples.Count; i++)
        {
            Assert.Equal(32, examples[i].Length);
            Assert.Null(examples[i].NextSentenceLabel);
            Assert.Equal([DataTestUtil.Cls, .. stream.Skip(i * 30).Take(30), DataTestUtil.Sep], examples[i].InputIds);
        }
    }

    [Fact]
    public void SingleDocumentCorpusStillWorks()
    {
        var corpus = new InMemoryTokenizedCorpus([[new[] { 5, 6, 7 }, new[] { 8, 9 }, new[] { 10 }]]);
        var examples = ExampleFactory.Create(corpus, DataTestUtil.Vocab(20), Nsp with { DupeFactor = 5 }).ToList();
        Assert.NotEmpty(examples);
        // Every run of whole consecutive sentences (s..t) of the one document: what A and B may be.
        int[][] sentences = [[5, 6, 7], [8, 9], [10]];
        var runs = new Dictionary<string, (int First, int Last)>();
        for (var first = 0; first < sentences.Length; first++)
            for (var last = first; last < sentences.Length; last++)
                runs[string.Join(",", sentences[first..(last + 1)].SelectMany(x => x))] = (first, last);
        var labels = new HashSet<int>();
        foreach (var e in examples)
        {
            var ids = e.InputIds;
            Assert.True(ids.Length <= 64);
            Assert.Equal(DataTestUtil.Cls, ids[0]);
            Assert.Equal(DataTestUtil.Sep, ids[e.SegmentALength + 1]);
            Assert.Equal(DataTestUtil.Sep, ids[^1]);
            Assert.Equal(3, ids.Count(i => i is DataTestUtil.Cls or DataTestUtil.Sep));
            var types = e.TokenTypeIds();
            Assert.All(types.Take(e.SegmentALength + 2), t => Assert.Equal(0, t));
            Assert.All(types.Skip(e.SegmentALength + 2), t => Assert.Equal(1, t));
            var a = string.Join(",", ids[1..(e.SegmentALength + 1)]);
            var b = string.Join(",", ids[(e.SegmentALength + 2)..^1]);
            Assert.True(runs.TryGetValue(a, out var ra), $"A [{a}] is not whole consecutive sentences of the document");
            Assert.True(runs.TryGetValue(b, out var rb), $"B [{b}] is not whole consecutive sentences of the document");
            var label = Assert.IsType<int>(e.NextSentenceLabel);
            labels.Add(label);
            // "Is next": B is the sentences right after A. (Random B comes from the same document here: the only one.)
            if (label == 0) Assert.Equal(ra.Last + 1, rb.First);
        }
        Assert.Equal(new[] { 0, 1 }, labels.Order());
    }

    [Fact]
    public void EmptySentencesAndDocumentsAreDropped()
    {
        var corpus = new InMemoryTokenizedCorpus([[Array.Empty<int>()], [new[] { 5 }, Array.Empty<int>(), new[] { 6 }], []]);
        Assert.Equal(1, corpus.DocumentCount);
        Assert.Equal(2, corpus.SentenceCount(0));
    }
}
