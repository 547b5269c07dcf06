using System.Text.Json;
using BertSharp.Checkpoints;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Tests.Golden;

/// <summary>One case of golden/models/tiny-random/golden: inputs and what HF transformers computed.</summary>
sealed class GoldenCase
{
    public required string Name { get; init; }
    public required string Dir { get; init; }
    public required List<(string A, string? B)> Items { get; init; }

    public static string Root => TestAssets.Path(TestAssets.TinyRandom);

    public static IReadOnlyList<GoldenCase> All()
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(System.IO.Path.Combine(Root, "golden", "manifest.json")));
        return doc.RootElement.GetProperty("cases").EnumerateArray().Select(c => new GoldenCase
        {
            Name = c.GetProperty("name").GetString()!,
            Dir = System.IO.Path.Combine(Root, "golden", c.GetProperty("dir").GetString()!),
            Items = c.GetProperty("items").EnumerateArray()
                .Select(i => (i.GetProperty("text_a").GetString()!, i.GetProperty("text_b").ValueKind == JsonValueKind.Null ? null : i.GetProperty("text_b").GetString()))
                .ToList(),
        }).ToList();
    }

    public static IEnumerable<object[]> Names() =>
        TestAssets.MissingReason(TestAssets.TinyRandom) is null
            ? All().Select(c => new object[] { c.Name })
            : [["(assets missing)"]];

    public static GoldenCase Get(string name) => All().Single(c => c.Name == name);

    public bool Has(string file) => File.Exists(System.IO.Path.Combine(Dir, file + ".npy"));

    /// <summary>The .npy file as a CPU tensor (float32 or int64 as stored).</summary>
    public Tensor Load(string file) => Npy.Read(System.IO.Path.Combine(Dir, file + ".npy")).ToTensor();
}
