using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Inference;

/// <summary>Process-wide torch settings: threads, device and dtype, chosen explicitly.</summary>
public static class Runtime
{
    /// <summary>Sets intra-op threads (default: all cores).</summary>
    public static void SetThreads(int? threads)
    {
        int n = threads ?? Environment.ProcessorCount;
        if (n < 1) throw new ArgumentException($"--threads must be at least 1 (got {n})");
        torch.set_num_threads(n);
    }

    /// <summary>Parses <c>cpu</c> / <c>cuda</c> / <c>cuda:N</c>; CUDA needs the CUDA TorchSharp package.</summary>
    public static Device ParseDevice(string? name)
    {
        name = string.IsNullOrWhiteSpace(name) ? "cpu" : name.Trim().ToLowerInvariant();
        if (name == "cpu") return CPU;
        if (name == "cuda" || name.StartsWith("cuda:", StringComparison.Ordinal))
        {
            if (!cuda.is_available())
                throw new ArgumentException(
                    "--device cuda: CUDA is not available. BertSharp ships TorchSharp-cpu; to run on a GPU, reference " +
                    "TorchSharp-cuda-linux (or -windows) instead and make sure an NVIDIA driver is installed");
            return new Device(name);
        }
        throw new ArgumentException($"--device '{name}' is not supported (expected cpu, cuda or cuda:N)");
    }

    /// <summary>Parses <c>float32</c>/<c>fp32</c> or <c>bfloat16</c>/<c>bf16</c>.</summary>
    public static ScalarType ParseDType(string? name) => (name ?? "float32").Trim().ToLowerInvariant() switch
    {
        "float32" or "fp32" or "f32" => ScalarType.Float32,
        "bfloat16" or "bf16" => ScalarType.BFloat16,
        var other => throw new ArgumentException($"--dtype '{other}' is not supported (expected float32 or bfloat16)"),
    };
}
