using BertSharp.Data;
using BertSharp.Modeling;
using BertSharp.Training;
using BertSharp.Training.Pretraining;

namespace BertSharp.Tests.Training;

/// <summary>A tiny BERT and synthetic MLM/NSP examples for fast trainer tests.</summary>
static class TinyPretraining
{
    public const int Vocab = 64, Pad = 0, Cls = 2, Sep = 3, Mask = 4, FirstWord = 5;

    public static BertConfig Config(double dropout = 0.1) => new()
    {
        VocabSize = Vocab, HiddenSize = 32, NumHiddenLayers = 2, NumAttentionHeads = 2, IntermediateSize = 64,
        MaxPositionEmbeddings = 64, HiddenDropoutProb = dropout, AttentionProbsDropoutProb = dropout,
    };

    public static BertForPreTraining Model(BertConfig config, long seed = 1)
    {
        var m = new BertForPreTraining(config);
        ModelUtils.InitWeights(m, config, seed);
        return m;
    }

    /// <summary>Examples of varying length (so some batches are padded) with ~15% masked positions.</summary>
    public static List<PretrainingExample> Examples(int count, int seed, int minLen = 12, int maxLen = 24, bool sameLength = false)
    {
        var rng = new Random(seed);
        var list = new List<PretrainingExample>();
        for (int i = 0; i < count; i++)
        {
            int len = sameLength ? maxLen : rng.Next(minLen, maxLen + 1);
            int split = rng.Next(3, len - 2);
            var ids = new int[len];
            var seg = new int[len];
            ids[0] = Cls;
            // A learnable pattern: token t+1 follows token t (mod the word range), starting anywhere.
            int start = rng.Next(FirstWord, Vocab);
            for (int t = 1; t < len - 1; t++) ids[t] = FirstWord + (start - FirstWord + t) % (Vocab - FirstWord);
            ids[split] = Sep;
            ids[len - 1] = Sep;
            for (int t = split + 1; t < len; t++) seg[t] = 1;
            var candidates = Enumerable.Range(1, len - 2).Where(t => t != split).OrderBy(_ => rng.Next()).ToArray();
            int nMask = Math.Max(1, (int)Math.Round(len * 0.15));
            var pos = candidates.Take(nMask).Order().ToArray();
            var labels = pos.Select(p => ids[p]).ToArray();
            foreach (var p in pos) ids[p] = Mask;
            list.Add(new PretrainingExample { InputIds = ids, TokenTypeIds = seg, MaskedPositions = pos, MaskedLabels = labels, NextSentenceLabel = rng.Next(2) });
        }
        return list;
    }

    /// <summary>
    /// Sequences of a first-order Markov chain over the word ids in which every word has exactly two possible
    /// successors (fixed by <paramref name="chainSeed"/>): a masked word is predictable only from its neighbours, so
    /// held-out accuracy far above the 1/59 unigram level shows that the model learned to use context.
    /// </summary>
    public static List<PretrainingExample> MarkovExamples(int count, int chainSeed, int sampleSeed, int len = 16)
    {
        var chain = new Random(chainSeed);
        int words = Vocab - FirstWord;
        var successors = Enumerable.Range(0, words).Select(_ => new[] { chain.Next(words), chain.Next(words) }).ToArray();
        var rng = new Random(sampleSeed);
        var list = new List<PretrainingExample>();
        for (int i = 0; i < count; i++)
        {
            var ids = new int[len];
            ids[0] = Cls;
            ids[len - 1] = Sep;
            int w = rng.Next(words);
            for (int t = 1; t < len - 1; t++) { ids[t] = FirstWord + w; w = successors[w][rng.Next(2)]; }
            var pos = Enumerable.Range(1, len - 2).OrderBy(_ => rng.Next()).Take(2).Order().ToArray();
            var labels = pos.Select(p => ids[p]).ToArray();
            foreach (var p in pos) ids[p] = Mask;
            list.Add(new PretrainingExample { InputIds = ids, TokenTypeIds = new int[len], MaskedPositions = pos, MaskedLabels = labels });
        }
        return list;
    }

    public static ShuffledBatchSource<PretrainingExample, PretrainingBatch> Source(IReadOnlyList<PretrainingExample> examples, int batch, long seed, bool shuffle = true) =>
        new(examples, batch, items => PretrainingCollator.Collate(items, Pad), seed, shuffle);

    public static string TempDir(string name)
    {
        var d = Path.Combine(Path.GetTempPath(), "bertsharp-train-tests", name + "-" + Guid.NewGuid().ToString("N")[..8]);
        Directory.CreateDirectory(d);
        return d;
    }

    public static TrainConfig Train(long steps, int batch = 8, double lr = 1e-3) => new()
    {
        TotalSteps = steps, BatchSize = batch, LearningRate = lr, WarmupProportion = 0.1, Threads = 1, Seed = 7,
        LogEvery = 5, TensorBoard = false, Plots = false,
    };
}
