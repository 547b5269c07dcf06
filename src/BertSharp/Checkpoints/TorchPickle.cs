using System.IO.Compression;
using System.Text;
using TorchSharp;
using static TorchSharp.torch;

namespace BertSharp.Checkpoints;

/// <summary>
/// Loads PyTorch checkpoints in the zip format that <c>torch.save</c> writes by default since PyTorch 1.6
/// (<c>&lt;folder&gt;/data.pkl</c>, <c>&lt;folder&gt;/data/&lt;key&gt;</c> storages, optional
/// <c>&lt;folder&gt;/byteorder</c>). The pickle is read by a restricted unpickler that only accepts the globals a
/// state dict needs; anything else is refused before any of it is used, and nothing is ever executed.
/// </summary>
public static class TorchPickle
{
    /// <summary>A storage referenced by the pickle: archive key, element type and element count.</summary>
    sealed record StorageRef(string Key, ScalarType DType, long Numel);

    /// <summary>A tensor rebuilt by <c>_rebuild_tensor_v2</c>: a view of a storage.</summary>
    sealed record TensorRef(StorageRef Storage, long Offset, long[] Shape, long[] Stride);

    static readonly Dictionary<string, ScalarType> StorageTypes = new(StringComparer.Ordinal)
    {
        ["FloatStorage"] = ScalarType.Float32,
        ["DoubleStorage"] = ScalarType.Float64,
        ["HalfStorage"] = ScalarType.Float16,
        ["BFloat16Storage"] = ScalarType.BFloat16,
        ["LongStorage"] = ScalarType.Int64,
        ["IntStorage"] = ScalarType.Int32,
        ["ShortStorage"] = ScalarType.Int16,
        ["CharStorage"] = ScalarType.Int8,
        ["ByteStorage"] = ScalarType.Byte,
        ["BoolStorage"] = ScalarType.Bool,
        ["UntypedStorage"] = ScalarType.Byte,
    };

    static readonly Dictionary<string, ScalarType> DTypeNames = new(StringComparer.Ordinal)
    {
        ["float32"] = ScalarType.Float32, ["float"] = ScalarType.Float32,
        ["float64"] = ScalarType.Float64, ["double"] = ScalarType.Float64,
        ["float16"] = ScalarType.Float16, ["half"] = ScalarType.Float16,
        ["bfloat16"] = ScalarType.BFloat16,
        ["int64"] = ScalarType.Int64, ["long"] = ScalarType.Int64,
        ["int32"] = ScalarType.Int32, ["int"] = ScalarType.Int32,
        ["int16"] = ScalarType.Int16, ["short"] = ScalarType.Int16,
        ["int8"] = ScalarType.Int8,
        ["uint8"] = ScalarType.Byte,
        ["bool"] = ScalarType.Bool,
    };

    /// <summary>True when <paramref name="head"/> (the first bytes of a file) starts a legacy, non-zip torch.save file.</summary>
    internal static bool LooksLikeLegacyPickle(ReadOnlySpan<byte> head) => head.Length >= 2 && head[0] == 0x80 && head[1] <= 5;

    /// <summary>True when <paramref name="head"/> starts a zip archive.</summary>
    internal static bool LooksLikeZip(ReadOnlySpan<byte> head) => head.Length >= 4 && head[0] == (byte)'P' && head[1] == (byte)'K' && head[2] == 3 && head[3] == 4;

    /// <summary>
    /// Loads the tensors of a PyTorch zip checkpoint (a state dict, or a dict holding one under
    /// <c>state_dict</c>/<c>model</c>) as CPU tensors in their stored dtypes. Tensors that share a storage (tied
    /// weights) share memory, as in PyTorch.
    /// </summary>
    public static Dictionary<string, Tensor> Load(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"PyTorch checkpoint '{path}' does not exist", path);
        using var fs = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
        var head = new byte[8];
        var got = fs.ReadAtLeast(head, head.Length, throwOnEndOfStream: false);
        if (LooksLikeLegacyPickle(head.AsSpan(0, got)))
            throw new InvalidDataException(
                $"PyTorch checkpoint '{path}': legacy (non-zip) PyTorch format is unsupported; re-save it with " +
                "torch.save(..., _use_new_zipfile_serialization=True) or convert to safetensors");
        if (!LooksLikeZip(head.AsSpan(0, got)))
            throw new InvalidDataException(
                $"PyTorch checkpoint '{path}': expected a zip archive (starting with 'PK\\x03\\x04') as written by torch.save, found bytes {Hex(head.AsSpan(0, got))}");
        fs.Position = 0;
        var what = $"PyTorch checkpoint '{path}'";
        var unreadable = $"PyTorch checkpoint '{path}' is not a readable zip archive";
        ZipChecks.ValidateEnd(fs, unreadable);

