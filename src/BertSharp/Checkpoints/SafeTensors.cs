using System.IO.MemoryMappedFiles;
using System.Text;
using System.Text.Json;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>
/// Reader and writer for the Hugging Face <c>safetensors</c> format: an 8-byte little-endian header length, a JSON
/// header (<c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, "__metadata__": {string: string}}</c>),
/// then the raw little-endian tensor bytes (offsets are relative to the end of the header).
/// </summary>
public static class SafeTensors
{
    /// <summary>Headers larger than this are refused (the reference implementation uses the same 100 MB limit).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    const string MetadataKey = "__metadata__";
    static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>One tensor's header entry.</summary>
    public sealed record Entry(string Name, string DType, long[] Shape, long Begin, long End);

    /// <summary>Loads every tensor of <paramref name="path"/> as a CPU tensor in its stored dtype.</summary>
    public static unsafe Dictionary<string, Tensor> Load(string path)
    {
        var (entries, _, dataStart, _) = ReadHeader(path);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        if (entries.Count == 0) return result;
        using var mmf = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        using var view = mmf.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* basePtr = null;
        view.SafeMemoryMappedViewHandle.AcquirePointer(ref basePtr);
        try
        {
            basePtr += view.PointerOffset;
            foreach (var e in entries)
            {
                var dtype = ToScalarType(e.DType, path, e.Name);
                result[e.Name] = TensorMemory.FromPointer(basePtr + dataStart + e.Begin, e.End - e.Begin, e.Shape, dtype);
            }
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        finally
        {
            view.SafeMemoryMappedViewHandle.ReleasePointer();
        }
        return result;
    }

    /// <summary>The <c>__metadata__</c> map of <paramref name="path"/> (empty when absent).</summary>
    public static IReadOnlyDictionary<string, string> ReadMetadata(string path) => ReadHeader(path).Metadata;

    /// <summary>The validated header entries of <paramref name="path"/>, sorted by data offset.</summary>
    public static IReadOnlyList<Entry> ReadEntries(string path) => ReadHeader(path).Entries;

    static (List<Entry> Entries, Dictionary<string, string> Metadata, long DataStart, long DataLength) ReadHeader(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"safetensors file '{path}' does not exist", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var fileLength = fs.Length;
        if (fileLength < 8)
            throw new InvalidDataException($"safetensors file '{path}' is truncated: {fileLength} bytes, expected at least the 8-byte header length");
        Span<byte> lenBytes = stackalloc byte[8];
        fs.ReadExactly(lenBytes);
        var headerLen = BitConverter.ToUInt64(lenBytes);
        if (headerLen > (ulong)(fileLength - 8))
            throw new InvalidDataException($"safetensors file '{path}': header length {headerLen} exceeds the {fileLength - 8} bytes that follow it (truncated file or not safetensors)");
        if ((long)headerLen > MaxHeaderBytes)
            throw new InvalidDataException($"safetensors file '{path}': header length {headerLen} exceeds the {MaxHeaderBytes}-byte limit");
        var header = new byte[headerLen];
        fs.ReadExactly(header);
        var dataStart = 8 + (long)headerLen;
        var dataLength = fileLength - dataStart;

        try { _ = StrictUtf8.GetCharCount(header); }
        catch (DecoderFallbackException ex)
        {
            throw new InvalidDataException($"safetensors file '{path}': the {headerLen}-byte header is not valid UTF-8 ({ex.Message})", ex);
        }
        // The spec: the header begins with '{' and MAY be trailing-padded with spaces (0x20); nothing else may follow
        // the JSON object, so a header length that is off by any amount is caught here or by the tiling check below.
        if (headerLen == 0 || header[0] != (byte)'{')
            throw new InvalidDataException($"safetensors file '{path}': expected the header to be a JSON object starting with '{{' at byte 8, found {(headerLen == 0 ? "an empty header" : $"byte 0x{header[0]:x2}")} (wrong header length or not safetensors)");
        var jsonEnd = header.Length;
        while (jsonEnd > 0 && header[jsonEnd - 1] == (byte)' ') jsonEnd--;
        JsonDocument doc;
        try { doc = JsonDocument.Parse(header.AsMemory(0, jsonEnd)); }
        catch (JsonException ex)
        {
            throw new InvalidDataException($"safetensors file '{path}': the {headerLen}-byte header is not valid JSON ({ex.Message}; wrong header length?)", ex);
        }
        if (header[jsonEnd - 1] != (byte)'}')
        {
            doc.Dispose();
            throw new InvalidDataException($"safetensors file '{path}': the {headerLen}-byte header has byte 0x{header[jsonEnd - 1]:x2} after its JSON object; expected only space (0x20) padding up to where the data begins");
        }
        using (doc)
        {
            if (doc.RootElement.ValueKind != JsonValueKind.Object)
                throw new InvalidDataException($"safetensors file '{path}': expected the header to be a JSON object, found {doc.RootElement.ValueKind}");
            var entries = new List<Entry>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var prop in doc.RootElement.EnumerateObject())
            {
                if (!seen.Add(prop.Name))
                    throw new InvalidDataException($"safetensors file '{path}': the header names '{prop.Name}' twice, expected each tensor once");
                if (prop.Name == MetadataKey)
                {
                    if (prop.Value.ValueKind == JsonValueKind.Null) continue;
                    if (prop.Value.ValueKind != JsonValueKind.Object)
                        throw new InvalidDataException($"safetensors file '{path}': expected __metadata__ to be an object of strings, found {prop.Value.ValueKind}");
                    foreach (var m in prop.Value.EnumerateObject())
                    {
                        if (m.Value.ValueKind != JsonValueKind.String)
                            throw new InvalidDataException($"safetensors file '{path}': __metadata__ value '{m.Name}' is {m.Value.ValueKind}, expected a string");
                        metadata[m.Name] = m.Value.GetString()!;
                    }
                    continue;
                }
                entries.Add(ParseEntry(path, prop));
            }
            Validate(path, entries, dataLength);
            return (entries, metadata, dataStart, dataLength);
        }
    }

