namespace BertSharp.Inference;

/// <summary>
/// Turns what the user typed (<c>--model</c>, or <c>BERTSHARP_MODEL</c>) into a local model directory.
/// Sources are tried in order: a local directory, the Hugging Face cache (<see cref="Hub.HfCacheSource"/>), a Hub
/// download (<see cref="Hub.HubDownloadSource"/>; see docs/hub.md).
/// </summary>
public static class ModelResolver
{
    public const string EnvVar = "BERTSHARP_MODEL";

    /// <summary>Where a model name can come from. Returns a local directory, or null when it does not apply.</summary>
    public interface IModelSource
    {
        string? TryResolve(string nameOrPath);
    }

    /// <summary>A directory on disk (HF layout or a Google release directory), or an ONNX model file (<c>model.onnx</c>).</summary>
    public sealed class LocalDirectorySource : IModelSource
    {
        public string? TryResolve(string nameOrPath) =>
            Directory.Exists(nameOrPath) || (File.Exists(nameOrPath) && Checkpoints.CheckpointFiles.DetectFormat(nameOrPath) == Checkpoints.CheckpointFormat.Onnx)
                ? Path.GetFullPath(nameOrPath) : null;
    }

    public static List<IModelSource> Sources { get; } = [new LocalDirectorySource(), new Hub.HfCacheSource(), new Hub.HubDownloadSource()];

    public static string Resolve(string? model)
    {
        var name = string.IsNullOrWhiteSpace(model) ? Environment.GetEnvironmentVariable(EnvVar) : model;
        if (string.IsNullOrWhiteSpace(name))
            throw new ArgumentException(
                $"no model given: pass --model DIR or set {EnvVar}=DIR. DIR is a Hugging Face model directory " +
                "(config.json + model.safetensors or pytorch_model.bin + vocab.txt, e.g. from `git clone` of a Hub repo " +
                "such as bert-base-uncased) or an unzipped Google release (bert_config.json, vocab.txt, bert_model.ckpt.*); " +
                "`bert pretrain` creates one from scratch; or a Hugging Face Hub id ORG/NAME[@REVISION], taken from the HF cache or downloaded into it");
        foreach (var source in Sources)
            if (source.TryResolve(name) is { } dir) return dir;
        throw new DirectoryNotFoundException($"model directory not found: {name}");
    }
}
