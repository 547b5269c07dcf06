namespace BertSharp.Data;

/// <summary>
/// One document of a pretraining corpus: its sentences in order (raw text, not yet tokenized).
/// <paramref name="Source"/> says where it came from (<c>file:line</c>) for diagnostics.
/// </summary>
public sealed record Document(string Source, IReadOnlyList<string> Sentences);
