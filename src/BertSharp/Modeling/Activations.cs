using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Modeling;

/// <summary>The activations HF's ACT2FN offers for BERT.</summary>
public static class Activations
{
    public static bool IsKnown(string name) => name is "gelu" or "gelu_new" or "gelu_fast" or "relu" or "gelu_python";

    public static Tensor Apply(string name, Tensor x) => name switch
    {
        // Exact erf-based GELU (HF "gelu").
        "gelu" or "gelu_python" => nn.functional.gelu(x),
        // tanh approximation (HF "gelu_new"; "gelu_fast" is the same formula written differently).
        "gelu_new" or "gelu_fast" => nn.functional.gelu(x, TorchSharp.Modules.GELU.Approximate.tanh),
        "relu" => nn.functional.relu(x),
        _ => throw new ArgumentException($"unsupported activation '{name}'"),
    };
}
