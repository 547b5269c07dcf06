using System.Collections;
using System.Globalization;
using System.Linq.Expressions;
using System.Reflection;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.Json.Serialization;

namespace BertSharp.Configuration;

/// <summary>
/// One command-line flag bound to one key of a configuration section record. Everything but the flag name and the
/// description is read off the record: the JSON key (its <see cref="JsonPropertyNameAttribute"/>), the value type and
/// the default (a freshly constructed record), so the flag, its help text and the JSON key cannot disagree.
/// </summary>
public sealed class ConfigOption
{
    readonly Func<object, object?> _read;

    internal ConfigOption(string flag, string section, PropertyInfo property, string description, string? valueName,
        JsonNode? switchValue, IReadOnlyList<string> replaces, JsonNode? defaultValue)
    {
        Flag = flag;
        Section = section;
        Key = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name
            ?? throw new ArgumentException($"{property.DeclaringType?.Name}.{property.Name} has no [JsonPropertyName]");
        PropertyType = property.PropertyType;
        IsList = PropertyType != typeof(string) && typeof(IEnumerable).IsAssignableFrom(PropertyType);
        ValueType = IsList ? typeof(string) : Nullable.GetUnderlyingType(PropertyType) ?? PropertyType;
        Description = description;
        SwitchValue = switchValue;
        Replaces = replaces;
        Default = defaultValue;
        ValueName = switchValue is not null ? "" : valueName ?? DefaultValueName(ValueType);
        _read = property.GetValue;
    }

    /// <summary>The flag, e.g. <c>--batch-size</c>.</summary>
    public string Flag { get; }
    /// <summary>The configuration section, e.g. <c>train_cfg</c>.</summary>
    public string Section { get; }
    /// <summary>The key inside the section, e.g. <c>batch_size</c>.</summary>
    public string Key { get; }
    /// <summary>The record property's type.</summary>
    public Type PropertyType { get; }
    /// <summary>The type of one value (the underlying type of a nullable; string for lists).</summary>
    public Type ValueType { get; }
    /// <summary>A repeatable flag whose values form a JSON array.</summary>
    public bool IsList { get; }
    /// <summary>Set for a flag that takes no value: giving it sets <see cref="Key"/> to this.</summary>
    public JsonNode? SwitchValue { get; }
    public bool IsSwitch => SwitchValue is not null;
    /// <summary>Keys of the same section reset to null when this flag is given (e.g. --steps replaces epochs).</summary>
    public IReadOnlyList<string> Replaces { get; }
    /// <summary>The record's default for <see cref="Key"/>, as JSON.</summary>
    public JsonNode? Default { get; }
    public string Description { get; }
    /// <summary>The placeholder in the help (<c>INT</c>, <c>NUMBER</c>, <c>dynamic|static</c>, <c>FILE</c> …).</summary>
    public string ValueName { get; }

    /// <summary>The description followed by the default (when the record has one that is worth showing).</summary>
    public string HelpText => DefaultText is { } d ? $"{Description} (default {d})" : Description;

    /// <summary>The default as the help prints it; null for switches, null defaults and empty lists.</summary>
    public string? DefaultText => IsSwitch || Default is null || Default is JsonArray { Count: 0 } ? null
        : Default is JsonValue v && v.TryGetValue(out string? s) ? s
        : Default.ToJsonString();

    /// <summary>The value of this option's key in a section record.</summary>
    public object? Read(object section) => _read(section);

    /// <summary>The JSON value for the flag's argument(s); a bad value is an <see cref="ArgumentException"/> naming the flag.</summary>
    public JsonNode? Parse(IReadOnlyList<string> tokens)
    {
        if (IsSwitch) return SwitchValue!.DeepClone();
        if (IsList) return new JsonArray([.. tokens.Select(t => (JsonNode)JsonValue.Create(t)!)]);
        if (tokens.Count != 1) throw new ArgumentException($"{Flag}: expected one value (got {tokens.Count})");
        var text = tokens[0];
        var inv = CultureInfo.InvariantCulture;
        if (ValueType == typeof(string)) return JsonValue.Create(text);
        if (ValueType == typeof(int) && int.TryParse(text, NumberStyles.Integer, inv, out var i)) return JsonValue.Create(i);
        if (ValueType == typeof(long) && long.TryParse(text, NumberStyles.Integer, inv, out var l)) return JsonValue.Create(l);
        if (ValueType == typeof(double) && double.TryParse(text, NumberStyles.Float, inv, out var d) && double.IsFinite(d)) return JsonValue.Create(d);
        if (ValueType.IsEnum)
        {
            try { return JsonValue.Create(ConfigJson.EnumName(ConfigJson.ParseEnum(ValueType, text))); }
            catch (FormatException e) { throw new ArgumentException($"{Flag}: {e.Message}"); }
        }
        throw new ArgumentException($"{Flag}: expected {Describe(ValueType)} (got '{text}')");
    }

