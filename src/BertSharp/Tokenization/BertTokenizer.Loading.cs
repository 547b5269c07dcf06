using System.Text.Json;

namespace BertSharp.Tokenization;

public sealed partial class BertTokenizer
{
    /// <summary>Loads vocab.txt with explicit options.</summary>
    /// <exception cref="FileNotFoundException">no such file.</exception>
    /// <exception cref="FormatException">invalid UTF-8, empty, duplicate tokens, or missing special tokens.</exception>
    public static BertTokenizer FromVocabFile(string vocabPath, BertTokenizerOptions? options = null) =>
        new(Vocabulary.Load(vocabPath), options);

    /// <summary>
    /// Loads a model directory, in this order of preference:
    /// <list type="number">
    /// <item><c>tokenizer.json</c> (Hugging Face fast tokenizer; see <see cref="FromTokenizerJson"/>);</item>
    /// <item><c>vocab.txt</c> + <c>tokenizer_config.json</c> (<c>do_lower_case</c>, <c>strip_accents</c>,
    /// <c>tokenize_chinese_chars</c>, <c>never_split</c>, the special tokens, <c>additional_special_tokens</c>), with
    /// <c>special_tokens_map.json</c> for special tokens too;</item>
    /// <item><c>vocab.txt</c> alone (a Google release directory): cased when the directory name contains "cased" but
    /// not "uncased" (<c>cased_L-12_H-768_A-12</c>, <c>multi_cased_…</c>), otherwise uncased (the HF default).</item>
    /// </list>
    /// </summary>
    public static BertTokenizer FromDirectory(string dir)
    {
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"model directory not found: {dir}");
        var json = Path.Combine(dir, "tokenizer.json");
        if (File.Exists(json)) return FromTokenizerJson(json);
        var vocabPath = Path.Combine(dir, "vocab.txt");
        if (!File.Exists(vocabPath)) throw new FileNotFoundException($"{dir}: neither tokenizer.json nor vocab.txt found", vocabPath);
        var cfgPath = Path.Combine(dir, "tokenizer_config.json");
        var mapPath = Path.Combine(dir, "special_tokens_map.json");
        var options = new BertTokenizerOptions();
        if (!File.Exists(cfgPath))
        {
            var name = Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(dir))).ToLowerInvariant();
            bool cased = name.Contains("cased") && !name.Contains("uncased");
            options = options with { DoLowerCase = !cased };
        }
        else options = ApplyConfig(options, cfgPath, readCase: true);
        if (File.Exists(mapPath)) options = ApplyConfig(options, mapPath, readCase: false);
        return FromVocabFile(vocabPath, options);
    }

    static BertTokenizerOptions ApplyConfig(BertTokenizerOptions o, string path, bool readCase)
    {
        JsonDocument doc;
        try { doc = JsonDocument.Parse(TextFile.ReadAllText(path)); }
        catch (JsonException e) { throw new FormatException($"{path}: invalid JSON ({e.Message})"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object) throw new FormatException($"{path}: expected a JSON object");
            if (root.TryGetProperty("tokenizer_class", out var cls) && cls.ValueKind == JsonValueKind.String)
            {
                var c = cls.GetString()!;
                if (!c.StartsWith("Bert", StringComparison.Ordinal) && !c.StartsWith("DistilBert", StringComparison.Ordinal) && !c.StartsWith("Electra", StringComparison.Ordinal))
                    throw new FormatException($"{path}: tokenizer_class {c} is not a WordPiece/BERT tokenizer");
            }
            if (readCase)
            {
                if (Bool(root, "do_lower_case", path) is bool lc) o = o with { DoLowerCase = lc };
                if (root.TryGetProperty("strip_accents", out var sa) && sa.ValueKind != JsonValueKind.Null) o = o with { StripAccents = Bool(root, "strip_accents", path) };
                if (Bool(root, "tokenize_chinese_chars", path) is bool tc) o = o with { TokenizeChineseChars = tc };
                if (root.TryGetProperty("never_split", out var ns) && ns.ValueKind == JsonValueKind.Array)
                    o = o with { NeverSplit = ns.EnumerateArray().Select(x => x.GetString() ?? "").Where(s => s.Length > 0).ToArray() };
            }
            if (Token(root, "unk_token", path) is string unk) o = o with { UnkToken = unk };
            if (Token(root, "sep_token", path) is string sep) o = o with { SepToken = sep };
            if (Token(root, "pad_token", path) is string pad) o = o with { PadToken = pad };
            if (Token(root, "cls_token", path) is string clsTok) o = o with { ClsToken = clsTok };
            if (Token(root, "mask_token", path) is string mask) o = o with { MaskToken = mask };
            if (root.TryGetProperty("additional_special_tokens", out var add) && add.ValueKind == JsonValueKind.Array)
                o = o with { AdditionalSpecialTokens = add.EnumerateArray().Select(x => TokenText(x, path, "additional_special_tokens")).ToArray() };
        }
        return o;
    }

    static bool? Bool(JsonElement root, string name, string path)
    {
        if (!root.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw new FormatException($"{path}: {name} must be true, false or null (got {v.GetRawText()})"),
        };
    }

    static string? Token(JsonElement root, string name, string path) =>
        root.TryGetProperty(name, out var v) && v.ValueKind != JsonValueKind.Null ? TokenText(v, path, name) : null;

    // HF writes special tokens either as strings or as AddedToken objects {"content": ...}.
    static string TokenText(JsonElement v, string path, string name) => v.ValueKind switch
    {
        JsonValueKind.String => v.GetString()!,
        JsonValueKind.Object when v.TryGetProperty("content", out var c) && c.ValueKind == JsonValueKind.String => c.GetString()!,
        _ => throw new FormatException($"{path}: {name} must be a string or an object with \"content\" (got {v.GetRawText()})"),
    };

    /// <summary>
    /// Loads a Hugging Face <c>tokenizer.json</c>: a <c>WordPiece</c> model (vocab, <c>unk_token</c>,
    /// <c>continuing_subword_prefix</c>, <c>max_input_chars_per_word</c>), a <c>BertNormalizer</c> (clean_text,
    /// handle_chinese_chars, strip_accents, lowercase) or none, a <c>BertPreTokenizer</c> (or none/Whitespace-free
    /// equivalents are rejected), special tokens from <c>added_tokens</c> and the [CLS]/[SEP] of the post-processor.
    /// </summary>
    /// <exception cref="FormatException">a model other than WordPiece, unsupported normalizer/pre-tokenizer, ids that are not 0..n-1, missing special tokens.</exception>
    public static BertTokenizer FromTokenizerJson(string path)
    {
        // JsonElement accessors throw FormatException / InvalidOperationException without naming the file.
        try { return FromTokenizerJsonCore(path); }
        catch (Exception e) when (e is InvalidOperationException or KeyNotFoundException or IndexOutOfRangeException || (e is FormatException && !e.Message.StartsWith(path, StringComparison.Ordinal)))
        {
            throw new FormatException($"{path}: unexpected value in tokenizer.json ({e.Message})", e);
        }
    }

    static BertTokenizer FromTokenizerJsonCore(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"tokenizer.json not found: {path}", path);
        JsonDocument doc;
        try { doc = JsonDocument.Parse(TextFile.ReadAllText(path)); }
        catch (JsonException e) { throw new FormatException($"{path}: invalid JSON ({e.Message})"); }
        using (doc)
        {
            var root = doc.RootElement;
            if (!root.TryGetProperty("model", out var model) || model.ValueKind != JsonValueKind.Object)
                throw new FormatException($"{path}: no \"model\" object");
            var type = model.TryGetProperty("type", out var t) ? t.GetString() : null;
            // Older files omit the type; Rust then recognises the model by its fields.
            if (type is null && !model.TryGetProperty("merges", out _) &&
                (model.TryGetProperty("continuing_subword_prefix", out _) || model.TryGetProperty("max_input_chars_per_word", out _)))
                type = "WordPiece";
            if (type != "WordPiece")
                throw new FormatException($"{path}: model type {type ?? "(missing)"} is not supported; BertSharp implements WordPiece (BERT) tokenizers only");
            if (!model.TryGetProperty("vocab", out var vocabEl) || vocabEl.ValueKind != JsonValueKind.Object)
                throw new FormatException($"{path}: model.vocab must be an object of token → id");
            var pairs = new List<(string Token, int Id)>();
            foreach (var p in vocabEl.EnumerateObject())
            {
                if (p.Value.ValueKind != JsonValueKind.Number || !p.Value.TryGetInt32(out int id))
                    throw new FormatException($"{path}: model.vocab[{p.Name}] is not an integer id");
                pairs.Add((p.Name, id));
            }
            if (pairs.Count == 0) throw new FormatException($"{path}: the vocabulary is empty");
            var tokens = new string?[pairs.Count];
            foreach (var (tok, id) in pairs)
            {
                if (id < 0 || id >= tokens.Length) throw new FormatException($"{path}: vocabulary ids must be 0..{tokens.Length - 1}; '{tok}' has id {id}");
                if (tokens[id] is not null) throw new FormatException($"{path}: id {id} is used by both '{tokens[id]}' and '{tok}'");
                tokens[id] = tok;
            }
            var vocab = new Vocabulary(tokens!, path);

            var o = new BertTokenizerOptions();
            if (model.TryGetProperty("unk_token", out var unk) && unk.ValueKind == JsonValueKind.String) o = o with { UnkToken = unk.GetString()! };
            if (model.TryGetProperty("continuing_subword_prefix", out var pre) && pre.ValueKind == JsonValueKind.String) o = o with { ContinuingSubwordPrefix = pre.GetString()! };
            if (model.TryGetProperty("max_input_chars_per_word", out var mx) && mx.ValueKind == JsonValueKind.Number) o = o with { MaxInputCharsPerWord = mx.GetInt32() };

            if (root.TryGetProperty("normalizer", out var norm) && norm.ValueKind == JsonValueKind.Object)
            {
                var nt = norm.TryGetProperty("type", out var ntEl) ? ntEl.GetString() : null;
                if (nt != "BertNormalizer") throw new FormatException($"{path}: normalizer {nt ?? "(missing type)"} is not supported (BertNormalizer or none)");
                o = o with
                {
                    CleanText = Bool(norm, "clean_text", path) ?? true,
                    TokenizeChineseChars = Bool(norm, "handle_chinese_chars", path) ?? true,
                    StripAccents = Bool(norm, "strip_accents", path),
                    DoLowerCase = Bool(norm, "lowercase", path) ?? true,
                };
            }
            else o = o with { CleanText = false, TokenizeChineseChars = false, StripAccents = false, DoLowerCase = false };

            if (root.TryGetProperty("pre_tokenizer", out var pt) && pt.ValueKind == JsonValueKind.Object)
            {
                var ptt = pt.TryGetProperty("type", out var pttEl) ? pttEl.GetString() : null;
                if (ptt != "BertPreTokenizer") throw new FormatException($"{path}: pre_tokenizer {ptt ?? "(missing type)"} is not supported (BertPreTokenizer)");
            }

            // Special tokens: [CLS]/[SEP] from the post-processor, the rest from added_tokens by role name.
            var special = new List<string>();
            if (root.TryGetProperty("added_tokens", out var added) && added.ValueKind == JsonValueKind.Array)
                foreach (var a in added.EnumerateArray())
                {
                    var content = a.TryGetProperty("content", out var c) ? c.GetString() : null;
                    if (content is null) throw new FormatException($"{path}: an added token has no content");
                    if (a.TryGetProperty("id", out var aid) && aid.TryGetInt32(out int id) && (!vocab.TryGetId(content, out int vid) || vid != id))
                        throw new FormatException($"{path}: added token '{content}' has id {id}, which the WordPiece vocabulary does not give it");
                    if (!a.TryGetProperty("special", out var sp) || sp.ValueKind != JsonValueKind.False) special.Add(content);
                }
            string? cls = null, sep = null;
            if (root.TryGetProperty("post_processor", out var post) && post.ValueKind == JsonValueKind.Object)
            {
                var ptype = post.TryGetProperty("type", out var ptEl) ? ptEl.GetString() : null;
                if (ptype == "BertProcessing")
                {
                    cls = post.GetProperty("cls")[0].GetString();
                    sep = post.GetProperty("sep")[0].GetString();
                }
                else if (ptype == "TemplateProcessing")
                {
                    var single = post.GetProperty("single").EnumerateArray().Where(p => p.TryGetProperty("SpecialToken", out _))
                        .Select(p => p.GetProperty("SpecialToken").GetProperty("id").GetString()).ToList();
                    if (single.Count != 2) throw new FormatException($"{path}: TemplateProcessing must be [CLS] $A [SEP] (found {single.Count} special tokens in the single template)");
                    (cls, sep) = (single[0], single[1]);
                }
                else throw new FormatException($"{path}: post_processor {ptype ?? "(missing type)"} is not supported (BertProcessing or TemplateProcessing)");
            }
            string Pick(string? fromPost, string role, string fallback) =>
                fromPost ?? special.FirstOrDefault(s => s.Contains(role, StringComparison.OrdinalIgnoreCase)) ?? fallback;
            o = o with
            {
                ClsToken = Pick(cls, "CLS", o.ClsToken),
                SepToken = Pick(sep, "SEP", o.SepToken),
                PadToken = root.TryGetProperty("padding", out var pad) && pad.ValueKind == JsonValueKind.Object && pad.TryGetProperty("pad_token", out var pt2)
                    ? pt2.GetString()! : Pick(null, "PAD", o.PadToken),
                MaskToken = Pick(null, "MASK", o.MaskToken),
            };
            var known = new HashSet<string> { o.UnkToken, o.ClsToken, o.SepToken, o.PadToken, o.MaskToken };
            o = o with { AdditionalSpecialTokens = special.Where(s => !known.Contains(s)).ToArray() };
            try { return new BertTokenizer(vocab, o); }
            catch (ArgumentException e) { throw new FormatException($"{path}: {e.Message}", e); }
        }
    }
}
