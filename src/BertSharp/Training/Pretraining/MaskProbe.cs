using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training.Pretraining;

/// <summary>One [MASK] of a probe text and its top predictions.</summary>
public sealed record ProbePrediction(int Position, IReadOnlyList<(string Token, int Id, double Score)> Top);

/// <summary>
/// Fill-mask probes run on the model being trained: at each evaluation, the top-5 tokens for every [MASK] of each
/// probe text are reported to the other observers as a message (and returned by <see cref="Predict"/>).
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
    public static IReadOnlyList<ProbePrediction> Predict(BertForPreTraining model, BertTokenizer tokenizer, string text, int k = 5)
    {
        // Tokenize the text around each literal [MASK] so the mask survives any normalisation (lowercasing).
        var maskToken = tokenizer.Options.MaskToken;
        var pieces = text.Split(maskToken);
        var idList = new List<int> { tokenizer.ClsId };
        for (int p = 0; p < pieces.Length; p++)
        {
            if (p > 0) idList.Add(tokenizer.MaskId);
            idList.AddRange(tokenizer.ConvertTokensToIds(tokenizer.Tokenize(pieces[p])));
        }
        idList.Add(tokenizer.SepId);
        var inputIds = idList.ToArray();
        var masks = Enumerable.Range(0, inputIds.Length).Where(i => inputIds[i] == tokenizer.MaskId).ToArray();
        if (masks.Length == 0) return [];
        bool wasTraining = model.training;
        model.eval();
        try
        {
            using var scope = NewDisposeScope();
            using var _ = no_grad();
            var ids = tensor(inputIds.Select(i => (long)i).ToArray(), [1, inputIds.Length]);
            var types = zeros([1, inputIds.Length], ScalarType.Int64);
            var logits = model.forward(ids, types, null, tensor(masks.Select(m => (long)m).ToArray())).PredictionLogits;
            var (values, indices) = logits.to(ScalarType.Float32).softmax(-1).topk(Math.Min(k, (int)logits.shape[1]));
            var v = values.data<float>().ToArray();
            var ix = indices.data<long>().ToArray();
            int kk = (int)values.shape[1];
            var result = new List<ProbePrediction>();
            for (int m = 0; m < masks.Length; m++)
            {
                var top = new List<(string, int, double)>();
                for (int j = 0; j < kk; j++)
                {
                    int id = (int)ix[m * kk + j];
                    top.Add((tokenizer.Vocab[id], id, v[m * kk + j]));
                }
                result.Add(new ProbePrediction(masks[m], top));
            }
            return result;
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
            var parts = preds.Select(p => string.Join(" ", p.Top.Select(t => $"{t.Token} ({t.Score:F3})")));
            var line = $"probe @{eval.Step}: {text} → " + string.Join(" | ", parts);
            foreach (var s in _sinks)
                if (!ReferenceEquals(s, this)) s.OnMessage(line);
        }
    }
}
