using System.Text;

namespace BertSharp.Tokenization;

/// <summary>
/// The bottom-up WordPiece learner of Google / TF-Text (<c>wordpiece_tokenizer_learner_lib</c>), written for speed:
/// every candidate subword of every learned word is given an id once, so the refinement passes and the threshold
/// search run on integer arrays without hashing.
/// </summary>
/// <remarks>
/// For a threshold t, <c>LearnWithThreshold</c> does:
/// pass 0: count every substring of every word (weighted by word count; "##" form when it does not start the word);
/// pass k &gt; 0: split each word greedily (longest match first) with the current vocabulary and count, for each piece start,
/// the substrings from that start to every later position. After each pass the candidates are visited longest first; a
/// candidate used at least t times is kept, and its count is subtracted from all its prefixes (they would be covered by
/// it). The vocabulary of the next pass is the kept set plus the alphabet. A binary search then finds the largest t whose
/// final set fills the vocabulary; the surplus, least-used subwords are dropped so that the size is exact.
/// </remarks>
sealed class WordPieceTrainerLearner
{
    readonly WordPieceTrainerOptions _o;
    readonly IProgress<WordPieceTrainerProgress>? _progress;
    readonly CancellationToken _ct;
    readonly IReadOnlyDictionary<string, long> _wordCounts;

    // Words learned from, with counts.
    string[] _words = [];
    long[] _wordCount = [];
    int[] _wordBase = [];          // offset of each word's substring-id table in _subIds
    int[] _subIds = [];            // per word: for each start s (row), ids of word[s..e] for e = s+1..min(L, s+M); -1 where e splits a surrogate pair

    // Candidates (all distinct substrings, "##"-prefixed when not word-initial).
    string[] _tokens = [];
    int[] _parent = [];            // id of the same-start prefix one character shorter, -1 for a single character
    int[] _longestFirst = [];      // ids ordered by decreasing length
    long[] _pass0 = [];            // pass-0 counts (independent of the threshold)
    bool[] _isAlphabet = [];       // single characters: always in the vocabulary

    public WordPieceTrainerLearner(IReadOnlyDictionary<string, long> wordCounts, WordPieceTrainerOptions options, IProgress<WordPieceTrainerProgress>? progress, CancellationToken ct)
    {
        _wordCounts = wordCounts;
        _o = options;
        _progress = progress;
        _ct = ct;
    }

    public WordPieceTrainingResult Run()
    {
        long totalWords = 0;
        foreach (var n in _wordCounts.Values) totalWords += n;
        var alphabet = ChooseAlphabet();
        int fixedCount = _o.FixedTokenCount;
        int alphabetLines = 2 * alphabet.Count;
        if (_o.VocabSize < fixedCount + alphabetLines)
            throw new ArgumentException(
                $"--vocab-size {_o.VocabSize} is smaller than the {fixedCount} special/reserved tokens + {alphabetLines} alphabet tokens " +
                $"({alphabet.Count} characters and their ## forms); raise --vocab-size or lower --limit-alphabet");
        int slots = _o.VocabSize - fixedCount - alphabetLines;

        SelectWords(alphabet);
        BuildCandidates();
        _ct.ThrowIfCancellationRequested();

        // Binary search for the largest threshold t >= min-frequency whose learned set has at least `slots` subwords.
        var cache = new Dictionary<long, List<(int Id, long Count)>>();
        long lo = _o.MinFrequency, hi = 1;
        foreach (var c in _pass0) hi = Math.Max(hi, c);
        hi = Math.Max(hi + 1, lo + 1); // at hi nothing is learned
        int maxSteps = 1 + (int)Math.Ceiling(Math.Log2(Math.Max(2, hi - lo + 1)));
        int step = 0;
        List<(int Id, long Count)> LearnAt(long t)
        {
            if (cache.TryGetValue(t, out var hit)) return hit;
            _ct.ThrowIfCancellationRequested();
            var learned = LearnWithThreshold(t);
            cache[t] = learned;
            step++;
            _progress?.Report(new(WordPieceTrainingStage.Learning, Math.Min(step, maxSteps), maxSteps, $"t={t:N0}: {learned.Count:N0}"));
            return learned;
        }

        var atLo = slots == 0 ? [] : LearnAt(lo);
        bool filled = atLo.Count >= slots;
        long threshold = lo;
        if (filled && slots > 0)
        {
            while (hi - lo > 1)
            {
                long mid = lo + (hi - lo) / 2;
                if (LearnAt(mid).Count >= slots) lo = mid; else hi = mid;
            }
            threshold = lo;
        }
        var chosen = cache.TryGetValue(threshold, out var ch) ? ch : [];

        // Lines: specials, reserve, alphabet (chars, then ## chars), learned subwords by use count.
        var lines = new List<string>(_o.VocabSize);
        lines.AddRange(_o.SpecialTokens);
        for (int i = 0; i < _o.ReservedUnused; i++) lines.Add($"[unused{i}]");
        var taken = new HashSet<string>(lines, StringComparer.Ordinal);
        foreach (var c in alphabet.Order(StringComparer.Ordinal)) if (taken.Add(c)) lines.Add(c);
        foreach (var c in alphabet.Order(StringComparer.Ordinal)) if (taken.Add("##" + c)) lines.Add("##" + c);
        var ranked = chosen.OrderByDescending(x => x.Count).ThenBy(x => _tokens[x.Id], StringComparer.Ordinal);
        int learnedCount = 0;
        foreach (var (id, _) in ranked)
        {
            if (lines.Count >= _o.VocabSize) break;
            if (taken.Add(_tokens[id])) { lines.Add(_tokens[id]); learnedCount++; }
        }
        filled = lines.Count == _o.VocabSize;
        _progress?.Report(new(WordPieceTrainingStage.Done, maxSteps, maxSteps, $"{lines.Count:N0} tokens, threshold {threshold:N0}"));
        return new WordPieceTrainingResult
        {
            Vocabulary = new Vocabulary(lines),
            Threshold = threshold,
            TotalWords = totalWords,
            DistinctWords = _wordCounts.Count,
            LearnedFromWords = _words.Length,
            AlphabetSize = alphabet.Count,
            LearnedTokens = learnedCount,
            Filled = filled,
            RequestedSize = _o.VocabSize,
        };
    }

