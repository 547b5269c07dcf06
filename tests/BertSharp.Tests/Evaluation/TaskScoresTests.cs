using BertSharp.Data.Tasks;
using BertSharp.Evaluation;
using Xunit;

namespace BertSharp.Tests.Evaluation;

/// <summary>Task → reader / metric wiring.</summary>
public class TaskScoresTests
{
    [Fact]
    public void Task_names_metrics_and_primary_metric()
    {
        Assert.Equal(15, FineTuneTasks.Names.Count);
        Assert.Equal("sst2", FineTuneTasks.Get("SST-2").Name);
        Assert.Equal("stsb", FineTuneTasks.Get("sts-b").Name);
        var e = Assert.Throws<ArgumentException>(() => FineTuneTasks.Get("mnli"));
        Assert.Contains("expected one of mrpc, sst2", e.Message);
        Assert.Equal(1, FineTuneTasks.Get("stsb").NumLabels);
        Assert.Equal(9, FineTuneTasks.Get("conll-ner").NumLabels);
        Assert.Equal(47, FineTuneTasks.ConllPosLabels.Count);
        Assert.Equal("f1", TaskScores.Primary(FineTuneTasks.Get("mrpc")));
        Assert.Equal("spearmanr", TaskScores.Primary(FineTuneTasks.Get("stsb")));
        Assert.Equal("matthews_correlation", TaskScores.Primary(FineTuneTasks.Get("cola")));
        Assert.Equal("accuracy", TaskScores.Primary(FineTuneTasks.Get("conll-pos")));
        Assert.Equal("accuracy", TaskScores.Primary(FineTuneTasks.Get("rte")));
    }

    [Fact]
    public void Scores_per_task()
    {
        // MRPC: pred 1 1 0 0, gold 1 0 0 1 → acc 2/4; class 1: tp 1 fp 1 fn 1 → f1 1/2
        var m = TaskScores.Classification(FineTuneTasks.Get("mrpc"), [1, 1, 0, 0], [1, 0, 0, 1]);
        Assert.Equal(0.5, m["accuracy"], 12);
        Assert.Equal(0.5, m["f1"], 12);
        Assert.False(m.ContainsKey("matthews_correlation"));
        // CoLA: same lists: (1·1 − 1·1)/… = 0
        Assert.Equal(0, TaskScores.Classification(FineTuneTasks.Get("cola"), [1, 1, 0, 0], [1, 0, 0, 1])["matthews_correlation"], 12);
        var r = TaskScores.Regression([1, 2, 3], [1, 2, 4]);
        Assert.Equal(1, r["spearmanr"], 12);
        Assert.Equal((r["pearson"] + 1) / 2, r["combined_score"], 12);
        // NER over label ids (0 O, 1 B-PER, 2 I-PER): gold PER(0-1), pred PER(0-0) → P = R = F1 = 0; accuracy 2/3
        var ner = TaskScores.Tokens(FineTuneTasks.Get("conll-ner"), [[1, 0, 0]], [[1, 2, 0]], FineTuneTasks.ConllNerLabels);
        Assert.Equal(0, ner["f1"]);
        Assert.Equal(2.0 / 3, ner["accuracy"], 12);
        Assert.False(TaskScores.Tokens(FineTuneTasks.Get("conll-pos"), [[1]], [[1]], FineTuneTasks.ConllPosLabels).ContainsKey("f1"));
    }

    [Fact]
    public void Token_labels_from_data_for_xpos()
    {
        var a = new TokenDataset("a", [new TokenExample("0", ["x", "y"], ["NN", "VB"], 1)]);
        var b = new TokenDataset("b", [new TokenExample("0", ["z"], ["DT"], 1)]);
        Assert.Equal(["DT", "NN", "VB"], TaskData.TokenLabels(FineTuneTasks.Get("ud-xpos"), a, b));
        Assert.Same(FineTuneTasks.UposLabels, TaskData.TokenLabels(FineTuneTasks.Get("ud-pos"), a));
        Assert.Throws<ArgumentException>(() => TaskData.ReadTokens(FineTuneTasks.Get("sst2"), "x"));
        Assert.Throws<ArgumentException>(() => TaskData.ReadText(FineTuneTasks.Get("squad"), "x"));
    }
}
