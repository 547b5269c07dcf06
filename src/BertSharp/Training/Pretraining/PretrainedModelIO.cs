using BertSharp.Inference;
using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training.Pretraining;

/// <summary>
/// Writes and reads the model part of a checkpoint in Hugging Face layout: config.json, model.safetensors (tied
/// decoder weights stored once, under the embedding and <c>cls.predictions.bias</c> names, as HF does), vocab.txt
/// and tokenizer_config.json.
/// </summary>
static class PretrainedModelIO
{
    public const string WeightsFile = "model.safetensors";

    public static void Save(nn.Module model, BertConfig config, BertTokenizer? tokenizer, string dir, IReadOnlyDictionary<string, string> metadata)
    {
        var cfg = config with { Extra = WithArchitecture(config.Extra) };
        if (tokenizer is not null)
        {
            // The inference code's writer: exactly what `bert fill-mask` and HF from_pretrained read.
            ModelDirectory.Save(model, cfg, tokenizer, dir, metadata);
            return;
        }
        // No tokenizer (engine tests with synthetic ids): config + weights only.
        cfg.Save(Path.Combine(dir, "config.json"));
        var meta = new Dictionary<string, string>(metadata) { ["format"] = "pt" };
        using (var scope = NewDisposeScope())
        {
            var weights = model.named_parameters().Where(p => !ModelUtils.IsTiedAlias(p.name))
                .Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter.dtype == ScalarType.Float32 ? p.parameter : p.parameter.to(ScalarType.Float32)));
            StateFile.Save(Path.Combine(dir, WeightsFile), weights, meta);
        }
    }

    static Dictionary<string, System.Text.Json.JsonElement> WithArchitecture(Dictionary<string, System.Text.Json.JsonElement>? extra)
    {
        var d = extra is null ? new Dictionary<string, System.Text.Json.JsonElement>() : new Dictionary<string, System.Text.Json.JsonElement>(extra);
        if (!d.ContainsKey("architectures"))
            d["architectures"] = System.Text.Json.JsonSerializer.SerializeToElement(new[] { "BertForPreTraining" });
        return d;
    }

    public static void LoadWeights(nn.Module model, string dir)
    {
        var path = Path.Combine(dir, WeightsFile);
        var w = StateFile.Load(path);
        try { StateFile.LoadInto(model, w, path); }
        finally { foreach (var t in w.Values) t.Dispose(); }
    }
}
