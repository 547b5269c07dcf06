using System.Collections.Concurrent;
using System.Runtime.InteropServices;
using BertSharp.Data;

namespace BertSharp.Tokenization;

/// <summary>Options for <see cref="WordPieceTrainer"/> (the <c>bert vocab train</c> flags).</summary>
public sealed record WordPieceTrainerOptions
{
    /// <summary>Exact number of lines of the vocabulary (specials, reserve and alphabet included).</summary>
    public int VocabSize { get; init; } = 30522;
    /// <summary>Lowercase while pre-tokenizing (an "uncased" vocabulary); also strips accents unless <see cref="StripAccents"/> says otherwise.</summary>
    public bool Lowercase { get; init; }
    /// <summary>Null = follow <see cref="Lowercase"/> (Hugging Face semantics).</summary>
    public bool? StripAccents { get; init; }
    /// <summary>A learned subword (anything but the alphabet) must be used at least this many times by the corpus words.</summary>
    public int MinFrequency { get; init; } = 2;
    /// <summary>Keep at most this many distinct characters (the most frequent); words with other characters are not learned from.</summary>
    public int LimitAlphabet { get; init; } = 1000;
    /// <summary>Number of <c>[unusedN]</c> placeholder lines reserved after the special tokens.</summary>
    public int ReservedUnused { get; init; }
    /// <summary>Special tokens, written first in this order.</summary>
    public IReadOnlyList<string> SpecialTokens { get; init; } = DefaultSpecialTokens;
    /// <summary>Refinement passes per threshold of the bottom-up learner (TF-Text's num_iterations).</summary>
    public int Iterations { get; init; } = 4;
    /// <summary>Longest subword considered, in UTF-16 chars (TF-Text's max_token_length).</summary>
    public int MaxTokenLength { get; init; } = 50;
    /// <summary>Words longer than this (in characters) are not learned from: the tokenizer maps them to [UNK] anyway.</summary>
    public int MaxInputCharsPerWord { get; init; } = 100;
    /// <summary>Learn from at most this many distinct words (the most frequent), bounding the learner's memory.</summary>
    public int MaxWords { get; init; } = 1_000_000;
    /// <summary>Worker threads for pre-tokenizing and counting; 0 = one per core.</summary>
    public int Threads { get; init; }

    public static IReadOnlyList<string> DefaultSpecialTokens { get; } = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"];

    /// <summary>The pre-tokenizer settings matching these options (use them for the tokenizer that loads the vocabulary).</summary>
    public BertTokenizerOptions TokenizerOptions => new() { DoLowerCase = Lowercase, StripAccents = StripAccents };

    /// <summary>Number of lines before the alphabet: specials plus the [unused] reserve.</summary>
    public int FixedTokenCount => SpecialTokens.Count + ReservedUnused;

    /// <summary>Throws <see cref="ArgumentException"/> with a one-line reason when the options cannot work.</summary>
    public void Validate()
    {
        if (SpecialTokens.Count == 0) throw new ArgumentException("at least one special token is required");
        if (SpecialTokens.Distinct(StringComparer.Ordinal).Count() != SpecialTokens.Count) throw new ArgumentException("special tokens must be distinct");
        if (ReservedUnused < 0) throw new ArgumentException($"--reserved-unused must be >= 0 (got {ReservedUnused})");
        if (MinFrequency < 1) throw new ArgumentException($"--min-frequency must be >= 1 (got {MinFrequency})");
        if (LimitAlphabet < 1) throw new ArgumentException($"--limit-alphabet must be >= 1 (got {LimitAlphabet})");
        if (Iterations < 1) throw new ArgumentException($"iterations must be >= 1 (got {Iterations})");
        if (MaxTokenLength < 1) throw new ArgumentException($"max token length must be >= 1 (got {MaxTokenLength})");
        if (MaxInputCharsPerWord < 1) throw new ArgumentException($"max input chars per word must be >= 1 (got {MaxInputCharsPerWord})");
        if (MaxWords < 1) throw new ArgumentException($"max words must be >= 1 (got {MaxWords})");
        if (Threads < 0) throw new ArgumentException($"threads must be >= 0 (got {Threads})");
        if (VocabSize <= FixedTokenCount)
            throw new ArgumentException($"--vocab-size {VocabSize} leaves no room for an alphabet: {SpecialTokens.Count} special tokens + {ReservedUnused} reserved already take {FixedTokenCount}");
    }
}

public enum WordPieceTrainingStage { Counting, Learning, Done }

