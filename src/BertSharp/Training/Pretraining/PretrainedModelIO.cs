using BertSharp.Modeling;
using BertSharp.Tokenization;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training.Pretraining;

/// <summary>Writes and reads the model part of a checkpoint.</summary>
static class PretrainedModelIO
{
    const string WeightsFile = "weights.bin";

    public static void Save(nn.Module model, BertConfig config, BertTokenizer? tokenizer, string dir, IReadOnlyDictionary<string, string> metadata)
    {
        config.Save(Path.Combine(dir, "config.json"));
        StateFile.Save(Path.Combine(dir, WeightsFile),
            model.named_parameters().Where(p => !ModelUtils.IsTiedAlias(p.name)).Select(p => new KeyValuePair<string, Tensor>(p.name, p.parameter)));
        if (tokenizer is not null)
        {
            tokenizer.Vocab.Save(Path.Combine(dir, "vocab.txt"));
            File.WriteAllText(Path.Combine(dir, "tokenizer_config.json"),
                $"{{\"do_lower_case\": {(tokenizer.Options.DoLowerCase ? "true" : "false")}}}\n");
        }
    }

    public static void LoadWeights(nn.Module model, string dir)
    {
        var path = Path.Combine(dir, WeightsFile);
        var w = StateFile.Load(path);
        try { StateFile.LoadInto(model, w, path); }
        finally { foreach (var t in w.Values) t.Dispose(); }
    }
}
