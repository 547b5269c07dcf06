using static TorchSharp.torch;

namespace BertSharp.Serving;

/// <summary>One model to serve: the name clients use (<c>"model"</c> in requests, <c>/v1/models</c>) and where it lives.</summary>
public sealed record ServedModelSpec(string Name, string Path)
{
    /// <summary>
    /// Parses a <c>--model</c> value: <c>NAME=PATH</c>, or a bare PATH / Hub id (then the name is the last path
    /// segment, e.g. <c>all-MiniLM-L6-v2</c>).
    /// </summary>
    public static ServedModelSpec Parse(string value)
    {
        if (string.IsNullOrWhiteSpace(value)) throw new ArgumentException("--model needs a value: PATH or NAME=PATH");
        int eq = value.IndexOf('=');
        if (eq > 0 && !value[..eq].Contains('/') && !value[..eq].Contains('\\'))
        {
            var name = value[..eq].Trim();
            var path = value[(eq + 1)..].Trim();
            if (path.Length == 0) throw new ArgumentException($"--model {value}: no path after '='");
            return new ServedModelSpec(name, path);
        }
        var trimmed = value.TrimEnd('/', '\\');
        var last = trimmed.Split('/', '\\').Last();
        int at = last.IndexOf('@');
        return new ServedModelSpec(at > 0 ? last[..at] : last, value);
    }
}

/// <summary>Settings of <c>bert serve</c> (<see cref="ServeApp.Build"/>); every limit has a safe default.</summary>
public sealed record ServeOptions
{
    /// <summary>Models to load; the first is the default when a request names none.</summary>
    public required IReadOnlyList<ServedModelSpec> Models { get; init; }

    public string Host { get; init; } = "127.0.0.1";
    public int Port { get; init; } = 8080;

    /// <summary>Most texts one forward pass takes; concurrent requests are coalesced up to this.</summary>
    public int MaxBatch { get; init; } = 32;

    /// <summary>How long the worker waits for more requests to fill a batch after the first arrived (0 = no waiting).</summary>
    public int MaxWaitMs { get; init; } = 5;

    /// <summary>Requests waiting per model; one more is answered 429.</summary>
    public int MaxQueue { get; init; } = 256;

    /// <summary>Largest request body in bytes (413 above).</summary>
    public long MaxBodyBytes { get; init; } = 1 << 20;

    /// <summary>Most texts in one request (400 above).</summary>
    public int MaxTexts { get; init; } = 256;

    /// <summary>Most characters per text (400 above).</summary>
    public int MaxChars { get; init; } = 20_000;

    /// <summary>Bearer key that every route except <c>/health</c> requires; null = no authentication.</summary>
    public string? ApiKey { get; init; }

    public ScalarType DType { get; init; } = ScalarType.Float32;

    /// <summary>Intra-op threads for libtorch (null: all cores); applied by the CLI entry point.</summary>
    public int? Threads { get; init; }

    public void Validate()
    {
        if (Models.Count == 0) throw new ArgumentException("give at least one --model");
        var dup = Models.GroupBy(m => m.Name, StringComparer.Ordinal).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"--model: the name '{dup.Key}' is given twice; use NAME=PATH to tell them apart");
        if (Port is < 0 or > 65535) throw new ArgumentException($"--port must be in 0..65535 (got {Port})");
        if (MaxBatch < 1) throw new ArgumentException($"--max-batch must be at least 1 (got {MaxBatch})");
        if (MaxWaitMs < 0) throw new ArgumentException($"--max-wait-ms must be at least 0 (got {MaxWaitMs})");
        if (MaxQueue < 1) throw new ArgumentException($"--max-queue must be at least 1 (got {MaxQueue})");
        if (MaxBodyBytes < 64) throw new ArgumentException($"--max-body-bytes must be at least 64 (got {MaxBodyBytes})");
        if (MaxTexts < 1) throw new ArgumentException($"--max-texts must be at least 1 (got {MaxTexts})");
        if (MaxChars < 1) throw new ArgumentException($"--max-chars must be at least 1 (got {MaxChars})");
        if (ApiKey is { Length: 0 }) throw new ArgumentException("the API key is empty");
    }

    /// <summary>Reads an API key file: its first non-empty line, trimmed.</summary>
    public static string ReadApiKey(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"--api-key-file: file not found: {path}", path);
        var key = File.ReadLines(path).Select(l => l.Trim()).FirstOrDefault(l => l.Length > 0);
        return key ?? throw new InvalidDataException($"{path}: the API key file is empty");
    }
}
