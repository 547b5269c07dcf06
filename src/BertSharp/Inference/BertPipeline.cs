using BertSharp.Checkpoints;
using BertSharp.Export;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Inference;

public sealed record TokenScore(string Token, int Id, double Score);

/// <param name="Position">index of the [MASK] in input_ids</param>
public sealed record MaskPredictions(int Position, IReadOnlyList<TokenScore> Predictions);

public sealed record NextSentenceResult(double IsNextProbability, float[] Logits);

/// <summary>One masked position of the pretraining demo.</summary>
public sealed record DemoPosition(int Position, string Actual, string Predicted);

public sealed record PretrainDemoResult(
    IReadOnlyList<string> MaskedTokens, IReadOnlyList<DemoPosition> Positions, int Correct, NextSentenceResult? NextSentence)
{
    public double MlmAccuracy => Positions.Count == 0 ? 0 : (double)Correct / Positions.Count;
}

/// <summary>
/// Inference on a BERT with its pre-training heads: fill-mask (HF pipeline semantics), next-sentence prediction
/// and the picoBERT pretraining demo. Loads any BertModel / ForMaskedLM / ForPreTraining checkpoint.
/// </summary>
public sealed class BertPipeline : IDisposable
{
    public BertForPreTraining Model { get; }
    public BertTokenizer Tokenizer { get; }
    public LoadReport Report { get; }
    public Device Device { get; }

    OnnxEngine? _onnx;   // fill-mask on ONNX Runtime (the masked-LM graph), when loaded with that engine

    /// <summary>The engine <see cref="FillMask"/> runs on; next-sentence prediction and the demo always run on torch.</summary>
    public InferenceEngine Engine => _onnx is null ? InferenceEngine.Torch : InferenceEngine.Onnx;

    /// <summary>The ONNX Runtime session of <see cref="FillMask"/> and its cache entry, when <see cref="Engine"/> is ONNX.</summary>
    public OnnxEngine? OnnxEngine => _onnx;

    public BertPipeline(BertForPreTraining model, BertTokenizer tokenizer, LoadReport report, Device? device = null)
    {
        Model = model;
        Tokenizer = tokenizer;
        Report = report;
        Device = device ?? CPU;
    }

    /// <summary>
    /// Loads a pipeline. <paramref name="engine"/> <see cref="InferenceEngine.Onnx"/> (or Auto, which picks it for
    /// float32 on the CPU) runs <see cref="FillMask"/> on ONNX Runtime: the checkpoint's masked-LM model is exported
    /// once into the <see cref="OnnxEngine"/> cache. Without an MLM head in the checkpoint there is nothing to export
    /// and fill-mask refuses as on torch.
    /// </summary>
    public static BertPipeline Load(string modelDir, ScalarType dtype = ScalarType.Float32, Device? device = null, LoadPolicy? policy = null,
        InferenceEngine engine = InferenceEngine.Torch, OnnxEngineOptions? onnx = null)
    {
        var dir = ModelDirectory.Open(modelDir);
        var tokenizer = dir.LoadTokenizer();
        var resolved = Embedder.ResolveEngine(engine, dtype, device ?? CPU, EmbeddingLayer.Last, out _, onnx);
        var (model, report) = dir.LoadModel(c => new BertForPreTraining(c), dtype, device, policy: policy);
        var pipeline = new BertPipeline(model, tokenizer, report, device);
        try
        {
            if (resolved == InferenceEngine.Onnx && pipeline.HasWeights("cls.predictions"))
            {
                onnx ??= new OnnxEngineOptions();
                var options = onnx with { Export = onnx.Export with { Task = OnnxExportTask.MaskedLM }, Source = dir.WeightsPath };
                using var scope = NewDisposeScope();
                pipeline._onnx = OnnxEngine.Create(dir.Config, model.state_dict(), options);
            }
        }
        catch
        {
            pipeline.Dispose();
            throw;
        }
        return pipeline;
    }

    bool HasWeights(string prefix) => !Report.Missing.Any(k => k.StartsWith(prefix, StringComparison.Ordinal));

    void Require(string prefix, string what)
    {
        if (!HasWeights(prefix))
            throw new InvalidDataException($"the checkpoint has no {what} weights ({prefix}* missing); it cannot be used for this");
    }

    BertEncoding EncodeChecked(string text, string? pair)
    {
        var enc = Tokenizer.Encode(text, pair);
        if (enc.Length > Model.bert.Config.MaxPositionEmbeddings)
            throw new ArgumentException($"input is {enc.Length} tokens long; the model accepts at most {Model.bert.Config.MaxPositionEmbeddings}");
        return enc;
    }

    (Tensor Ids, Tensor Types) ToTensors(int[] ids, int[] types) =>
        (tensor(ids.Select(i => (long)i).ToArray(), device: Device).unsqueeze(0),
         tensor(types.Select(i => (long)i).ToArray(), device: Device).unsqueeze(0));