    static string Describe(Type t) => t == typeof(int) || t == typeof(long) ? "an integer" : t == typeof(double) ? "a number" : t.Name;

    static string DefaultValueName(Type t) =>
        t == typeof(int) || t == typeof(long) ? "INT" : t == typeof(double) ? "NUMBER"
        : t.IsEnum ? string.Join('|', ConfigJson.EnumNames(t).Select(n => n.Name)) : "VALUE";
}

/// <summary>The flags of one configuration section record <typeparamref name="T"/>: one line per flag.</summary>
public sealed class ConfigSection<T> : IEnumerable<ConfigOption> where T : new()
{
    readonly List<ConfigOption> _options = [];
    readonly JsonObject _defaults;

    public ConfigSection(string name)
    {
        Name = name;
        _defaults = JsonSerializer.SerializeToNode(new T(), ConfigJson.Options)!.AsObject();
    }

    public string Name { get; }

    /// <summary>A flag taking a value (several for a list property) that sets <paramref name="key"/>.</summary>
    /// <param name="replaces">another key of the section that giving this flag resets to null (unless given too)</param>
    public ConfigSection<T> Flag<TValue>(string flag, Expression<Func<T, TValue>> key, string description, string? valueName = null,
        Expression<Func<T, object?>>? replaces = null) =>
        Add(flag, key, description, valueName, null, replaces);

    /// <summary>A flag without a value that sets <paramref name="key"/> to <paramref name="value"/>.</summary>
    public ConfigSection<T> Switch<TValue>(string flag, Expression<Func<T, TValue>> key, TValue value, string description) =>
        Add(flag, key, description, null, JsonSerializer.SerializeToNode(value, ConfigJson.Options), null);

    ConfigSection<T> Add(string flag, LambdaExpression key, string description, string? valueName, JsonNode? switchValue, LambdaExpression? replaces)
    {
        var property = PropertyOf(key);
        var replaced = replaces is null ? [] : new[] { property.DeclaringType!.GetProperty(PropertyOf(replaces).Name)!.GetCustomAttribute<JsonPropertyNameAttribute>()!.Name };
        var keyName = property.GetCustomAttribute<JsonPropertyNameAttribute>()?.Name ?? "";
        _options.Add(new ConfigOption(flag, Name, property, description, valueName, switchValue, replaced, _defaults[keyName]?.DeepClone()));
        return this;
    }

    static PropertyInfo PropertyOf(LambdaExpression e)
    {
        var body = e.Body is UnaryExpression { NodeType: ExpressionType.Convert } u ? u.Operand : e.Body;
        return body is MemberExpression { Member: PropertyInfo p } ? p
            : throw new ArgumentException($"expected a property access like c => c.Name, got {e}");
    }

    public IEnumerator<ConfigOption> GetEnumerator() => _options.GetEnumerator();
    IEnumerator IEnumerable.GetEnumerator() => GetEnumerator();
}

/// <summary>
/// The table of every configuration flag of a command (flag ↔ section.key ↔ type ↔ default ↔ description). The CLI
/// builds its options and help from it; <see cref="ToLayer"/> turns the given flags into a configuration layer (a JSON
/// object of sections) that is merged over defaults and files like any other layer.
/// </summary>
public sealed class ConfigTable
{
    public ConfigTable(params IEnumerable<ConfigOption>[] sections)
    {
        Options = [.. sections.SelectMany(s => s)];
        var dup = Options.GroupBy(o => o.Flag).FirstOrDefault(g => g.Count() > 1);
        if (dup is not null) throw new ArgumentException($"flag {dup.Key} is defined twice");
    }

    public IReadOnlyList<ConfigOption> Options { get; }

    /// <summary>The configuration layer of the given flags: <c>{section: {key: value}}</c>.</summary>
    public JsonObject ToLayer(IEnumerable<(ConfigOption Option, IReadOnlyList<string> Tokens)> given)
    {
        var list = given.ToList();
        var layer = new JsonObject();
        JsonObject Section(string name) => layer[name] as JsonObject ?? (JsonObject)(layer[name] = new JsonObject());
        foreach (var (option, _) in list)
            foreach (var key in option.Replaces)
                Section(option.Section)[key] = null;
        foreach (var (option, tokens) in list)
            Section(option.Section)[option.Key] = option.Parse(tokens);
        return layer;
    }
}
