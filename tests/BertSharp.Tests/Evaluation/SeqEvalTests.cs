using BertSharp.Evaluation;
using Xunit;

namespace BertSharp.Tests.Evaluation;

/// <summary>
/// seqeval semantics (chunk rules of seqeval.metrics.sequence_labeling.get_entities, which match conlleval) on the
/// classic tricky sequences; expected entities worked out by hand from the start/end-of-chunk rules.
/// </summary>
public class SeqEvalTests
{
    static (string, int, int)[] E(string[] tags, SeqEvalMode mode = SeqEvalMode.Default) =>
        SeqEval.GetEntities(tags, mode).Select(e => (e.Type, e.Start, e.End)).ToArray();

    [Fact]
    public void Basic_iob2()
    {
        // seqeval's docstring example
        Assert.Equal([("PER", 0, 1), ("LOC", 3, 3)], E(["B-PER", "I-PER", "O", "B-LOC"]));
        Assert.Equal([("PER", 0, 0), ("PER", 1, 1)], E(["B-PER", "B-PER"])); // B after B ends and starts
        Assert.Empty(E(["O", "O"]));
        Assert.Equal([("LOC", 2, 2)], E(["O", "O", "B-LOC"])); // an entity at the end is closed by the virtual final O
    }

    [Fact]
    public void I_after_O_starts_an_entity_in_default_mode_and_is_dropped_in_strict_iob2()
    {
        // O→I: start_of_chunk is true (IOB1 reading)
        Assert.Equal([("PER", 0, 1)], E(["I-PER", "I-PER", "O"]));
        Assert.Equal([("ORG", 0, 0), ("ORG", 2, 2)], E(["B-ORG", "O", "I-ORG"]));
        Assert.Empty(E(["I-PER", "I-PER", "O"], SeqEvalMode.StrictIob2));
        Assert.Equal([("ORG", 0, 0)], E(["B-ORG", "O", "I-ORG"], SeqEvalMode.StrictIob2));
    }

    [Fact]
    public void Type_change_inside_a_chunk_splits_it()
    {
        // B-PER I-LOC: prev type PER ≠ LOC → PER ends at 0 and LOC starts at 1 (default); strict: I-LOC continues nothing
        Assert.Equal([("PER", 0, 0), ("LOC", 1, 1)], E(["B-PER", "I-LOC"]));
        Assert.Equal([("PER", 0, 0)], E(["B-PER", "I-LOC"], SeqEvalMode.StrictIob2));
        // I-PER I-LOC I-LOC → PER(0,0), LOC(1,2)
        Assert.Equal([("PER", 0, 0), ("LOC", 1, 2)], E(["I-PER", "I-LOC", "I-LOC"]));
    }

    [Fact]
    public void Iob1_adjacent_entities_and_conversion_to_iob2()
    {
        // IOB1: B- only separates two adjacent entities of the same type
        string[] iob1 = ["O", "I-MISC", "I-MISC", "B-MISC", "I-MISC", "O", "I-PER"];
        Assert.Equal([("MISC", 1, 2), ("MISC", 3, 4), ("PER", 6, 6)], E(iob1));
        var iob2 = SeqEval.Iob1ToIob2(iob1);
        Assert.Equal(["O", "B-MISC", "I-MISC", "B-MISC", "I-MISC", "O", "B-PER"], iob2);
        Assert.Equal(E(iob1), E(iob2));
        Assert.Equal(E(iob1), E(iob2, SeqEvalMode.StrictIob2)); // converted tags are valid IOB2
        // I-PER B-PER: the B closes the I chunk → two PER entities
        Assert.Equal([("PER", 0, 0), ("PER", 1, 1)], E(["I-PER", "B-PER"]));
        Assert.Equal(["B-LOC", "I-LOC", "B-PER"], SeqEval.Iob1ToIob2(["I-LOC", "I-LOC", "I-PER"]));
    }

    [Fact]
    public void Iobes_tags_follow_the_same_rules()
    {
        Assert.Equal([("PER", 0, 0), ("LOC", 1, 2), ("ORG", 3, 3)], E(["S-PER", "B-LOC", "E-LOC", "S-ORG"]));
        Assert.Equal([("LOC", 0, 0), ("LOC", 1, 1)], E(["E-LOC", "E-LOC"])); // E ends a chunk; E after E starts one
    }

    [Fact]
    public void Seqeval_readme_example_scores_half()
    {
        // gold MISC(3,5) PER(0,1); pred MISC(2,5) PER(0,1): 1 correct of 2 predicted, 2 gold → P = R = F1 = 1/2
        string[][] gold = [["O", "O", "O", "B-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]];
        string[][] pred = [["O", "O", "B-MISC", "I-MISC", "I-MISC", "I-MISC", "O"], ["B-PER", "I-PER", "O"]];
        var s = SeqEval.Score(pred, gold);
        Assert.Equal(0.5, s.Precision, 12);
        Assert.Equal(0.5, s.Recall, 12);
        Assert.Equal(0.5, s.F1, 12);
        Assert.Equal(0.0, s.PerType["MISC"].F1, 12);
        Assert.Equal(1.0, s.PerType["PER"].F1, 12);
    }

    [Fact]
    public void Micro_average_per_type_and_sentence_boundaries()
    {
        // gold: PER(s0,0-1) LOC(s0,3) ORG(s1,0); pred: PER(s0,0-1) ORG(s0,3) ORG(s1,0)
        // correct 2 of 3 predicted and 3 gold → P = R = F1 = 2/3
        // per type: PER 1/1; LOC: 0 predicted, 1 gold → P 0 (zero division) R 0 F 0; ORG: 1 of 2 predicted, 1 gold → P .5 R 1 F 2/3
        string[][] gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-ORG", "O"]];
        string[][] pred = [["B-PER", "I-PER", "O", "B-ORG"], ["B-ORG", "O"]];
        var s = SeqEval.Score(pred, gold);
        Assert.Equal(2.0 / 3, s.Precision, 12);
        Assert.Equal(2.0 / 3, s.Recall, 12);
        Assert.Equal(2.0 / 3, s.F1, 12);
        Assert.Equal(new PrfScore(0, 0, 0, 1, 0, 0), s.PerType["LOC"]);
        Assert.Equal(0.5, s.PerType["ORG"].Precision, 12);
        Assert.Equal(1, s.PerType["ORG"].Recall, 12);
        Assert.Equal(2.0 / 3, s.PerType["ORG"].F1, 12);
        Assert.Equal(2, s.PerType["ORG"].Predicted);
        // an entity never runs across sentences: s0 ends with B-PER, s1 starts with I-PER → two entities
        var split = SeqEval.Score([["O", "B-PER"], ["I-PER", "O"]], [["O", "B-PER"], ["B-PER", "O"]]);
        Assert.Equal(2, split.Micro.Predicted);
        Assert.Equal(1.0, split.F1, 12); // (s0,1,1) and (s1,0,0) match the gold entities exactly
        // nothing predicted: P = R = F1 = 0
        Assert.Equal(0, SeqEval.Score([["O"]], [["B-PER"]]).F1);
        Assert.Throws<ArgumentException>(() => SeqEval.Score([["O"]], [["O", "O"]]));
    }
}