        ZipArchive zip;
        try { zip = new ZipArchive(fs, ZipArchiveMode.Read, leaveOpen: true); }
        catch (InvalidDataException ex)
        {
            throw new InvalidDataException($"PyTorch checkpoint '{path}' is not a readable zip archive (truncated or corrupt?): {ex.Message}", ex);
        }
        using (zip)
        {
            var entries = ZipChecks.Entries(zip, fs.Length, unreadable);
            var pklEntry = entries.FirstOrDefault(e => e.FullName == "data.pkl" || e.FullName.EndsWith("/data.pkl", StringComparison.Ordinal))
                ?? throw new InvalidDataException($"PyTorch checkpoint '{path}': the zip archive has no '<folder>/data.pkl' entry, so it was not written by torch.save");
            var prefix = pklEntry.FullName[..^"data.pkl".Length];
            var byteOrder = entries.FirstOrDefault(e => e.FullName == prefix + "byteorder");
            if (byteOrder is not null)
            {
                var order = Encoding.ASCII.GetString(ZipChecks.ReadAll(byteOrder, what, 64)).Trim();
                if (order != "little")
                    throw new InvalidDataException($"PyTorch checkpoint '{path}': byteorder is '{order}', only 'little' is supported");
            }

            var where = $"PyTorch checkpoint '{path}' ({pklEntry.FullName})";
            var storages = new Dictionary<string, StorageRef>(StringComparer.Ordinal);
            var unpickler = new Unpickler(ZipChecks.ReadAll(pklEntry, what, MaxPickleBytes), where)
            {
                ResolveGlobal = ResolveGlobal,
                Reduce = (f, a) => Reduce(f, a, where),
                PersistentLoad = pid => PersistentLoad(pid, storages, where),
            };
            var root = unpickler.Load();
            var refs = CollectTensors(root, where);
            return Materialize(entries, prefix, refs, path);
        }
    }

    static object? ResolveGlobal(string module, string name)
    {
        switch (module)
        {
            case "collections" when name == "OrderedDict":
            case "torch._utils" when name is "_rebuild_tensor_v2" or "_rebuild_parameter" or "_rebuild_parameter_with_state":
            case "_codecs" when name == "encode":
                return new PickleGlobal(module, name);
            case "torch" when StorageTypes.ContainsKey(name):
                return new PickleGlobal(module, name);
            case "torch.storage" when name == "UntypedStorage":
                return new PickleGlobal("torch", name);
            case "torch" when DTypeNames.ContainsKey(name):
                return new PickleGlobal(module, name);
            default:
                return null;
        }
    }

    static object? Reduce(object func, PickleTuple args, string where)
    {
        if (func is not PickleGlobal g) throw new InvalidDataException($"{where}: REDUCE applied to a non-callable {func.GetType().Name}");
        switch (g.FullName)
        {
            case "collections.OrderedDict":
                var d = new PickleDict();
                if (args.Count > 0 && args[0] is List<object?> pairs)
                    foreach (var p in pairs)
                        if (p is PickleTuple { Count: 2 } kv) d.Set(kv[0], kv[1], where);
                return d;
            case "torch._utils._rebuild_tensor_v2":
            {
                // (storage, storage_offset, size, stride, requires_grad, backward_hooks[, metadata])
                if (args.Count < 4) throw new InvalidDataException($"{where}: _rebuild_tensor_v2 expects at least 4 arguments, got {args.Count}");
                var storage = args[0] as StorageRef ?? throw new InvalidDataException($"{where}: _rebuild_tensor_v2 argument 0 is not a storage");
                var offset = args[1] as long? ?? throw new InvalidDataException($"{where}: _rebuild_tensor_v2 storage offset is not an integer");
                var shape = Ints(args[2], "size", where);
                var stride = Ints(args[3], "stride", where);
                if (shape.Length != stride.Length)
                    throw new InvalidDataException($"{where}: tensor size [{string.Join(", ", shape)}] and stride [{string.Join(", ", stride)}] have different ranks");
                return new TensorRef(storage, offset, shape, stride);
            }
            case "torch._utils._rebuild_parameter":
            case "torch._utils._rebuild_parameter_with_state":
                return args.Count > 0 && args[0] is TensorRef t ? t : throw new InvalidDataException($"{where}: {g.Name} argument 0 is not a tensor");
            case "_codecs.encode":
                if (args.Count >= 1 && args[0] is string s)
                    return args.Count >= 2 && args[1] is string enc && enc != "latin1" && enc != "latin-1" ? Encoding.UTF8.GetBytes(s) : Encoding.Latin1.GetBytes(s);
                throw new InvalidDataException($"{where}: _codecs.encode expects a string argument");
            default:
                throw new InvalidDataException($"{where}: '{g.FullName}' cannot be called while loading (refusing to load; nothing was executed)");
        }
    }

    static long[] Ints(object? o, string what, string where)
    {
        if (o is not PickleTuple t) throw new InvalidDataException($"{where}: tensor {what} is not a tuple");
        var r = new long[t.Count];
        for (var i = 0; i < t.Count; i++)
            r[i] = t[i] as long? ?? throw new InvalidDataException($"{where}: tensor {what} entry {i} is not an integer");
        return r;
    }

    static StorageRef PersistentLoad(object? pid, Dictionary<string, StorageRef> storages, string where)
    {
        // ('storage', storage_type, key, location, numel)
        if (pid is not PickleTuple { Count: >= 5 } t || t[0] as string != "storage")
            throw new InvalidDataException($"{where}: unsupported persistent id (expected ('storage', type, key, location, numel))");
        var dtype = t[1] switch
        {
            PickleGlobal { Module: "torch" } g when StorageTypes.TryGetValue(g.Name, out var st) => st,
            PickleGlobal { Module: "torch" } g when DTypeNames.TryGetValue(g.Name, out var dt) => dt,
            var other => throw new InvalidDataException($"{where}: persistent id storage type {other} is not a supported torch storage type"),
        };
        var key = t[2] as string ?? throw new InvalidDataException($"{where}: persistent id storage key is not a string");
        var numel = t[4] as long? ?? throw new InvalidDataException($"{where}: persistent id element count is not an integer");
        if (numel < 0) throw new InvalidDataException($"{where}: storage '{key}' has negative size {numel}");
        if (storages.TryGetValue(key, out var existing))
        {
            if (existing.DType != dtype)
                throw new InvalidDataException($"{where}: storage '{key}' is referenced as both {existing.DType} and {dtype}");
            return existing;
        }
        var s = new StorageRef(key, dtype, numel);
        storages[key] = s;
        return s;
    }

    static List<KeyValuePair<string, TensorRef>> CollectTensors(object? root, string where)
    {
        if (root is not PickleDict dict)
            throw new InvalidDataException($"{where}: expected the pickle to hold a state dict (a dict of tensors), found {root?.GetType().Name ?? "None"}");
        if (!dict.Items.Any(kv => kv.Value is TensorRef))
        {
            foreach (var wrapper in new[] { "state_dict", "model", "module", "model_state_dict" })
            {
                var inner = dict.Items.FirstOrDefault(kv => wrapper.Equals(kv.Key)).Value;
                if (inner is PickleDict d && d.Items.Any(kv => kv.Value is TensorRef)) { dict = d; break; }
            }
        }
        var list = new List<KeyValuePair<string, TensorRef>>();
        foreach (var (k, v) in dict.Items)
            if (v is TensorRef t)
                list.Add(new(k as string ?? throw new InvalidDataException($"{where}: state dict key {k} is not a string"), t));
        if (list.Count == 0) throw new InvalidDataException($"{where}: the pickle holds no tensors (not a state dict)");
        return list;
    }

    static Dictionary<string, Tensor> Materialize(IReadOnlyCollection<ZipArchiveEntry> zip, string prefix, List<KeyValuePair<string, TensorRef>> refs, string path)
    {
        var storageTensors = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        var result = new Dictionary<string, Tensor>(StringComparer.Ordinal);
        try
        {
            foreach (var (name, r) in refs)
            {
                var where = $"PyTorch checkpoint '{path}', tensor '{name}'";
                var st = r.Storage;
                var numel = TensorMemory.Numel(r.Shape, where);
                if (numel > 0)
                {
                    if (r.Offset < 0) throw new InvalidDataException($"{where}: negative storage offset {r.Offset}");
                    long last = r.Offset;
                    for (var i = 0; i < r.Shape.Length; i++)
                    {
                        // A stride only matters along a dimension of size > 1; there 0 (a broadcast view) or a negative
                        // stride is not a layout a state dict has.
                        if (r.Shape[i] > 1 && r.Stride[i] <= 0)
                            throw new InvalidDataException($"{where}: stride {r.Stride[i]} for dimension {i} of size {r.Shape[i]} (size [{string.Join(", ", r.Shape)}], stride [{string.Join(", ", r.Stride)}]); expected a positive stride for every dimension larger than 1");
                        try { last = checked(last + (r.Shape[i] - 1) * r.Stride[i]); }
                        catch (OverflowException) { last = long.MaxValue; break; }
                    }
                    if (last >= st.Numel)
                        throw new InvalidDataException($"{where}: view (offset {r.Offset}, size [{string.Join(", ", r.Shape)}], stride [{string.Join(", ", r.Stride)}]) reaches element {last} but storage '{st.Key}' has {st.Numel} elements");
                }
                if (!storageTensors.TryGetValue(st.Key, out var storage))
                {
                    storage = LoadStorage(zip, prefix, st, path, name);
                    storageTensors[st.Key] = storage;
                }
                Tensor view;
                if (numel == 0) view = torch.empty(r.Shape, st.DType);
                else
                {
                    // A contiguous view keeps sharing the storage (as PyTorch does); any other layout is copied.
                    view = storage.as_strided(r.Shape, r.Stride.Select((st, i) => r.Shape[i] == 1 ? Math.Max(st, 1) : st).ToArray(), r.Offset);
                    if (!view.is_contiguous())
                    {
                        var copy = view.contiguous();
                        view.Dispose();
                        view = copy;
                    }
                }
                if (result.Remove(name, out var dup)) dup.Dispose();
                result[name] = view;
            }
            return result;
        }
        catch
        {
            foreach (var t in result.Values) t.Dispose();
            throw;
        }
        finally
        {
            // The views hold their own references to the storage memory.
            foreach (var s in storageTensors.Values) s.Dispose();
        }
    }

    static Tensor LoadStorage(IReadOnlyCollection<ZipArchiveEntry> zip, string prefix, StorageRef st, string path, string tensorName)
    {
        var entryName = prefix + "data/" + st.Key;
        var entry = zip.FirstOrDefault(e => e.FullName == entryName)
            ?? throw new InvalidDataException($"PyTorch checkpoint '{path}': storage '{entryName}' used by tensor '{tensorName}' is missing from the archive");
        var bytes = TensorMemory.ByteSize([st.Numel], st.DType, $"PyTorch checkpoint '{path}', storage '{entryName}'");
        if (entry.Length != bytes)
            throw new InvalidDataException($"PyTorch checkpoint '{path}': storage '{entryName}' is {entry.Length} bytes, expected {bytes} ({st.Numel} × {st.DType})");
        Tensor? t = null;
        uint crc = 0;
        try
        {
            ZipChecks.Read(entry, $"PyTorch checkpoint '{path}'",
                (s, _) => t = TensorMemory.Create([st.Numel], st.DType, (_, dst) =>
                {
                    s.ReadExactly(dst);
                    crc = Crc32.Zip.Extend(crc, dst);
                }),
                () => crc);
            return t!;
        }
        catch
        {
            t?.Dispose();
            throw;
        }
    }

    /// <summary>Largest data.pkl accepted (a BERT-large state dict's pickle is well under 1 MB).</summary>
    const long MaxPickleBytes = 1L << 30;

    internal static string Hex(ReadOnlySpan<byte> b) => b.Length == 0 ? "(empty file)" : Convert.ToHexString(b);
}
