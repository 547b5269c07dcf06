using System.Globalization;

namespace BertSharp.Data.Tasks;

/// <summary>Which CoNLL-2003 column becomes the tag.</summary>
public enum ConllColumn
{
    /// <summary>The NER column (4th), IOB tags.</summary>
    Ner,
    /// <summary>The PTB POS column (2nd).</summary>
    Pos,
    /// <summary>The chunk column (3rd).</summary>
    Chunk,
}

/// <summary>Which CoNLL-U column becomes the tag.</summary>
public enum UdTagColumn
{
    /// <summary>Universal POS tags (4th column).</summary>
    Upos,
    /// <summary>Language-specific POS tags (5th column; PTB tags for English-EWT).</summary>
    Xpos,
}

/// <summary>
/// CoNLL-2003: one <c>token POS chunk NER</c> line per word (space-separated), a blank line between sentences,
/// optional <c>-DOCSTART-</c> lines (skipped; they also end a sentence).
/// </summary>
public static class Conll2003Reader
{
    public static TokenDataset Read(string path, ConllColumn column = ConllColumn.Ner)
    {
        var sentences = new List<TokenExample>();
        var words = new List<string>();
        var tags = new List<string>();
        int start = 0;
        void Flush()
        {
            if (words.Count > 0)
                sentences.Add(new TokenExample(sentences.Count.ToString(CultureInfo.InvariantCulture), words.ToArray(), tags.ToArray(), start));
            words.Clear();
            tags.Clear();
        }
        int col = column switch { ConllColumn.Pos => 1, ConllColumn.Chunk => 2, _ => 3 };
        foreach (var (n, text) in DelimitedText.Lines(path))
        {
            if (string.IsNullOrWhiteSpace(text)) { Flush(); continue; }
            var f = text.Split([' ', '\t'], StringSplitOptions.RemoveEmptyEntries);
            if (f[0] == "-DOCSTART-") { Flush(); continue; }
            if (f.Length != 4)
                throw new FormatException($"{path}:{n}: expected 4 space-separated columns (token POS chunk NER), found {f.Length}");
            if (column == ConllColumn.Ner && !IsIobTag(f[3]))
                throw new FormatException($"{path}:{n}/NER: expected an IOB tag (O, B-TYPE or I-TYPE); found '{f[3]}'");
            if (words.Count == 0) start = n;
            words.Add(f[0]);
            tags.Add(f[col]);
        }
        Flush();
        return new TokenDataset(path, sentences);
    }

    /// <summary>True for <c>O</c>, <c>B-X</c> and <c>I-X</c> with a non-empty type.</summary>
    public static bool IsIobTag(string tag) => tag == "O" || (tag.Length > 2 && (tag[0] == 'B' || tag[0] == 'I') && tag[1] == '-');
}

/// <summary>
/// CoNLL-U (Universal Dependencies): ten tab-separated fields per word line, <c>#</c> comment lines (the
/// <c># sent_id = …</c> becomes the example id), multi-word token ranges (<c>1-2</c>) and empty nodes (<c>1.1</c>)
/// skipped, a blank line after each sentence.
/// </summary>
public static class ConllUReader
{
    public static TokenDataset Read(string path, UdTagColumn column = UdTagColumn.Upos)
    {
        var sentences = new List<TokenExample>();
        var words = new List<string>();
        var tags = new List<string>();
        string? sentId = null;
        int start = 0, expectedId = 1;
        void Flush()
        {
            if (words.Count > 0)
                sentences.Add(new TokenExample(sentId ?? sentences.Count.ToString(CultureInfo.InvariantCulture), words.ToArray(), tags.ToArray(), start));
            words.Clear();
            tags.Clear();
            sentId = null;
            start = 0;
            expectedId = 1;
        }
        int col = column == UdTagColumn.Xpos ? 4 : 3;
        foreach (var (n, text) in DelimitedText.Lines(path))
        {
            if (text.Length == 0 || string.IsNullOrWhiteSpace(text)) { Flush(); continue; }
            if (text[0] == '#')
            {
                if (words.Count == 0 && start == 0) start = n;
                const string key = "# sent_id = ";
                if (text.StartsWith(key, StringComparison.Ordinal)) sentId = text[key.Length..].Trim();
                continue;
            }
            var f = text.Split('\t');
            if (f.Length != 10)
                throw new FormatException($"{path}:{n}: expected 10 tab-separated CoNLL-U fields (ID FORM LEMMA UPOS XPOS FEATS HEAD DEPREL DEPS MISC), found {f.Length}");
            if (start == 0) start = n;
            var id = f[0];
            if (id.Contains('-') || id.Contains('.'))
            {
                var parts = id.Split(id.Contains('-') ? '-' : '.');
                if (parts.Length != 2 || !parts.All(p => int.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out _)))
                    throw new FormatException($"{path}:{n}/ID: expected a word id, a range like 1-2 or an empty node like 1.1; found '{id}'");
                continue;
            }
            if (!int.TryParse(id, NumberStyles.None, CultureInfo.InvariantCulture, out var k))
                throw new FormatException($"{path}:{n}/ID: expected a word id, a range like 1-2 or an empty node like 1.1; found '{id}'");
            if (k != expectedId)
                throw new FormatException($"{path}:{n}/ID: expected word {expectedId}; found {k} (is a blank line missing between sentences?)");
            expectedId++;
            if (f[col].Length == 0)
                throw new FormatException($"{path}:{n}/{(col == 3 ? "UPOS" : "XPOS")}: empty tag");
            words.Add(f[1]);
            tags.Add(f[col]);
        }
        Flush();
        return new TokenDataset(path, sentences);
    }
}