    /// <summary>The <see cref="WordPieceTrainerOptions.LimitAlphabet"/> most frequent characters (code points), weighted by word counts.</summary>
    List<string> ChooseAlphabet()
    {
        var chars = new Dictionary<int, long>();
        foreach (var (word, n) in _wordCounts)
            foreach (var r in word.EnumerateRunes())
                chars[r.Value] = chars.GetValueOrDefault(r.Value) + n;
        return chars
            .Select(kv => (Text: char.ConvertFromUtf32(kv.Key), Count: kv.Value))
            .OrderByDescending(x => x.Count).ThenBy(x => x.Text, StringComparer.Ordinal)
            .Take(_o.LimitAlphabet)
            .Select(x => x.Text)
            .ToList();
    }

    /// <summary>Keeps the words made only of alphabet characters and not too long; the most frequent first (deterministic order).</summary>
    void SelectWords(List<string> alphabet)
    {
        var allowed = new HashSet<int>(alphabet.Select(a => char.ConvertToUtf32(a, 0)));
        var kept = new List<(string Word, long Count)>();
        foreach (var (word, n) in _wordCounts)
        {
            if (word.Length == 0) continue;
            int chars = 0;
            bool ok = true;
            foreach (var r in word.EnumerateRunes())
            {
                if (++chars > _o.MaxInputCharsPerWord || !allowed.Contains(r.Value)) { ok = false; break; }
            }
            if (ok) kept.Add((word, n));
        }
        kept.Sort((a, b) => a.Count != b.Count ? b.Count.CompareTo(a.Count) : string.CompareOrdinal(a.Word, b.Word));
        if (kept.Count > _o.MaxWords) kept.RemoveRange(_o.MaxWords, kept.Count - _o.MaxWords);
        _words = kept.Select(k => k.Word).ToArray();
        _wordCount = kept.Select(k => k.Count).ToArray();
    }

    int RowLength(int length, int start) => Math.Min(length - start, _o.MaxTokenLength);

    /// <summary>Offset of row <paramref name="start"/> within a word's substring table.</summary>
    int RowOffset(int length, int start)
    {
        int m = _o.MaxTokenLength;
        int full = Math.Max(0, Math.Min(start, length - m + 1)); // rows s < start with L - s >= m have m entries
        long rest = (long)(start - full) * length - (long)(full + start - 1) * (start - full) / 2;
        return (int)((long)full * m + rest);
    }