    /// <summary>Top-k predictions with softmax probability for every [MASK] in <paramref name="text"/>.</summary>
    public IReadOnlyList<MaskPredictions> FillMask(string text, int topK = 5, string? pair = null)
    {
        if (topK < 1) throw new ArgumentException($"--top-k must be at least 1 (got {topK})");
        Require("cls.predictions", "masked-language-model head");
        var enc = EncodeChecked(text, pair);
        var positions = Enumerable.Range(0, enc.Length).Where(i => enc.InputIds[i] == Tokenizer.MaskId).ToArray();
        if (positions.Length == 0)
            throw new ArgumentException($"the text contains no {Tokenizer.Options.MaskToken} token: \"{text}\"");
        if (_onnx is not null) return FillMaskOnnx(enc, positions, topK);
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var (ids, types) = ToTensors(enc.InputIds, enc.TokenTypeIds);
        var flat = tensor(positions.Select(p => (long)p).ToArray(), device: Device);
        var logits = Model.forward(ids, types, null, flat).PredictionLogits.to(ScalarType.Float32).cpu();
        var probs = logits.softmax(-1);
        var (values, indices) = probs.topk(Math.Min(topK, (int)probs.shape[1]), dim: -1);
        var result = new List<MaskPredictions>();
        for (int m = 0; m < positions.Length; m++)
        {
            var preds = new List<TokenScore>();
            for (int k = 0; k < values.shape[1]; k++)
            {
                int id = (int)indices[m, k].item<long>();
                preds.Add(new TokenScore(Tokenizer.Vocab[id], id, values[m, k].item<float>()));
            }
            result.Add(new MaskPredictions(positions[m], preds));
        }
        return result;
    }

    /// <summary>Fill-mask on ONNX Runtime: logits [1, L, V] into the engine's buffer; softmax (in double) and top-k per [MASK].</summary>
    IReadOnlyList<MaskPredictions> FillMaskOnnx(BertEncoding enc, int[] positions, int topK)
    {
        int n = enc.Length;
        var ids = enc.InputIds.Select(i => (long)i).ToArray();
        var types = enc.TokenTypeIds.Select(i => (long)i).ToArray();
        var mask = Enumerable.Repeat(1L, n).ToArray();
        _onnx!.Run(ids, mask, types, 1, n);
        var logits = _onnx.Output("logits");
        int v = logits.Length / n, k = Math.Min(topK, v);
        var result = new List<MaskPredictions>();
        var order = new int[v];
        var keys = new float[v];
        foreach (var p in positions)
        {
            var row = logits.Slice(p * v, v);
            float max = float.NegativeInfinity;
            foreach (var x in row) max = Math.Max(max, x);
            double sum = 0;
            foreach (var x in row) sum += Math.Exp(x - max);
            for (int i = 0; i < v; i++) { order[i] = i; keys[i] = -row[i]; }
            Array.Sort(keys, order);   // descending logits; the softmax keeps the order
            var preds = new List<TokenScore>(k);
            for (int r = 0; r < k; r++)
            {
                int id = order[r];
                preds.Add(new TokenScore(Tokenizer.Vocab[id], id, (float)(Math.Exp(row[id] - max) / sum)));
            }
            result.Add(new MaskPredictions(p, preds));
        }
        return result;
    }

    /// <summary>P(text B follows text A) from the NSP head (index 0 of the logits = "is next").</summary>
    public NextSentenceResult NextSentence(string textA, string textB)
    {
        Require("cls.seq_relationship", "next-sentence-prediction head");
        Require("bert.pooler", "pooler");
        var enc = EncodeChecked(textA, textB);
        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var (ids, types) = ToTensors(enc.InputIds, enc.TokenTypeIds);
        return NspFromLogits(Model.forward(ids, types, null, tensor(new long[] { 0 }, device: Device)).SeqRelationshipLogits);
    }

    static NextSentenceResult NspFromLogits(Tensor nspLogits)
    {
        var l = nspLogits.to(ScalarType.Float32).cpu()[0];
        return new NextSentenceResult(l.softmax(-1)[0].item<float>(), l.data<float>().ToArray());
    }

    /// <summary>
    /// The picoBERT demo: tokenize, pick floor(n × maskProb) positions uniformly without replacement, drop any that
    /// are [CLS]/[SEP], replace the rest with [MASK], run MLM + NSP, and score the top-1 predictions.
    /// </summary>
    public PretrainDemoResult PretrainDemo(string textA, string? textB, double maskProb = 0.15, int seed = 123)
    {
        if (maskProb is <= 0 or > 1) throw new ArgumentException($"--mask-prob must be in (0, 1] (got {maskProb})");
        Require("cls.predictions", "masked-language-model head");
        if (textB is not null) { Require("cls.seq_relationship", "next-sentence-prediction head"); Require("bert.pooler", "pooler"); }
        var enc = EncodeChecked(textA, textB);
        int n = enc.Length;
        var rng = new Random(seed);
        var order = Enumerable.Range(0, n).ToArray();
        rng.Shuffle(order);
        var chosen = order.Take((int)Math.Floor(n * maskProb))
            .Where(p => enc.InputIds[p] != Tokenizer.ClsId && enc.InputIds[p] != Tokenizer.SepId)
            .Order().ToArray();
        var masked = (int[])enc.InputIds.Clone();
        foreach (var p in chosen) masked[p] = Tokenizer.MaskId;

        using var scope = NewDisposeScope();
        using var _ = inference_mode();
        var (ids, types) = ToTensors(masked, enc.TokenTypeIds);
        var positions = tensor((chosen.Length == 0 ? new[] { 0 } : chosen).Select(p => (long)p).ToArray(), device: Device);
        var output = Model.forward(ids, types, null, positions);
        var top1 = output.PredictionLogits.argmax(-1).cpu().data<long>().ToArray();
        var rows = new List<DemoPosition>();
        int correct = 0;
        for (int i = 0; i < chosen.Length; i++)
        {
            int actual = enc.InputIds[chosen[i]], predicted = (int)top1[i];
            if (actual == predicted) correct++;
            rows.Add(new DemoPosition(chosen[i], Tokenizer.Vocab[actual], Tokenizer.Vocab[predicted]));
        }
        var nsp = textB is null ? null : NspFromLogits(output.SeqRelationshipLogits);
        return new PretrainDemoResult(Tokenizer.ConvertIdsToTokens(masked), rows, correct, nsp);
    }

    public void Dispose()
    {
        Model.Dispose();
        _onnx?.Dispose();
    }
}