/// <summary>
/// A progress report. Counting: <see cref="Done"/>/<see cref="Total"/> are bytes read (Total = 0 when unknown, then Done
/// counts documents). Learning: threshold-search steps done / an upper bound of steps.
/// </summary>
public readonly record struct WordPieceTrainerProgress(WordPieceTrainingStage Stage, long Done, long Total, string Message);

/// <summary>What training produced, with the figures worth reporting.</summary>
public sealed record WordPieceTrainingResult
{
    public required Vocabulary Vocabulary { get; init; }
    /// <summary>The count threshold the search settled on (every learned subword is used at least this often).</summary>
    public required long Threshold { get; init; }
    /// <summary>Words seen in the corpus (after pre-tokenization) and distinct words.</summary>
    public required long TotalWords { get; init; }
    public required int DistinctWords { get; init; }
    /// <summary>Distinct words the learner used (within the alphabet and length limits, top <see cref="WordPieceTrainerOptions.MaxWords"/>).</summary>
    public required int LearnedFromWords { get; init; }
    /// <summary>Characters in the alphabet (each gives two lines: c and ##c).</summary>
    public required int AlphabetSize { get; init; }
    public required int LearnedTokens { get; init; }
    /// <summary>False when the corpus could not fill <see cref="WordPieceTrainerOptions.VocabSize"/> lines.</summary>
    public required bool Filled { get; init; }
    public required int RequestedSize { get; init; }

    /// <summary>The warning every caller prints when the corpus could not fill the requested size (null when it did).</summary>
    public string? ShortfallWarning(int minFrequency) => Filled ? null :
        $"the corpus could only fill {Vocabulary.Count:N0} of the {RequestedSize:N0} requested tokens " +
        $"(every subword used at least {minFrequency} times is in)";
}

/// <summary>
/// Learns a WordPiece vocabulary with Google / TF-Text's bottom-up algorithm (the <c>bert_vocab_from_dataset</c> learner):
/// count words, then search the count threshold whose iteratively refined subword candidates fill the vocabulary.
/// See docs/vocab.md.
/// </summary>
public static class WordPieceTrainer
{
    /// <summary>Counts, learns and returns the vocabulary (see <see cref="Learn"/> for the details and figures).</summary>
    public static Vocabulary Train(IEnumerable<string> texts, WordPieceTrainerOptions options, IProgress<WordPieceTrainerProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        var counts = CountWords(texts, options, progress, cancellationToken);
        return Learn(counts, options, progress, cancellationToken).Vocabulary;
    }

    /// <summary>Streams <paramref name="paths"/> (text or JSONL), counts words and learns a vocabulary.</summary>
    /// <exception cref="FormatException">the files hold no words (the message names them).</exception>
    public static WordPieceTrainingResult TrainFiles(IReadOnlyList<string> paths, TextCorpusOptions corpus, WordPieceTrainerOptions options, IProgress<WordPieceTrainerProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        paths = TextCorpus.Files(paths, corpus.Format);
        long total = TextCorpus.TotalBytes(paths);
        progress?.Report(new(WordPieceTrainingStage.Counting, 0, total, "counting words"));
        var docs = TextCorpus.Read(paths, corpus, bytes => progress?.Report(new(WordPieceTrainingStage.Counting, bytes, total, "counting words")));
        var counts = CountWordsCore(docs, options, null, cancellationToken);
        progress?.Report(new(WordPieceTrainingStage.Counting, total, total, $"{counts.Count:N0} distinct words"));
        if (counts.Count == 0)
            throw new FormatException($"{string.Join(", ", paths)}: the corpus has no words to learn a vocabulary from (empty" +
                                      (corpus.Format == CorpusFormat.Jsonl ? $", blank, or no text in field '{corpus.Field}')" : " or blank lines only)"));
        return Learn(counts, options, progress, cancellationToken);
    }

    /// <summary>
    /// Pre-tokenizes every text with <see cref="BasicTokenizer"/> and counts the words, in parallel: memory grows with the
    /// number of distinct words, not with the corpus. Progress: Done = documents read.
    /// </summary>
    public static Dictionary<string, long> CountWords(IEnumerable<string> texts, WordPieceTrainerOptions options, IProgress<WordPieceTrainerProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        return CountWordsCore(texts, options, progress, cancellationToken);
    }