    /// <summary>Assigns an id to every distinct candidate and fills the per-word tables and the pass-0 counts.</summary>
    void BuildCandidates()
    {
        _wordBase = new int[_words.Length + 1];
        long total = 0;
        for (int w = 0; w < _words.Length; w++)
        {
            _wordBase[w] = (int)total;
            total += RowOffset(_words[w].Length, _words[w].Length);
            if (total > Array.MaxLength)
                throw new InvalidOperationException($"too many subword candidates; lower MaxWords (now {_o.MaxWords}) or MaxTokenLength");
        }
        _wordBase[_words.Length] = (int)total;
        _subIds = new int[total];

        var index = new Dictionary<string, int>(StringComparer.Ordinal);
        var lookup = index.GetAlternateLookup<ReadOnlySpan<char>>();
        var tokens = new List<string>();
        var parent = new List<int>();
        var length = new List<int>();
        var pass0 = new List<long>();
        var key = new char[2 + Math.Max(_o.MaxTokenLength, 1)];
        key[0] = key[1] = '#';
        for (int w = 0; w < _words.Length; w++)
        {
            if ((w & 4095) == 0) _ct.ThrowIfCancellationRequested();
            string word = _words[w];
            long n = _wordCount[w];
            int L = word.Length;
            int pos = _wordBase[w];
            for (int s = 0; s < L; s++)
            {
                int row = RowLength(L, s);
                if (char.IsLowSurrogate(word[s]) && s > 0 && char.IsHighSurrogate(word[s - 1]))
                {
                    // not a character boundary: an unused row
                    _subIds.AsSpan(pos, row).Fill(-1);
                    pos += row;
                    continue;
                }
                int prefix = s == 0 ? 2 : 0; // key[prefix..] is the token: "##" kept only for non-initial pieces
                word.AsSpan(s, row).CopyTo(key.AsSpan(2));
                int prev = -1;
                for (int k = 1; k <= row; k++, pos++)
                {
                    int e = s + k;
                    if (e < L && char.IsLowSurrogate(word[e]) && char.IsHighSurrogate(word[e - 1])) { _subIds[pos] = -1; continue; }
                    var span = key.AsSpan(prefix, 2 - prefix + k);
                    if (!lookup.TryGetValue(span, out int id))
                    {
                        id = tokens.Count;
                        var text = new string(span);
                        index.Add(text, id);
                        tokens.Add(text);
                        parent.Add(prev);
                        length.Add(k);
                        pass0.Add(0);
                    }
                    pass0[id] += n;
                    _subIds[pos] = id;
                    prev = id;
                }
            }
        }
        _tokens = tokens.ToArray();
        _parent = parent.ToArray();
        _pass0 = pass0.ToArray();
        _isAlphabet = new bool[_tokens.Length];
        for (int i = 0; i < _tokens.Length; i++) _isAlphabet[i] = _parent[i] < 0;

        // Longest first (counting sort on length; ties by id, which is deterministic).
        var byLength = new int[_o.MaxTokenLength + 2];
        foreach (var l in length) byLength[l]++;
        var start = new int[byLength.Length];
        for (int l = byLength.Length - 2, acc = 0; l >= 0; l--) { start[l] = acc; acc += byLength[l]; }
        _longestFirst = new int[_tokens.Length];
        for (int i = 0; i < _tokens.Length; i++) _longestFirst[start[length[i]]++] = i;
    }

    /// <summary>One threshold: pass 0 from the cached counts, then refinement passes; returns the kept non-alphabet subwords with their counts.</summary>
    List<(int Id, long Count)> LearnWithThreshold(long threshold)
    {
        var counts = (long[])_pass0.Clone();
        var inVocab = new bool[_tokens.Length];
        var kept = Select(counts, threshold, inVocab);
        var splits = new List<int>();
        for (int pass = 1; pass < _o.Iterations; pass++)
        {
            Array.Clear(counts);
            for (int w = 0; w < _words.Length; w++)
            {
                if ((w & 16383) == 0) _ct.ThrowIfCancellationRequested();
                if (!GreedySplit(w, inVocab, splits)) continue;
                string word = _words[w];
                int L = word.Length, b = _wordBase[w];
                long n = _wordCount[w];
                int s = 0;
                foreach (var end in splits)
                {
                    int off = b + RowOffset(L, s), row = RowLength(L, s);
                    for (int k = 0; k < row; k++)
                    {
                        int id = _subIds[off + k];
                        if (id >= 0) counts[id] += n;
                    }
                    s = end;
                }
            }
            Array.Clear(inVocab);
            kept = Select(counts, threshold, inVocab);
        }
        return kept;
    }

    /// <summary>Keeps candidates used at least <paramref name="threshold"/> times, longest first, discounting their prefixes.</summary>
    List<(int Id, long Count)> Select(long[] counts, long threshold, bool[] inVocab)
    {
        var kept = new List<(int, long)>();
        foreach (int id in _longestFirst)
        {
            long c = counts[id];
            if (c < threshold) continue;
            inVocab[id] = true;
            if (!_isAlphabet[id]) kept.Add((id, c));
            for (int p = _parent[id]; p >= 0; p = _parent[p]) counts[p] -= c;
        }
        for (int id = 0; id < _tokens.Length; id++) if (_isAlphabet[id]) inVocab[id] = true;
        return kept;
    }

    /// <summary>Greedy longest-match-first split of word <paramref name="w"/>: the end of each piece; false when impossible.</summary>
    bool GreedySplit(int w, bool[] inVocab, List<int> ends)
    {
        ends.Clear();
        string word = _words[w];
        int L = word.Length, b = _wordBase[w];
        int s = 0;
        while (s < L)
        {
            int off = b + RowOffset(L, s);
            int k = RowLength(L, s) - 1;
            while (k >= 0)
            {
                int id = _subIds[off + k];
                if (id >= 0 && inVocab[id]) break;
                k--;
            }
            if (k < 0) return false;
            s += k + 1;
            ends.Add(s);
        }
        return true;
    }
}
