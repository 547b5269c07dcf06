using BertSharp.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training;

/// <summary>Named-tensor files for training state (safetensors) and copying weights into a module.</summary>
static class StateFile
{
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        using var scope = NewDisposeScope();
        SafeTensors.Save(path, tensors.Select(kv => new KeyValuePair<string, Tensor>(kv.Key, kv.Value.detach().cpu().contiguous())).ToList(), metadata);
    }

    /// <summary>Loads every tensor; the caller disposes them.</summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"state file not found: {path}", path);
        using var scope = NewDisposeScope();
        var d = SafeTensors.Load(path);
        foreach (var t in d.Values) t.DetachFromDisposeScope();
        return d;
    }

    /// <summary>Copies saved weights into the module's parameters by state-dict name (tied aliases may be absent).</summary>
    public static void LoadInto(nn.Module model, IReadOnlyDictionary<string, Tensor> weights, string source)
    {
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (weights.TryGetValue(name, out var w))
            {
                if (!w.shape.SequenceEqual(p.shape))
                    throw new InvalidDataException($"{source}: '{name}' has shape [{string.Join(", ", w.shape)}], the model expects [{string.Join(", ", p.shape)}]");
                p.copy_(w);
            }
            else if (!Modeling.ModelUtils.IsTiedAlias(name)) throw new InvalidDataException($"{source}: missing weight '{name}'");
        }
    }
}
