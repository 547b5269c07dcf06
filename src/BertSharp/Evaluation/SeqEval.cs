namespace BertSharp.Evaluation;

/// <summary>An entity: its type and its inclusive word span in sentence <see cref="Sentence"/>.</summary>
public readonly record struct Entity(int Sentence, string Type, int Start, int End);

/// <summary>How tags are turned into entities.</summary>
public enum SeqEvalMode
{
    /// <summary>
    /// seqeval's default (and conlleval's): one set of rules for IOB1, IOB2 (and IOE/IOBES) input. A chunk starts at
    /// B-/S-, at an I-/E- after O, E- or S-, and wherever the type changes; it ends before O, B-, S-, a type change,
    /// or after E-/S-. So an I- after O starts an entity (IOB1 style) and B-X I-Y is two entities.
    /// </summary>
    Default,
    /// <summary>
    /// seqeval <c>mode='strict', scheme=IOB2</c>: an entity is B-X followed by I-X*; an I- that does not continue an
    /// entity of its type belongs to no entity.
    /// </summary>
    StrictIob2,
}

/// <summary>Precision/recall/F1 with the number of gold entities (support).</summary>
public readonly record struct PrfScore(double Precision, double Recall, double F1, int Support, int Predicted, int Correct);

/// <summary>Micro-averaged entity scores and per-type scores.</summary>
public sealed record EntityScores(PrfScore Micro, IReadOnlyDictionary<string, PrfScore> PerType)
{
    public double F1 => Micro.F1;
    public double Precision => Micro.Precision;
    public double Recall => Micro.Recall;
}

/// <summary>
/// Entity-level evaluation with seqeval semantics: an entity counts as correct only when its type and its exact span
/// match a gold entity; precision = correct / predicted entities, recall = correct / gold entities, micro-averaged over
/// all types (sentences never merge: each entity carries its sentence index).
/// </summary>
public static class SeqEval
{
    /// <summary>The entities of one tag sequence.</summary>
    public static List<Entity> GetEntities(IReadOnlyList<string> tags, SeqEvalMode mode = SeqEvalMode.Default, int sentence = 0) =>
        mode == SeqEvalMode.StrictIob2 ? StrictIob2Entities(tags, sentence) : DefaultEntities(tags, sentence);

    static (char Tag, string Type) Split(string chunk)
    {
        if (chunk.Length == 0) return ('O', "_");
        char tag = chunk[0];
        var rest = chunk[1..];
        int dash = rest.IndexOf('-');
        var type = dash >= 0 ? rest[(dash + 1)..] : rest;
        return (tag, type.Length == 0 ? "_" : type);
    }

    static List<Entity> DefaultEntities(IReadOnlyList<string> tags, int sentence)
    {
        var chunks = new List<Entity>();
        char prevTag = 'O';
        string prevType = "";
        int begin = 0;
        for (int i = 0; i <= tags.Count; i++)
        {
            var (tag, type) = i < tags.Count ? Split(tags[i]) : ('O', "_");
            if (EndOfChunk(prevTag, tag, prevType, type)) chunks.Add(new Entity(sentence, prevType, begin, i - 1));
            if (StartOfChunk(prevTag, tag, prevType, type)) begin = i;
            prevTag = tag;
            prevType = type;
        }
        return chunks;
    }

    static bool EndOfChunk(char prevTag, char tag, string prevType, string type) =>
        prevTag is 'E' or 'S'
        || (prevTag is 'B' or 'I' && tag is 'B' or 'S' or 'O')
        || (prevTag != 'O' && prevTag != '.' && prevType != type);

    static bool StartOfChunk(char prevTag, char tag, string prevType, string type) =>
        tag is 'B' or 'S'
        || (prevTag is 'E' or 'S' or 'O' && tag is 'E' or 'I')
        || (tag != 'O' && tag != '.' && prevType != type);

    static List<Entity> StrictIob2Entities(IReadOnlyList<string> tags, int sentence)
    {
        var chunks = new List<Entity>();
        string? open = null;
        int begin = 0;
        for (int i = 0; i < tags.Count; i++)
        {
            var (tag, type) = Split(tags[i]);
            if (tag == 'I' && open == type) continue;
            if (open is not null) chunks.Add(new Entity(sentence, open, begin, i - 1));
            open = null;
            if (tag == 'B') { open = type; begin = i; }
            else if (tag is not ('O' or 'I'))
                throw new ArgumentException($"tag '{tags[i]}' (position {i}) is not IOB2 (expected O, B-TYPE or I-TYPE)");
        }
        if (open is not null) chunks.Add(new Entity(sentence, open, begin, tags.Count - 1));
        return chunks;
    }

    /// <summary>Micro and per-type precision/recall/F1 of predicted against gold tag sequences.</summary>
    public static EntityScores Score(IReadOnlyList<IReadOnlyList<string>> predictions, IReadOnlyList<IReadOnlyList<string>> references,
        SeqEvalMode mode = SeqEvalMode.Default)
    {
        if (predictions.Count != references.Count) throw new ArgumentException($"{predictions.Count} predicted sequences but {references.Count} reference sequences");
        var pred = new HashSet<Entity>();
        var gold = new HashSet<Entity>();
        for (int s = 0; s < predictions.Count; s++)
        {
            if (predictions[s].Count != references[s].Count)
                throw new ArgumentException($"sequence {s}: {predictions[s].Count} predicted tags but {references[s].Count} reference tags");
            pred.UnionWith(GetEntities(predictions[s], mode, s));
            gold.UnionWith(GetEntities(references[s], mode, s));
        }
        var types = pred.Select(e => e.Type).Union(gold.Select(e => e.Type)).Order(StringComparer.Ordinal);
        var perType = new SortedDictionary<string, PrfScore>(StringComparer.Ordinal);
        foreach (var t in types)
            perType[t] = Prf(pred.Where(e => e.Type == t).ToHashSet(), gold.Where(e => e.Type == t).ToHashSet());
        return new EntityScores(Prf(pred, gold), perType);
    }

    static PrfScore Prf(HashSet<Entity> pred, HashSet<Entity> gold)
    {
        int correct = pred.Count(gold.Contains);
        var (p, r, f) = Metrics.Prf(correct, pred.Count - correct, gold.Count - correct);
        return new PrfScore(p, r, f, gold.Count, pred.Count, correct);
    }

    /// <summary>IOB1 → IOB2: an I-X that does not follow B-X or I-X becomes B-X (entities unchanged under <see cref="SeqEvalMode.Default"/>).</summary>
    public static string[] Iob1ToIob2(IReadOnlyList<string> tags)
    {
        var result = new string[tags.Count];
        for (int i = 0; i < tags.Count; i++)
        {
            var (tag, type) = Split(tags[i]);
            bool continues = i > 0 && Split(tags[i - 1]) is var (pt, ptype) && pt is 'B' or 'I' && ptype == type;
            result[i] = tag == 'I' && !continues ? "B" + tags[i][1..] : tags[i];
        }
        return result;
    }
}
