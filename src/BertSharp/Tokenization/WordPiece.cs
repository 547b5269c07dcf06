namespace BertSharp.Tokenization;

/// <summary>Greedy longest-match-first WordPiece (Google / HF), with <c>##</c> continuation pieces.</summary>
public sealed class WordPiece
{
    readonly Vocabulary _vocab;
    readonly string _unk;
    readonly int _maxChars;

    public WordPiece(Vocabulary vocab, string unkToken = "[UNK]", int maxInputCharsPerWord = 100)
    {
        _vocab = vocab;
        _unk = unkToken;
        _maxChars = maxInputCharsPerWord;
    }

    /// <summary>Appends the pieces of <paramref name="word"/> as (token, start, end) with offsets relative to the word.</summary>
    public void Tokenize(string word, List<(string Token, int Start, int End)> output)
    {
        // HF counts characters (code points) for max_input_chars_per_word.
        int chars = 0;
        foreach (var _ in word.EnumerateRunes()) chars++;
        if (chars > _maxChars) { output.Add((_unk, 0, word.Length)); return; }
        int before = output.Count;
        int start = 0;
        while (start < word.Length)
        {
            int end = word.Length;
            string? found = null;
            while (start < end)
            {
                var sub = start > 0 ? "##" + word[start..end] : word[start..end];
                if (_vocab.Contains(sub)) { found = sub; break; }
                end--;
                if (end > start && char.IsLowSurrogate(word[end])) end--;
            }
            if (found is null)
            {
                output.RemoveRange(before, output.Count - before);
                output.Add((_unk, 0, word.Length));
                return;
            }
            output.Add((found, start, end));
            start = end;
        }
    }
}
