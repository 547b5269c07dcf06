using System.CommandLine;
using System.Text;
using System.Text.Json;
using BertSharp.Inference;
using BertSharp.Tokenization;
using Spectre.Console;

namespace BertSharp.Cli;

/// <summary>
/// <c>bert tokenize</c>: WordPiece-tokenize texts (or pairs) exactly like Hugging Face's fast BERT tokenizer and show
/// tokens, ids, masks and offsets, as a table or as one JSON object per input.
/// </summary>
public static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<string?>("--model") { Description = "Model/tokenizer directory (tokenizer.json, or vocab.txt + tokenizer_config.json)" };
        var vocab = new Option<string?>("--vocab") { Description = "A vocab.txt file (uncased unless --cased)" };
        var cased = new Option<bool>("--cased") { Description = "With --vocab: keep case and accents (do_lower_case=false)" };
        var input = new Option<string?>("--input") { Description = "UTF-8 file, one text per line; a TAB separates a pair (empty lines are skipped)" };
        var maxLength = new Option<int?>("--max-length") { Description = "Truncate to this many tokens, special tokens included" };
        var truncation = new Option<string>("--truncation") { Description = "longest_first | only_first | only_second", DefaultValueFactory = _ => "longest_first" };
        var stride = new Option<int>("--stride") { Description = "Overlap between overflowing windows (needs --max-length); prints every window" };
        var json = new Option<bool>("--json") { Description = "One JSON object per input (offsets in code points, as Hugging Face reports them)" };
        var texts = new Argument<string[]>("texts") { Description = "A text, or a text and its pair", Arity = ArgumentArity.ZeroOrMore };

        var cmd = new Command("tokenize", "Tokenize text like Hugging Face's BERT tokenizer (tokens, ids, masks, offsets)");
        foreach (var o in new Option[] { model, vocab, cased, input, maxLength, truncation, stride, json }) cmd.Options.Add(o);
        cmd.Arguments.Add(texts);
        cmd.SetAction(parse => Cli.Run(parse, () =>
        {
            var m = parse.GetValue(model);
            var v = parse.GetValue(vocab);
            if ((m is null) == (v is null)) throw new ArgumentException("give exactly one of --model DIR or --vocab FILE");
            if (parse.GetValue(cased) && v is null) throw new ArgumentException("--cased only applies to --vocab (a model directory says its own case)");
            var tokenizer = m is not null
                ? BertTokenizer.FromDirectory(ModelResolver.Resolve(m))
                : BertTokenizer.FromVocabFile(v!, new BertTokenizerOptions { DoLowerCase = !parse.GetValue(cased) });

            var args = parse.GetValue(texts) ?? [];
            var file = parse.GetValue(input);
            if (args.Length > 2) throw new ArgumentException($"give at most two texts (a text and its pair); got {args.Length}");
            if ((args.Length == 0) == (file is null)) throw new ArgumentException("give a text (and optionally its pair) or --input FILE, not both");
            var lines = file is null ? null : TextFile.ReadLines(file).Select((l, i) => (Text: l, Where: $"{file}:{i + 1}")).Where(l => l.Text.Length > 0).ToList();
            var inputs = lines is null
                ? [(args[0], args.Length > 1 ? args[1] : null)]
                : lines.Select(l =>
                {
                    int tab = l.Text.IndexOf('\t');
                    return tab < 0 ? (l.Text, (string?)null) : (l.Text[..tab], l.Text[(tab + 1)..]);
                }).ToList();

            int s = parse.GetValue(stride);
            int? max = parse.GetValue(maxLength);
            if (s < 0) throw new ArgumentException("--stride must be non-negative");
            if (s > 0 && max is null) throw new ArgumentException("--stride needs --max-length");
            if (max is <= 0) throw new ArgumentException("--max-length must be positive");
            var options = new EncodeOptions
            {
                MaxLength = max,
                Truncation = ParseTruncation(parse.GetValue(truncation)!),
                Stride = s,
                ReturnOverflowing = s > 0,
            };
            // Encode in chunks of lines and write each chunk out before the next: memory stays bounded by the chunk,
            // not the file (each input's output is streamed too, see WriteJson / WriteTable).
            const int ChunkLines = 256;
            bool asJson = parse.GetValue(json);
            var stdout = Console.Out;
            for (int first = 0; first < inputs.Count; first += ChunkLines)
            {
                var chunk = inputs.GetRange(first, Math.Min(ChunkLines, inputs.Count - first));
                var encodings = tokenizer.EncodeBatch(chunk.Select(p => p.Item1).ToList(), chunk.Select(p => p.Item2).ToList(), options);
                for (int i = 0; i < encodings.Length; i++)
                {
                    var (text, pair) = chunk[i];
                    // Say so when a non-empty input yields nothing but the special tokens (e.g. a file of NUL bytes).
                    if (encodings[i].SpecialTokensMask.All(m => m == 1) && (text + pair).Length > 0)
                        Console.Error.WriteLine($"bert: note: {lines?[first + i].Where ?? "the text"}: no tokens: its {(text + pair).Length:N0} characters are all " +
                            "NUL, control characters or whitespace, which BERT's text cleaning removes");
                    var cpText = new CodePointIndex(text);
                    var cpPair = pair is null ? null : new CodePointIndex(pair);
                    if (asJson) WriteJson(stdout, encodings[i], cpText, cpPair, s > 0);
                    else WriteTable(encodings[i], cpText, cpPair, s > 0);
                }
            }
            return 0;
        }));
        return cmd;
    }

    static TruncationStrategy ParseTruncation(string s) => s switch
    {
        "longest_first" => TruncationStrategy.LongestFirst,
        "only_first" => TruncationStrategy.OnlyFirst,
        "only_second" => TruncationStrategy.OnlySecond,
        _ => throw new ArgumentException($"--truncation must be longest_first, only_first or only_second (got '{s}')"),
    };

    /// <summary>
    /// One JSON object per input on one line — tokens, input_ids, token_type_ids, attention_mask, special_tokens_mask,
    /// offsets (code points) and, with windows, "overflow" — written through a small buffer that is flushed as it fills,
    /// so a million-token line never exists as one string.
    /// </summary>
    static void WriteJson(TextWriter output, BertEncoding e, CodePointIndex text, CodePointIndex? pair, bool windows)
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(1 << 16);
        using var w = new Utf8JsonWriter(buffer);
        void Drain(bool force)
        {
            if (!force && w.BytesPending + buffer.WrittenCount < (1 << 16)) return;
            w.Flush();
            output.Write(Encoding.UTF8.GetString(buffer.WrittenSpan));
            buffer.ResetWrittenCount();
        }
        void Ints(string name, int[] values)
        {
            w.WriteStartArray(name);
            foreach (var v in values) { w.WriteNumberValue(v); Drain(false); }
            w.WriteEndArray();
        }
        void One(BertEncoding enc, bool withOverflow)
        {
            w.WriteStartObject();
            w.WriteStartArray("tokens");
            foreach (var t in enc.Tokens) { w.WriteStringValue(t); Drain(false); }
            w.WriteEndArray();
            Ints("input_ids", enc.InputIds);
            Ints("token_type_ids", enc.TokenTypeIds);
            Ints("attention_mask", enc.AttentionMask);
            Ints("special_tokens_mask", enc.SpecialTokensMask);
            w.WriteStartArray("offsets");
            foreach (var (start, end) in enc.GetCodePointOffsets(text, pair))
            {
                w.WriteStartArray();
                w.WriteNumberValue(start);
                w.WriteNumberValue(end);
                w.WriteEndArray();
                Drain(false);
            }
            w.WriteEndArray();
            if (withOverflow)
            {
                w.WriteStartArray("overflow");
                foreach (var o in enc.Overflowing) One(o, false);
                w.WriteEndArray();
            }
            w.WriteEndObject();
        }
        One(e, windows);
        Drain(true);
        output.WriteLine();
    }

    /// <summary>Rows per table: longer encodings print as consecutive tables, so the renderer's memory stays bounded.</summary>
    internal const int TableRows = 1000;

    static void WriteTable(BertEncoding e, CodePointIndex text, CodePointIndex? pair, bool windows)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        void One(BertEncoding enc, string title)
        {
            var cp = enc.GetCodePointOffsets(text, pair);
            for (int first = 0; first == 0 || first < enc.Length; first += TableRows)
            {
                int last = Math.Min(first + TableRows, enc.Length);
                var pageTitle = enc.Length <= TableRows ? title : $"{title}, rows {first}-{last - 1}";
                var table = new Table { Title = new TableTitle(Markup.Escape(pageTitle)) }.AddColumns("#", "token", "id", "type", "special", "offsets", "text");
                for (int i = first; i < last; i++)
                {
                    var src = enc.SequenceIds[i] == 1 ? pair!.Text : text.Text;
                    var span = enc.SequenceIds[i] is null ? "" : src[enc.Offsets[i].Start..enc.Offsets[i].End];
                    table.AddRow(i.ToString(), Markup.Escape(enc.Tokens[i]), enc.InputIds[i].ToString(), enc.TokenTypeIds[i].ToString(),
                        enc.SpecialTokensMask[i].ToString(), $"{cp[i].Start}-{cp[i].End}", Markup.Escape(span));
                }
                console.Write(table);
            }
        }
        One(e, pair is null ? $"{e.Length} tokens" : $"{e.Length} tokens (pair)");
        if (windows)
            for (int w = 0; w < e.Overflowing.Count; w++) One(e.Overflowing[w], $"overflow window {w + 1}/{e.Overflowing.Count}");
    }
}
