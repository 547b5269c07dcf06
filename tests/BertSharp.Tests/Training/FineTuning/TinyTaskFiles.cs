namespace BertSharp.Tests.Training.FineTuning;

/// <summary>Small synthetic task files for the fine-tuning tests (a temporary directory, deleted on dispose).</summary>
public sealed class TinyTaskFiles : IDisposable
{
    public string Dir { get; } = Directory.CreateTempSubdirectory("bertsharp-ftp-").FullName;

    public string PathOf(string name) => System.IO.Path.Combine(Dir, name);

    /// <summary>SST-2 TSV (header, sentence TAB label) of <paramref name="count"/> sentences whose label is carried by one word.</summary>
    public string Sst2(string name = "train.tsv", int count = 32, int seed = 5)
    {
        string[] good = ["good", "great", "fine", "nice"], bad = ["bad", "awful", "poor", "dull"];
        var rng = new Random(seed);
        var lines = new List<string> { "sentence\tlabel" };
        for (int i = 0; i < count; i++)
        {
            int label = i % 2;
            var w = (label == 1 ? good : bad)[rng.Next(4)];
            lines.Add($"the film was {w} and the story {(rng.Next(2) == 0 ? "too" : "as well")} .\t{label}");
        }
        var p = PathOf(name);
        File.WriteAllLines(p, lines);
        return p;
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
