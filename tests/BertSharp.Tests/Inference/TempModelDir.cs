namespace BertSharp.Tests.Inference;

/// <summary>A temporary directory whose model files are symlinks to shared assets (never copies), removed on dispose.</summary>
sealed class TempModelDir : IDisposable
{
    public string Path { get; } = Directory.CreateTempSubdirectory("bertsharp-model-").FullName;

    /// <summary>Links <paramref name="files"/> of <paramref name="sourceDir"/> into the directory under the same names.</summary>
    public TempModelDir Link(string sourceDir, params string[] files)
    {
        foreach (var f in files) File.CreateSymbolicLink(System.IO.Path.Combine(Path, f), System.IO.Path.Combine(sourceDir, f));
        return this;
    }

    public TempModelDir Write(string relative, string text)
    {
        var p = System.IO.Path.Combine(Path, relative);
        Directory.CreateDirectory(System.IO.Path.GetDirectoryName(p)!);
        File.WriteAllText(p, text);
        return this;
    }

    /// <summary>tiny-random with the given weights file (model.safetensors or pytorch_model.bin).</summary>
    public static TempModelDir TinyRandom(string weights = "model.safetensors") =>
        new TempModelDir().Link(TestAssets.Path(TestAssets.TinyRandom), "config.json", weights, "vocab.txt", "tokenizer_config.json");

    public void Dispose()
    {
        try { Directory.Delete(Path, recursive: true); } catch (IOException) { }
    }
}