    static Entry ParseEntry(string path, JsonProperty prop)
    {
        var where = $"safetensors file '{path}', tensor '{prop.Name}'";
        var v = prop.Value;
        if (v.ValueKind != JsonValueKind.Object)
            throw new InvalidDataException($"{where}: expected an object with dtype/shape/data_offsets, found {v.ValueKind}");
        if (!v.TryGetProperty("dtype", out var dt) || dt.ValueKind != JsonValueKind.String)
            throw new InvalidDataException($"{where}: missing or non-string 'dtype'");
        if (!v.TryGetProperty("shape", out var sh) || sh.ValueKind != JsonValueKind.Array)
            throw new InvalidDataException($"{where}: missing or non-array 'shape'");
        if (!v.TryGetProperty("data_offsets", out var off) || off.ValueKind != JsonValueKind.Array || off.GetArrayLength() != 2)
            throw new InvalidDataException($"{where}: 'data_offsets' must be an array of two integers [begin, end]");
        var shape = new long[sh.GetArrayLength()];
        var i = 0;
        foreach (var d in sh.EnumerateArray())
        {
            if (d.ValueKind != JsonValueKind.Number || !d.TryGetInt64(out var dim) || dim < 0)
                throw new InvalidDataException($"{where}: shape entry {d.GetRawText()} is not a non-negative integer");
            shape[i++] = dim;
        }
        var o = off.EnumerateArray().ToArray();
        long begin = -1, end = -1;
        if (o[0].ValueKind != JsonValueKind.Number || o[1].ValueKind != JsonValueKind.Number
            || !o[0].TryGetInt64(out begin) || !o[1].TryGetInt64(out end) || begin < 0 || end < 0)
            throw new InvalidDataException($"{where}: data_offsets [{o[0].GetRawText()}, {o[1].GetRawText()}] are not non-negative integers");
        return new Entry(prop.Name, dt.GetString()!, shape, begin, end);
    }

