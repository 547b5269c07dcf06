using System.Text.Json;
using System.Text.Json.Nodes;

namespace BertSharp.Serving;

/// <summary>The OpenAPI 3.0 document of <c>/openapi.json</c>: the routes this server has, their request fields and an example of each.</summary>
static class OpenApiDocument
{
    static JsonObject Str(string description) => new() { ["type"] = "string", ["description"] = description };

    static JsonObject StrOrArray(string description) => new()
    {
        ["description"] = description,
        ["oneOf"] = new JsonArray(new JsonObject { ["type"] = "string" }, new JsonObject { ["type"] = "array", ["items"] = new JsonObject { ["type"] = "string" } }),
    };

    static readonly JsonObject ModelField = Str("served model name (GET /v1/models); default: the first model that supports the route");

    static (string Summary, JsonObject Properties, string[] Required, JsonObject Example) Describe(string task) => task switch
    {
        ServeTasks.Embeddings => ("Sentence embeddings, OpenAI embeddings API shape",
            new JsonObject { ["input"] = StrOrArray("text(s) to embed"), ["model"] = ModelField.DeepClone(), ["encoding_format"] = Str("float (default) or base64 (little-endian float32)"), ["dimensions"] = new JsonObject { ["type"] = "integer", ["description"] = "must equal the model's hidden size if given" } },
            ["input"], new JsonObject { ["input"] = new JsonArray("A man is eating food.", "A man is riding a horse.") }),
        ServeTasks.FillMask => ("Top-k predictions for every [MASK]",
            new JsonObject { ["input"] = Str("text with one or more [MASK] tokens"), ["top_k"] = new JsonObject { ["type"] = "integer", ["default"] = 5 }, ["model"] = ModelField.DeepClone() },
            ["input"], new JsonObject { ["input"] = "The capital of France is [MASK].", ["top_k"] = 5 }),
        ServeTasks.Nsp => ("Next-sentence prediction: P(text_b follows text_a)",
            new JsonObject { ["text_a"] = Str("first sentence"), ["text_b"] = Str("second sentence"), ["model"] = ModelField.DeepClone() },
            ["text_a", "text_b"], new JsonObject { ["text_a"] = "I went to the store.", ["text_b"] = "I bought some milk." }),
        ServeTasks.Classify => ("Sequence (or pair) classification with id2label scores",
            new JsonObject { ["input"] = StrOrArray("text(s)"), ["text_pair"] = StrOrArray("second text of each pair (optional, one per input)"), ["model"] = ModelField.DeepClone() },
            ["input"], new JsonObject { ["input"] = "A soccer game with multiple males playing.", ["text_pair"] = "Some men are playing a sport." }),
        ServeTasks.Ner => ("Token classification: word-level labels and grouped entities (UTF-16 offsets)",
            new JsonObject { ["input"] = StrOrArray("text(s)"), ["model"] = ModelField.DeepClone() },
            ["input"], new JsonObject { ["input"] = "Peter Blackburn visited Brussels." }),
        ServeTasks.Qa => ("Extractive question answering: best span of the context (UTF-16 offsets)",
            new JsonObject { ["question"] = StrOrArray("question(s)"), ["context"] = StrOrArray("context(s), one per question"), ["model"] = ModelField.DeepClone() },
            ["question", "context"], new JsonObject { ["question"] = "What is the capital of France?", ["context"] = "Paris is the capital of France." }),
        _ => ("WordPiece tokens, ids, type ids and UTF-16 offsets",
            new JsonObject { ["input"] = StrOrArray("text(s)"), ["text_pair"] = StrOrArray("pair text(s) (optional)"), ["model"] = ModelField.DeepClone() },
            ["input"], new JsonObject { ["input"] = "Hello, world!" }),
    };

    static JsonObject JsonResponse(string description) => new()
    {
        ["description"] = description,
        ["content"] = new JsonObject { ["application/json"] = new JsonObject { ["schema"] = new JsonObject { ["type"] = "object" } } },
    };

    static JsonObject Errors(JsonObject responses)
    {
        foreach (var (code, what) in new[] { ("400", "bad input: {\"error\": {\"message\", \"type\", \"param\"}}"), ("401", "missing or wrong API key"),
                     ("404", "unknown model"), ("413", "body over the size limit"), ("429", "the model's queue is full") })
            responses[code] = JsonResponse(what);
        return responses;
    }

    public static string Write(IEnumerable<(string Task, string Path)> routes)
    {
        var paths = new JsonObject
        {
            ["/health"] = new JsonObject { ["get"] = new JsonObject { ["summary"] = "Liveness and the served model names", ["responses"] = new JsonObject { ["200"] = JsonResponse("ok") } } },
            ["/v1/models"] = new JsonObject { ["get"] = new JsonObject { ["summary"] = "Served models, their tasks, labels and sizes", ["responses"] = new JsonObject { ["200"] = JsonResponse("model list") } } },
            ["/metrics"] = new JsonObject { ["get"] = new JsonObject { ["summary"] = "Prometheus metrics (text format 0.0.4)", ["responses"] = new JsonObject { ["200"] = new JsonObject { ["description"] = "metrics", ["content"] = new JsonObject { ["text/plain"] = new JsonObject() } } } } },
        };
        foreach (var (task, path) in routes)
        {
            var (summary, props, required, example) = Describe(task);
            paths[path] = new JsonObject
            {
                ["post"] = new JsonObject
                {
                    ["summary"] = summary,
                    ["requestBody"] = new JsonObject
                    {
                        ["required"] = true,
                        ["content"] = new JsonObject
                        {
                            ["application/json"] = new JsonObject
                            {
                                ["schema"] = new JsonObject { ["type"] = "object", ["properties"] = props, ["required"] = new JsonArray(required.Select(r => (JsonNode)r!).ToArray()) },
                                ["example"] = example,
                            },
                        },
                    },
                    ["responses"] = Errors(new JsonObject { ["200"] = JsonResponse("result") }),
                },
            };
        }
        var doc = new JsonObject
        {
            ["openapi"] = "3.0.3",
            ["info"] = new JsonObject { ["title"] = "BertSharp serve", ["version"] = typeof(OpenApiDocument).Assembly.GetName().Version?.ToString() ?? "0" },
            ["components"] = new JsonObject { ["securitySchemes"] = new JsonObject { ["bearer"] = new JsonObject { ["type"] = "http", ["scheme"] = "bearer" } } },
            ["paths"] = paths,
        };
        return doc.ToJsonString(new JsonSerializerOptions { WriteIndented = true });
    }
}
