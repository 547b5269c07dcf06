using System.CommandLine;
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
            var inputs = file is null
                ? [(args[0], args.Length > 1 ? args[1] : null)]
                : TextFile.ReadLines(file).Where(l => l.Length > 0).Select(l =>
                {
                    int tab = l.IndexOf('\t');
                    return tab < 0 ? (l, (string?)null) : (l[..tab], l[(tab + 1)..]);
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
            var encodings = tokenizer.EncodeBatch(inputs.Select(p => p.Item1).ToList(), inputs.Select(p => p.Item2).ToList(), options);

            for (int i = 0; i < encodings.Length; i++)
            {
                var (text, pair) = inputs[i];
                if (parse.GetValue(json))
                {
                    var obj = ToJson(encodings[i], text, pair);
                    if (s > 0) obj["overflow"] = encodings[i].Overflowing.Select(o => ToJson(o, text, pair)).ToList();
                    Cli.WriteJson(obj);
                }
                else WriteTable(encodings[i], text, pair, s > 0);
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

    static Dictionary<string, object> ToJson(BertEncoding e, string text, string? pair) => new()
    {
        ["tokens"] = e.Tokens,
        ["input_ids"] = e.InputIds,
        ["token_type_ids"] = e.TokenTypeIds,
        ["attention_mask"] = e.AttentionMask,
        ["special_tokens_mask"] = e.SpecialTokensMask,
        ["offsets"] = e.GetCodePointOffsets(text, pair).Select(o => new[] { o.Start, o.End }).ToArray(),
    };

    static void WriteTable(BertEncoding e, string text, string? pair, bool windows)
    {
        var console = AnsiConsole.Create(new AnsiConsoleSettings { Out = new AnsiConsoleOutput(Console.Out) });
        void One(BertEncoding enc, string title)
        {
            var table = new Table { Title = new TableTitle(Markup.Escape(title)) }.AddColumns("#", "token", "id", "type", "special", "offsets", "text");
            var cp = enc.GetCodePointOffsets(text, pair);
            for (int i = 0; i < enc.Length; i++)
            {
                var src = enc.SequenceIds[i] == 1 ? pair! : text;
                var span = enc.SequenceIds[i] is null ? "" : src[enc.Offsets[i].Start..enc.Offsets[i].End];
                table.AddRow(i.ToString(), Markup.Escape(enc.Tokens[i]), enc.InputIds[i].ToString(), enc.TokenTypeIds[i].ToString(),
                    enc.SpecialTokensMask[i].ToString(), $"{cp[i].Start}-{cp[i].End}", Markup.Escape(span));
            }
            console.Write(table);
        }
        One(e, pair is null ? $"{e.Length} tokens" : $"{e.Length} tokens (pair)");
        if (windows)
            for (int w = 0; w < e.Overflowing.Count; w++) One(e.Overflowing[w], $"overflow window {w + 1}/{e.Overflowing.Count}");
    }
}