    static Dictionary<string, long> CountWordsCore(IEnumerable<string> texts, WordPieceTrainerOptions options, IProgress<WordPieceTrainerProgress>? progress, CancellationToken cancellationToken)
    {
        int threads = options.Threads > 0 ? options.Threads : Math.Max(1, Environment.ProcessorCount);
        var tokenizerOptions = options.TokenizerOptions;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
        using var queue = new BlockingCollection<List<string>>(boundedCapacity: threads * 4);
        var workers = new Task<Dictionary<string, long>>[threads];
        for (int w = 0; w < threads; w++)
            workers[w] = Task.Factory.StartNew(() =>
            {
                var basic = new BasicTokenizer(tokenizerOptions);
                var local = new Dictionary<string, long>(StringComparer.Ordinal);
                try
                {
                    foreach (var batch in queue.GetConsumingEnumerable(cts.Token))
                        foreach (var text in batch)
                            foreach (var word in basic.Split(text))
                                CollectionsMarshal.GetValueRefOrAddDefault(local, word.Text, out _)++;
                }
                catch
                {
                    cts.Cancel(); // unblock the producer
                    throw;
                }
                return local;
            }, cts.Token, TaskCreationOptions.LongRunning, TaskScheduler.Default);

        long docs = 0;
        try
        {
            var batch = new List<string>(64);
            int batchChars = 0;
            foreach (var text in texts)
            {
                batch.Add(text);
                batchChars += text.Length;
                docs++;
                if (batchChars >= 1 << 17 || batch.Count >= 1024)
                {
                    queue.Add(batch, cts.Token);
                    batch = new List<string>(64);
                    batchChars = 0;
                    progress?.Report(new(WordPieceTrainingStage.Counting, docs, 0, "counting words"));
                }
            }
            if (batch.Count > 0) queue.Add(batch, cts.Token);
        }
        catch (OperationCanceledException) when (!cancellationToken.IsCancellationRequested)
        {
            // a worker failed: its exception is rethrown below
        }
        finally
        {
            queue.CompleteAdding();
            try { Task.WaitAll(workers); }
            catch (AggregateException e) when (!cancellationToken.IsCancellationRequested)
            {
                var first = e.Flatten().InnerExceptions.FirstOrDefault(x => x is not OperationCanceledException);
                if (first is not null) System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(first);
            }
        }
        cancellationToken.ThrowIfCancellationRequested();

        // Merge into the largest dictionary (the order of merging does not change the sums).
        var parts = workers.Select(w => w.Result).OrderByDescending(d => d.Count).ToArray();
        var all = parts[0];
        foreach (var part in parts.Skip(1))
            foreach (var (word, n) in part)
                CollectionsMarshal.GetValueRefOrAddDefault(all, word, out _) += n;
        progress?.Report(new(WordPieceTrainingStage.Counting, docs, 0, $"{all.Count:N0} distinct words"));
        return all;
    }

    /// <summary>
    /// Learns the vocabulary from word counts. Lines: special tokens, [unused0..R-1], the alphabet (characters then their
    /// ## forms, ordinal order), then learned subwords by decreasing use count (ties: ordinal). Exactly
    /// <see cref="WordPieceTrainerOptions.VocabSize"/> lines unless the corpus cannot fill it (<see cref="WordPieceTrainingResult.Filled"/>).
    /// </summary>
    /// <exception cref="ArgumentException">no word has a positive count (an empty corpus).</exception>
    public static WordPieceTrainingResult Learn(IReadOnlyDictionary<string, long> wordCounts, WordPieceTrainerOptions options, IProgress<WordPieceTrainerProgress>? progress = null, CancellationToken cancellationToken = default)
    {
        options.Validate();
        ArgumentNullException.ThrowIfNull(wordCounts);
        // An empty corpus would give a vocabulary of the special tokens alone: useless, and a sign of the wrong input.
        if (!wordCounts.Values.Any(n => n > 0))
            throw new ArgumentException("no words to learn a vocabulary from: the corpus is empty", nameof(wordCounts));
        return new WordPieceTrainerLearner(wordCounts, options, progress, cancellationToken).Run();
    }

    /// <summary>Writes the vocabulary to <paramref name="path"/> atomically (temp file in the same folder, then rename).</summary>
    public static void Save(Vocabulary vocabulary, string path)
    {
        var full = Path.GetFullPath(path);
        var dir = Path.GetDirectoryName(full);
        if (!string.IsNullOrEmpty(dir) && !Directory.Exists(dir)) throw new DirectoryNotFoundException($"output folder not found: {dir}");
        var tmp = $"{full}.{Environment.ProcessId}.tmp";
        try
        {
            File.WriteAllLines(tmp, vocabulary.Tokens, new System.Text.UTF8Encoding(false));
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
    }
}
