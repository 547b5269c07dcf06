namespace BertSharp.Data.Tasks;

/// <summary>Reads a task's file with the reader its <see cref="TaskSpec"/> names.</summary>
public static class TaskData
{
    /// <summary>Text classification / regression tasks (GLUE, snli, imdb, csv).</summary>
    /// <param name="generic">Column options for <c>csv</c> (defaults: text, label); ignored by the other tasks.</param>
    public static TextDataset ReadText(TaskSpec task, string path, GenericTextOptions? generic = null)
    {
        if (FineTuneTasks.IsGlue(task)) return GlueReader.Read(task, path);
        return task.Name switch
        {
            "snli" => SnliReader.Read(path),
            "imdb" => ImdbReader.Read(path),
            "csv" => GenericTextReader.Read(path, generic ?? new GenericTextOptions()),
            _ => throw new ArgumentException($"task '{task.Name}' is not a text classification task"),
        };
    }

    /// <summary>Token classification tasks (conll-ner, conll-pos, ud-pos, ud-xpos).</summary>
    public static TokenDataset ReadTokens(TaskSpec task, string path) => task.Name switch
    {
        "conll-ner" => Conll2003Reader.Read(path, ConllColumn.Ner),
        "conll-pos" => Conll2003Reader.Read(path, ConllColumn.Pos),
        "ud-pos" => ConllUReader.Read(path, UdTagColumn.Upos),
        "ud-xpos" => ConllUReader.Read(path, UdTagColumn.Xpos),
        _ => throw new ArgumentException($"task '{task.Name}' is not a token classification task"),
    };

    /// <summary>
    /// The label list of a token task: the task's fixed list, or (ud-xpos) the ordinal-sorted union of the tags of
    /// <paramref name="datasets"/> (pass train and dev so both are covered).
    /// </summary>
    public static IReadOnlyList<string> TokenLabels(TaskSpec task, params TokenDataset[] datasets) =>
        task.Labels ?? datasets.SelectMany(d => d.DistinctTags()).Distinct().Order(StringComparer.Ordinal).ToArray();

    /// <summary>
    /// The label list of a text task: the task's fixed list, or for <c>csv</c> the union of the datasets' labels
    /// (numeric order when all are integers). Re-read the files with <see cref="GenericTextOptions.Labels"/> set to
    /// it so that train and dev share ids.
    /// </summary>
    public static IReadOnlyList<string>? TextLabels(TaskSpec task, params TextDataset[] datasets) =>
        task.Kind == TaskKind.Regression ? null
        : task.Labels ?? (datasets.All(d => d.Labels is null) ? null : GenericTextReader.SortLabels(datasets.SelectMany(d => d.Labels ?? []).Distinct()));
}