    static void Validate(string path, List<Entry> entries, long dataLength)
    {
        foreach (var e in entries)
        {
            var where = $"safetensors file '{path}', tensor '{e.Name}'";
            var dtype = ToScalarType(e.DType, path, e.Name);
            if (e.End < e.Begin)
                throw new InvalidDataException($"{where}: data_offsets [{e.Begin}, {e.End}] end before they begin");
            if (e.End > dataLength)
                throw new InvalidDataException($"{where}: data_offsets [{e.Begin}, {e.End}] run past the end of the data ({dataLength} bytes; file truncated?)");
            var expected = TensorMemory.ByteSize(e.Shape, dtype, where);
            if (e.End - e.Begin != expected)
                throw new InvalidDataException($"{where}: {e.DType} shape [{string.Join(", ", e.Shape)}] needs {expected} bytes but data_offsets [{e.Begin}, {e.End}] span {e.End - e.Begin}");
        }
        // The spec: the byte buffer is entirely indexed, without holes. Sorted by begin, each tensor must start where
        // the previous one ended, the first at 0 and the last must end at the end of the file.
        entries.Sort((a, b) => a.Begin != b.Begin ? a.Begin.CompareTo(b.Begin) : a.End.CompareTo(b.End));
        long expectedBegin = 0;
        for (var i = 0; i < entries.Count; i++)
        {
            var c = entries[i];
            if (c.Begin < expectedBegin)
            {
                var p = entries[i - 1];
                throw new InvalidDataException($"safetensors file '{path}': tensors '{p.Name}' [{p.Begin}, {p.End}) and '{c.Name}' [{c.Begin}, {c.End}) overlap; expected data_offsets that tile the data region");
            }
            if (c.Begin > expectedBegin)
                throw new InvalidDataException(i == 0
                    ? $"safetensors file '{path}', tensor '{c.Name}': data_offsets [{c.Begin}, {c.End}) leave bytes [0, {c.Begin}) of the data region unused; expected the first tensor to begin at 0"
                    : $"safetensors file '{path}': a gap of {c.Begin - expectedBegin} bytes between tensors '{entries[i - 1].Name}' (ends at {expectedBegin}) and '{c.Name}' (begins at {c.Begin}); expected data_offsets that tile the data region");
            expectedBegin = c.End;
        }
        if (expectedBegin != dataLength)
            throw new InvalidDataException($"safetensors file '{path}': the tensors cover {expectedBegin} bytes but the data region (file size - 8 - header length) is {dataLength} bytes; expected data_offsets that tile it exactly (wrong header length or trailing bytes?)");
    }

    /// <summary>The TorchSharp dtype of a safetensors dtype string.</summary>
    public static ScalarType ToScalarType(string dtype, string path = "?", string tensor = "?") => dtype switch
    {
        "F32" => ScalarType.Float32,
        "F16" => ScalarType.Float16,
        "BF16" => ScalarType.BFloat16,
        "F64" => ScalarType.Float64,
        "I64" => ScalarType.Int64,
        "I32" => ScalarType.Int32,
        "I16" => ScalarType.Int16,
        "I8" => ScalarType.Int8,
        "U8" => ScalarType.Byte,
        "BOOL" => ScalarType.Bool,
        _ => throw new InvalidDataException($"safetensors file '{path}', tensor '{tensor}': unsupported dtype '{dtype}' (supported: F32, F16, BF16, F64, I64, I32, I16, I8, U8, BOOL)"),
    };

