namespace BertSharp.Tokenization;

/// <summary>Hugging Face <c>BertTokenizer</c> options, same names and defaults.</summary>
public sealed record BertTokenizerOptions
{
    public bool DoLowerCase { get; init; } = true;
    /// <summary>Null = follow <see cref="DoLowerCase"/> (HF semantics).</summary>
    public bool? StripAccents { get; init; }
    public bool TokenizeChineseChars { get; init; } = true;
    public IReadOnlyCollection<string> NeverSplit { get; init; } = Array.Empty<string>();
    public int MaxInputCharsPerWord { get; init; } = 100;
    public string UnkToken { get; init; } = "[UNK]";
    public string SepToken { get; init; } = "[SEP]";
    public string PadToken { get; init; } = "[PAD]";
    public string ClsToken { get; init; } = "[CLS]";
    public string MaskToken { get; init; } = "[MASK]";

    public bool EffectiveStripAccents => StripAccents ?? DoLowerCase;
    public IEnumerable<string> SpecialTokens => new[] { UnkToken, SepToken, PadToken, ClsToken, MaskToken };
}

public enum TruncationStrategy { LongestFirst, OnlyFirst, OnlySecond, DoNotTruncate }

public enum PaddingStrategy { DoNotPad, Longest, MaxLength }

/// <summary>Per-call encoding options (HF <c>__call__</c> arguments).</summary>
public sealed record EncodeOptions
{
    public bool AddSpecialTokens { get; init; } = true;
    /// <summary>Null = no truncation.</summary>
    public int? MaxLength { get; init; }
    public TruncationStrategy Truncation { get; init; } = TruncationStrategy.LongestFirst;
    /// <summary>Tokens of overlap between overflowing windows (requires <see cref="MaxLength"/>).</summary>
    public int Stride { get; init; }
    public bool ReturnOverflowing { get; init; }
    public PaddingStrategy Padding { get; init; } = PaddingStrategy.DoNotPad;
    public int? PadToMultipleOf { get; init; }

    public static EncodeOptions Default { get; } = new();
}

/// <summary>One encoded input (HF <c>BatchEncoding</c> for a single example).</summary>
public sealed class BertEncoding
{
    public required string[] Tokens { get; init; }
    public required int[] InputIds { get; init; }
    public required int[] TokenTypeIds { get; init; }
    public required int[] AttentionMask { get; init; }
    public required int[] SpecialTokensMask { get; init; }
    /// <summary>[start, end) in UTF-16 code units into the original text (or pair text); (0,0) for specials and padding.</summary>
    public required (int Start, int End)[] Offsets { get; init; }
    /// <summary>Index of the word (pre-tokenized unit) each token came from; null for specials/padding.</summary>
    public required int?[] WordIds { get; init; }
    /// <summary>0 = first text, 1 = pair text, null = special/padding.</summary>
    public required int?[] SequenceIds { get; init; }
    /// <summary>Overflowing windows when truncating with ReturnOverflowing/Stride.</summary>
    public List<BertEncoding> Overflowing { get; init; } = new();

    public int Length => InputIds.Length;
}
