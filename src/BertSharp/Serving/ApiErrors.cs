using System.Text.Json;

namespace BertSharp.Serving;

/// <summary>
/// A request the service refuses: answered with <see cref="Status"/> and the OpenAI error shape
/// <c>{"error": {"message", "type", "param", "code"}}</c>.
/// </summary>
public sealed class ApiException(int status, string message, string type = "invalid_request_error", string? param = null) : Exception(message)
{
    public int Status { get; } = status;
    public string Type { get; } = type;
    public string? Param { get; } = param;

    public static ApiException BadRequest(string message, string? param = null) => new(400, message, "invalid_request_error", param);
}

/// <summary>Reading and checking request bodies: size limit, JSON, field types, text limits.</summary>
static class RequestReader
{
    /// <summary>The body as a JSON object; 413 past <paramref name="maxBytes"/>, 400 for anything that is not a JSON object.</summary>
    public static async Task<JsonElement> ReadObject(Microsoft.AspNetCore.Http.HttpContext ctx, long maxBytes)
    {
        if (ctx.Request.ContentLength is long declared && declared > maxBytes)
            throw TooLarge(declared, maxBytes);
        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int n;
        while ((n = await ctx.Request.Body.ReadAsync(chunk, ctx.RequestAborted)) > 0)
        {
            if (buffer.Length + n > maxBytes) throw TooLarge(null, maxBytes);
            buffer.Write(chunk, 0, n);
        }
        if (buffer.Length == 0) throw ApiException.BadRequest("the request body is empty; send a JSON object");
        try
        {
            using var doc = JsonDocument.Parse(buffer.GetBuffer().AsMemory(0, (int)buffer.Length));
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw ApiException.BadRequest($"the request body must be a JSON object, not {Kind(doc.RootElement)}");
            return doc.RootElement.Clone();
        }
        catch (JsonException e)
        {
            throw ApiException.BadRequest($"the request body is not valid JSON: {e.Message}");
        }
    }

    static ApiException TooLarge(long? size, long max) =>
        new(413, $"the request body is {(size is long s ? $"{s} bytes" : "larger than the limit")}; at most {max} bytes are accepted", "request_too_large");

    static string Kind(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.Array => "an array",
        JsonValueKind.String => "a string",
        JsonValueKind.Number => "a number",
        JsonValueKind.True or JsonValueKind.False => "a boolean",
        JsonValueKind.Null => "null",
        _ => "an object",
    };

    /// <summary>A string or an array of strings under <paramref name="name"/>, checked against the text limits.</summary>
    public static List<string> Texts(JsonElement body, string name, ServeOptions limits, bool required = true)
    {
        if (!body.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
        {
            if (required) throw ApiException.BadRequest($"'{name}' is required: a string or an array of strings", name);
            return [];
        }
        var texts = new List<string>();
        if (v.ValueKind == JsonValueKind.String) texts.Add(v.GetString()!);
        else if (v.ValueKind == JsonValueKind.Array)
        {
            int i = 0;
            foreach (var item in v.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.String)
                    throw ApiException.BadRequest($"'{name}[{i}]' must be a string, not {Kind(item)}", $"{name}[{i}]");
                texts.Add(item.GetString()!);
                i++;
            }
            if (texts.Count == 0) throw ApiException.BadRequest($"'{name}' is an empty array; give at least one text", name);
        }
        else throw ApiException.BadRequest($"'{name}' must be a string or an array of strings, not {Kind(v)}", name);
        if (texts.Count > limits.MaxTexts)
            throw ApiException.BadRequest($"'{name}' has {texts.Count} texts; at most {limits.MaxTexts} per request", name);
        for (int i = 0; i < texts.Count; i++)
            if (texts[i].Length > limits.MaxChars)
                throw ApiException.BadRequest($"'{name}{(v.ValueKind == JsonValueKind.Array ? $"[{i}]" : "")}' is {texts[i].Length} characters long; at most {limits.MaxChars} per text",
                    v.ValueKind == JsonValueKind.Array ? $"{name}[{i}]" : name);
        return texts;
    }

    /// <summary>
    /// The optional second texts of pairs: absent, a string (one input), or an array with one entry per input where
    /// null means "no pair" for that row.
    /// </summary>
    public static List<string?>? Pairs(JsonElement body, string name, int inputs, ServeOptions limits)
    {
        if (!body.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        List<string?> pairs;
        if (v.ValueKind == JsonValueKind.String) pairs = [v.GetString()];
        else if (v.ValueKind == JsonValueKind.Array)
        {
            pairs = [];
            int i = 0;
            foreach (var item in v.EnumerateArray())
            {
                if (item.ValueKind is not (JsonValueKind.String or JsonValueKind.Null))
                    throw ApiException.BadRequest($"'{name}[{i}]' must be a string or null, not {Kind(item)}", $"{name}[{i}]");
                pairs.Add(item.ValueKind == JsonValueKind.Null ? null : item.GetString());
                i++;
            }
        }
        else throw ApiException.BadRequest($"'{name}' must be a string or an array of strings, not {Kind(v)}", name);
        if (pairs.Count != inputs)
            throw ApiException.BadRequest($"'{name}' has {pairs.Count} texts but 'input' has {inputs}; give one pair text (or null) per input", name);
        for (int i = 0; i < pairs.Count; i++)
            if (pairs[i] is { } p && p.Length > limits.MaxChars)
                throw ApiException.BadRequest($"'{name}[{i}]' is {p.Length} characters long; at most {limits.MaxChars} per text", $"{name}[{i}]");
        return pairs;
    }

    /// <summary>One string under <paramref name="name"/>, checked against the character limit.</summary>
    public static string Text(JsonElement body, string name, ServeOptions limits)
    {
        if (!body.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null)
            throw ApiException.BadRequest($"'{name}' is required: a string", name);
        if (v.ValueKind != JsonValueKind.String) throw ApiException.BadRequest($"'{name}' must be a string, not {Kind(v)}", name);
        var s = v.GetString()!;
        if (s.Length > limits.MaxChars) throw ApiException.BadRequest($"'{name}' is {s.Length} characters long; at most {limits.MaxChars} per text", name);
        return s;
    }

    public static string? OptionalString(JsonElement body, string name)
    {
        if (!body.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return null;
        if (v.ValueKind != JsonValueKind.String) throw ApiException.BadRequest($"'{name}' must be a string, not {Kind(v)}", name);
        return v.GetString();
    }

    public static int Int(JsonElement body, string name, int fallback, int min, int max)
    {
        if (!body.TryGetProperty(name, out var v) || v.ValueKind == JsonValueKind.Null) return fallback;
        if (v.ValueKind != JsonValueKind.Number || !v.TryGetInt32(out var n))
            throw ApiException.BadRequest($"'{name}' must be an integer, not {Kind(v)}", name);
        if (n < min || n > max) throw ApiException.BadRequest($"'{name}' must be in {min}..{max} (got {n})", name);
        return n;
    }
}
