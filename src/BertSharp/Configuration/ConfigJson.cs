using System.Reflection;
using System.Text.Json;
using System.Text.Json.Serialization;

namespace BertSharp.Configuration;

/// <summary>
/// The JSON conventions of every configuration section (<c>train_cfg</c>, <c>data_cfg</c>, future fine-tuning
/// sections): snake_case keys from <see cref="JsonPropertyNameAttribute"/>, every key written (nulls included),
/// comments and trailing commas allowed, unknown keys an error (typos), enums as their lower-case names.
/// </summary>
public static class ConfigJson
{
    public static readonly JsonSerializerOptions Options = new()
    {
        WriteIndented = true,
        DefaultIgnoreCondition = JsonIgnoreCondition.Never,
        ReadCommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        UnmappedMemberHandling = JsonUnmappedMemberHandling.Disallow,
        Converters = { new ConfigEnumConverterFactory() },
    };

    /// <summary>The configuration names of an enum's members: <see cref="JsonStringEnumMemberNameAttribute"/> or the
    /// snake_case member name.</summary>
    public static IReadOnlyList<(string Name, object Value)> EnumNames(Type enumType) =>
        [.. enumType.GetFields(BindingFlags.Public | BindingFlags.Static).Select(f =>
            (f.GetCustomAttribute<JsonStringEnumMemberNameAttribute>()?.Name ?? JsonNamingPolicy.SnakeCaseLower.ConvertName(f.Name), f.GetValue(null)!))];

    /// <summary>The member named <paramref name="text"/> (case-insensitive); the error lists the names.</summary>
    public static object ParseEnum(Type enumType, string text)
    {
        foreach (var (name, value) in EnumNames(enumType))
            if (string.Equals(name, text.Trim(), StringComparison.OrdinalIgnoreCase)) return value;
        throw new FormatException($"expected {EnumChoices(enumType)} (got '{text}')");
    }

    /// <summary>"a, b or c".</summary>
    public static string EnumChoices(Type enumType)
    {
        var names = EnumNames(enumType).Select(n => n.Name).ToList();
        return names.Count == 1 ? names[0] : string.Join(", ", names.Take(names.Count - 1)) + " or " + names[^1];
    }

    public static string EnumName(object value) => EnumNames(value.GetType()).First(n => Equals(n.Value, value)).Name;

    sealed class ConfigEnumConverterFactory : JsonConverterFactory
    {
        public override bool CanConvert(Type typeToConvert) => typeToConvert.IsEnum;

        public override JsonConverter CreateConverter(Type typeToConvert, JsonSerializerOptions options) =>
            (JsonConverter)Activator.CreateInstance(typeof(EnumConverter<>).MakeGenericType(typeToConvert))!;
    }

    sealed class EnumConverter<T> : JsonConverter<T> where T : struct, Enum
    {
        public override T Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
        {
            if (reader.TokenType != JsonTokenType.String) throw new JsonException($"expected {EnumChoices(typeof(T))} (got a {reader.TokenType})");
            try
            {
                return (T)ParseEnum(typeof(T), reader.GetString()!);
            }
            catch (FormatException e)
            {
                throw new JsonException(e.Message);
            }
        }

        public override void Write(Utf8JsonWriter writer, T value, JsonSerializerOptions options) => writer.WriteStringValue(EnumName(value));
    }
}