    /// <summary>The safetensors dtype string of a TorchSharp dtype.</summary>
    public static string ToDTypeString(ScalarType dtype) => dtype switch
    {
        ScalarType.Float32 => "F32",
        ScalarType.Float16 => "F16",
        ScalarType.BFloat16 => "BF16",
        ScalarType.Float64 => "F64",
        ScalarType.Int64 => "I64",
        ScalarType.Int32 => "I32",
        ScalarType.Int16 => "I16",
        ScalarType.Int8 => "I8",
        ScalarType.Byte => "U8",
        ScalarType.Bool => "BOOL",
        _ => throw new NotSupportedException($"dtype {dtype} cannot be stored in safetensors by BertSharp"),
    };

    /// <summary>
    /// Writes <paramref name="tensors"/> (sorted by name) and optional <paramref name="metadata"/> to
    /// <paramref name="path"/>: header padded with spaces to a multiple of 8 bytes, contiguous little-endian data.
    /// The file is written to <c>path + ".tmp"</c> first and then moved over <paramref name="path"/>, so readers never
    /// see a partial file.
    /// </summary>
    public static void Save(string path, IEnumerable<KeyValuePair<string, Tensor>> tensors, IReadOnlyDictionary<string, string>? metadata = null)
    {
        ArgumentNullException.ThrowIfNull(tensors);
        var items = new SortedDictionary<string, Tensor>(StringComparer.Ordinal);
        foreach (var (name, t) in tensors)
        {
            if (string.IsNullOrEmpty(name)) throw new ArgumentException("tensor names must be non-empty", nameof(tensors));
            if (name == MetadataKey) throw new ArgumentException($"'{MetadataKey}' is reserved and cannot be a tensor name", nameof(tensors));
            if (!items.TryAdd(name, t)) throw new ArgumentException($"duplicate tensor name '{name}'", nameof(tensors));
        }

        // Header JSON.
        using var headerStream = new MemoryStream();
        long offset = 0;
        using (var w = new Utf8JsonWriter(headerStream))
        {
            w.WriteStartObject();
            if (metadata is { Count: > 0 })
            {
                w.WriteStartObject(MetadataKey);
                foreach (var (k, val) in metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal)) w.WriteString(k, val);
                w.WriteEndObject();
            }
            foreach (var (name, t) in items)
            {
                var bytes = t.numel() * t.element_size();
                w.WriteStartObject(name);
                w.WriteString("dtype", ToDTypeString(t.dtype));
                w.WriteStartArray("shape");
                foreach (var d in t.shape) w.WriteNumberValue(d);
                w.WriteEndArray();
                w.WriteStartArray("data_offsets");
                w.WriteNumberValue(offset);
                w.WriteNumberValue(offset + bytes);
                w.WriteEndArray();
                w.WriteEndObject();
                offset += bytes;
            }
            w.WriteEndObject();
        }
        var headerLen = headerStream.Length;
        var pad = (8 - headerLen % 8) % 8;
        for (var i = 0; i < pad; i++) headerStream.WriteByte((byte)' ');

        var tmp = path + ".tmp";
        try
        {
            using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
            {
                Span<byte> len = stackalloc byte[8];
                BitConverter.TryWriteBytes(len, (ulong)headerStream.Length);
                fs.Write(len);
                headerStream.Position = 0;
                headerStream.CopyTo(fs);
                foreach (var t in items.Values) WriteData(fs, t);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, path, overwrite: true);
        }
        catch
        {
            try { File.Delete(tmp); } catch (IOException) { } catch (UnauthorizedAccessException) { }
            throw;
        }
    }

    static void WriteData(Stream s, Tensor t)
    {
        if (!BitConverter.IsLittleEndian) throw new PlatformNotSupportedException("safetensors writer assumes a little-endian host");
        if (t.numel() == 0) return;
        var cpu = t.device_type == DeviceType.CPU ? t : t.cpu();
        var contiguous = cpu.is_contiguous() ? cpu : cpu.contiguous();
        try
        {
            TensorMemory.ForEachChunk(contiguous, (_, span) => s.Write(span));
        }
        finally
        {
            if (!ReferenceEquals(contiguous, cpu)) contiguous.Dispose();
            if (!ReferenceEquals(cpu, t)) cpu.Dispose();
        }
    }
}
