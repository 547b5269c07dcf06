using BertSharp.Checkpoints;
using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tokenization;

namespace BertSharp.Training.Pretraining;

/// <summary>
/// Fill-mask probes run on the model being trained: at each evaluation, the top-5 tokens for every [MASK] of each
/// probe text are reported to the other observers as a message. The predictions are <see cref="BertPipeline.FillMask"/>'s
/// (the same tokenization and scores as <c>bert fill-mask</c> on the saved checkpoint), with the model in eval mode.
/// </summary>
public sealed class MaskProbe : ITrainingObserver
{
    readonly BertForPreTraining _model;
    readonly BertTokenizer _tokenizer;
    readonly IReadOnlyList<string> _texts;
    readonly IReadOnlyList<ITrainingObserver> _sinks;

    public MaskProbe(BertForPreTraining model, BertTokenizer tokenizer, IReadOnlyList<string> texts, IReadOnlyList<ITrainingObserver> sinks)
    {
        _model = model;
        _tokenizer = tokenizer;
        foreach (var t in texts)
            if (!t.Contains(tokenizer.Options.MaskToken, StringComparison.Ordinal))
                throw new ArgumentException($"--probe \"{t}\" has no {tokenizer.Options.MaskToken}");
        _texts = texts;
        _sinks = sinks;
    }

    /// <summary>Top-<paramref name="k"/> predictions (softmax probabilities) for every [MASK] of <paramref name="text"/>.</summary>
    public static IReadOnlyList<MaskPredictions> Predict(BertForPreTraining model, BertTokenizer tokenizer, string text, int k = 5)
    {
        bool wasTraining = model.training;
        model.eval();
        try
        {
            // A view of the model being trained: every weight is there; the pipeline does not own (dispose) the model.
            var pipeline = new BertPipeline(model, tokenizer, new LoadReport([], [], 0));
            return pipeline.FillMask(text, k);
        }
        finally
        {
            if (wasTraining) model.train();
        }
    }

    public void OnEval(EvalRecord eval)
    {
        foreach (var text in _texts)
        {
            var preds = Predict(_model, _tokenizer, text);
            var parts = preds.Select(p => string.Join(" ", p.Predictions.Select(t => $"{t.Token} ({t.Score:F3})")));
            var line = $"probe @{eval.Step}: {text} → " + string.Join(" | ", parts);
            foreach (var s in _sinks)
                if (!ReferenceEquals(s, this)) s.OnMessage(line);
        }
    }
}
