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

    /// <summary>
    /// SQuAD v1.1 JSON: <paramref name="articles"/> articles of 4 paragraphs, one question each ("who wrote the
    /// OBJECT ?", answer the name after "written by"), filler of varying length before and after the fact so
    /// that answer positions differ and longer contexts overflow into several windows.
    /// </summary>
    public string Squad(string name = "squad.json", int articles = 8, int seed = 3)
    {
        string[] names = ["alice", "bob", "carol", "david", "emma", "frank", "grace", "henry"];
        string[] objects = ["book", "song", "film", "poem", "play", "letter"];
        string[] filler = ["it", "is", "a", "nice", "day", "and", "we", "went", "home", "early", "with", "our", "friends"];
        var rng = new Random(seed);
        string Fill(int n) => string.Join(' ', Enumerable.Range(0, n).Select(_ => filler[rng.Next(filler.Length)]));
        var data = new System.Text.Json.Nodes.JsonArray();
        int id = 0;
        for (int a = 0; a < articles; a++)
        {
            var paragraphs = new System.Text.Json.Nodes.JsonArray();
            for (int p = 0; p < 4; p++)
            {
                var obj = objects[rng.Next(objects.Length)];
                var who = names[rng.Next(names.Length)];
                var before = Fill(rng.Next(0, 12));
                var prefix = (before.Length > 0 ? before + " . " : "") + $"the {obj} was written by ";
                var context = prefix + who + " . " + Fill(rng.Next(2, 14)) + " .";
                paragraphs.Add(new System.Text.Json.Nodes.JsonObject
                {
                    ["context"] = context,
                    ["qas"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject
                    {
                        ["id"] = $"q{id++}", ["question"] = $"who wrote the {obj} ?",
                        ["answers"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject { ["text"] = who, ["answer_start"] = prefix.Length }),
                    }),
                });
            }
            data.Add(new System.Text.Json.Nodes.JsonObject { ["title"] = $"Article_{a}", ["paragraphs"] = paragraphs });
        }
        var path = PathOf(name);
        File.WriteAllText(path, new System.Text.Json.Nodes.JsonObject { ["version"] = "1.1", ["data"] = data }.ToJsonString());
        return path;
    }

    public void Dispose()
    {
        try { Directory.Delete(Dir, true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
    }
}
