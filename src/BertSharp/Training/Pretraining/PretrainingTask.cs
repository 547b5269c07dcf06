using BertSharp.Data;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training.Pretraining;

/// <summary>
/// BERT pretraining objective: cross-entropy of the MLM head at the masked positions only (the rows are gathered
/// before the vocabulary projection) plus, when the batch has next-sentence labels, cross-entropy of the NSP head. Metrics: loss, mlm_loss,
/// mlm_acc (per masked token), nsp_loss, nsp_acc (per sequence); evaluation adds perplexity = exp(mlm_loss) and
/// nsp_is_next (the share of "is next" labels, so that nsp_acc can be read against the majority-class baseline).
/// With a bf16 model the logits are upcast to float32 before the softmax.
/// </summary>
public sealed class PretrainingTask : ITrainingTask<PretrainingBatch>
{
    readonly BertForPreTraining _model;

    public PretrainingTask(BertForPreTraining model, BertConfig config, BertTokenizer? tokenizer)
    {
        _model = model;
        Config = config;
        Tokenizer = tokenizer;
    }

    public nn.Module Model => _model;
    public BertForPreTraining PreTrainingModel => _model;
    public BertConfig Config { get; }
    public BertTokenizer? Tokenizer { get; }

    public TaskOutput Forward(PretrainingBatch batch, bool training)
    {
        // The model drops an all-ones attention mask itself (unpadded batches run SDPA without a mask).
        var o = _model.forward(batch.InputIds, batch.TokenTypeIds, batch.AttentionMask, batch.MaskedFlatPositions);
        var logits = ModelUtils.Float32(o.PredictionLogits);
        var mlmLoss = nn.functional.cross_entropy(logits, batch.MaskedFlatLabels);
        long n = batch.MaskedFlatLabels.shape[0];
        double mlm = mlmLoss.item<float>();
        double mlmCorrect;
        using (no_grad()) mlmCorrect = logits.argmax(-1).eq(batch.MaskedFlatLabels).sum().item<long>();
        var metrics = new List<Metric>(5);
        Tensor loss = mlmLoss;
        double total = mlm;
        if (batch.NextSentenceLabels is { } nspLabels)
        {
            var nspLogits = ModelUtils.Float32(o.SeqRelationshipLogits);
            var nspLoss = nn.functional.cross_entropy(nspLogits, nspLabels);
            double nsp = nspLoss.item<float>();
            double nspCorrect;
            using (no_grad()) nspCorrect = nspLogits.argmax(-1).eq(nspLabels).sum().item<long>();
            loss = mlmLoss + nspLoss;
            total += nsp;
            metrics.Add(Metric.Mean("loss", total, 1));
            metrics.Add(Metric.Mean("mlm_loss", mlm, n));
            metrics.Add(new Metric("mlm_acc", mlmCorrect, n));
            metrics.Add(Metric.Mean("nsp_loss", nsp, batch.BatchSize));
            metrics.Add(new Metric("nsp_acc", nspCorrect, batch.BatchSize));
            // The share of "is next" labels: the accuracy of always guessing the majority class is max(p, 1 − p). It is
            // not 0.5 in general (Google's algorithm always draws a random B when A took the whole chunk).
            if (!training)
            {
                double isNext;
                using (no_grad()) isNext = nspLabels.eq(0).sum().item<long>();
                metrics.Add(new Metric("nsp_is_next", isNext, batch.BatchSize));
            }
        }
        else
        {
            metrics.Add(Metric.Mean("loss", total, 1));
            metrics.Add(Metric.Mean("mlm_loss", mlm, n));
            metrics.Add(new Metric("mlm_acc", mlmCorrect, n));
        }
        return new TaskOutput(loss, metrics);
    }

    public long TokenCount(PretrainingBatch batch) => batch.AttentionMask.sum().item<long>();

    public void AddDerivedMetrics(IDictionary<string, double> means)
    {
        if (means.TryGetValue("mlm_loss", out var l)) means["perplexity"] = Math.Exp(l);
    }

    /// <summary>HF layout through <see cref="ModelDirectory.Write"/>; config.json names the architecture.</summary>
    public void SaveModel(string dir, IReadOnlyDictionary<string, string> metadata) =>
        ModelDirectory.Write(_model, Config.WithArchitecture(nameof(BertForPreTraining)), Tokenizer, dir, metadata);

    /// <summary>Resuming: every weight must be there (<see cref="ModelDirectory.LoadWeightsInto"/>).</summary>
    public void LoadModel(string dir) => ModelDirectory.Open(dir).LoadWeightsInto(_model, requireComplete: true);
}
