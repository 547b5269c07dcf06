using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Training;

/// <summary>Named-tensor files for training state (optimizer moments, master weights).</summary>
static class StateFile
{
    // Format: magic, count, then (name, TorchSharp tensor record) pairs. Replaced by safetensors once the
    // Checkpoints code is on main.
    static readonly byte[] Magic = "BSTS0001"u8.ToArray();

    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors)
    {
        var list = tensors.ToList();
        using var fs = File.Create(path);
        using var w = new BinaryWriter(fs, Encoding.UTF8);
        w.Write(Magic);
        w.Write(list.Count);
        foreach (var (name, t) in list)
        {
            w.Write(name);
            using var scope = NewDisposeScope();
            t.detach().cpu().contiguous().Save(w);
        }
    }

    public static Dictionary<string, Tensor> Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"state file not found: {path}", path);
        using var fs = File.OpenRead(path);
        using var r = new BinaryReader(fs, Encoding.UTF8);
        if (!r.ReadBytes(Magic.Length).AsSpan().SequenceEqual(Magic)) throw new InvalidDataException($"{path}: not a BertSharp state file");
        int n = r.ReadInt32();
        var d = new Dictionary<string, Tensor>(n, StringComparer.Ordinal);
        for (int i = 0; i < n; i++)
        {
            var name = r.ReadString();
            d[name] = Tensor.Load(r).DetachFromDisposeScope();
        }
        return d;
    }

    /// <summary>Copies saved weights into the module's parameters and buffers by state-dict name.</summary>
    public static void LoadInto(nn.Module model, IReadOnlyDictionary<string, Tensor> weights, string source)
    {
        using var _ = no_grad();
        foreach (var (name, p) in model.named_parameters())
        {
            if (weights.TryGetValue(name, out var w)) p.copy_(w);
            else if (!Modeling.ModelUtils.IsTiedAlias(name)) throw new InvalidDataException($"{source}: missing weight '{name}'");
        }
    }
}
