using System.IO.MemoryMappedFiles;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;
using System.Security.Cryptography;
using System.Text.Json;

namespace BertSharp.Data;

/// <summary>One shard's entry in <c>manifest.json</c>.</summary>
public sealed class ShardInfo
{
    public string File { get; set; } = "";
    public long Records { get; set; }
    public long Tokens { get; set; }
    public long Bytes { get; set; }
    public string Sha256 { get; set; } = "";
}

/// <summary><c>manifest.json</c> of a record store (token cache or example store); written last, so its presence
/// means every shard was completely written.</summary>
public sealed class StoreManifest
{
    public int FormatVersion { get; set; }
    public string Kind { get; set; } = "";
    public string Key { get; set; } = "";
    public string Description { get; set; } = "";
    public int TokenWidth { get; set; }
    public long Records { get; set; }
    public long Tokens { get; set; }
    public string CreatedUtc { get; set; } = "";
    public List<ShardInfo> Shards { get; set; } = new();
}

/// <summary>
/// Shard file layout (little-endian), see docs/data.md:
/// <code>
/// 0   "BSRS"  magic
/// 4   int32   format version
/// 8   int32   token width in bytes (2 = uint16, 4 = int32)
/// 12  int32   reserved (0)
/// 16  int64   record count n
/// 24  int64   token count t
/// 32  int64[n] end offset (in tokens, exclusive) of each record
///     int32[n] per-record metadata
///     uint16[t] or int32[t] token ids
/// </code>
/// </summary>
internal static class ShardFormat
{
    public const int Version = 1;
    public const int HeaderBytes = 32;
    public static ReadOnlySpan<byte> Magic => "BSRS"u8;

    public static long ExpectedBytes(long records, long tokens, int width) => HeaderBytes + records * 12 + tokens * width;
}

/// <summary>Writes a record store into a temporary folder, then publishes it by renaming the folder.</summary>
internal sealed class RecordStoreWriter : IDisposable
{
    static readonly JsonSerializerOptions JsonOptions = new() { WriteIndented = true };

    readonly string _finalDir, _tempDir;
    readonly StoreManifest _manifest;
    readonly long _shardTokenLimit;
    readonly List<int> _tokens = new();
    readonly List<long> _ends = new();
    readonly List<int> _meta = new();
    bool _completed;

    public RecordStoreWriter(string finalDir, string kind, string key, string description, int tokenWidth, long shardTokenLimit)
    {
        if (tokenWidth is not (2 or 4)) throw new ArgumentOutOfRangeException(nameof(tokenWidth));
        _finalDir = Path.GetFullPath(finalDir);
        _tempDir = _finalDir + ".building-" + Guid.NewGuid().ToString("N")[..8];
        Directory.CreateDirectory(_tempDir);
        _shardTokenLimit = Math.Max(1, shardTokenLimit);
        _manifest = new StoreManifest
        {
            FormatVersion = ShardFormat.Version, Kind = kind, Key = key, Description = description, TokenWidth = tokenWidth,
        };
    }

    public long PendingTokens => _tokens.Count;

    public void Add(ReadOnlySpan<int> ids, int meta)
    {
        if (_manifest.TokenWidth == 2)
            foreach (var id in ids)
                if ((uint)id > ushort.MaxValue) throw new InvalidOperationException($"token id {id} does not fit the uint16 shard width");
        foreach (var id in ids) _tokens.Add(id);
        _ends.Add(_tokens.Count);
        _meta.Add(meta);
    }

    /// <summary>Starts a new shard when the current one has reached the size limit (call at safe split points).</summary>
    public void MaybeRoll()
    {
        if (_tokens.Count >= _shardTokenLimit) Flush();
    }

    void Flush()
    {
        if (_ends.Count == 0) return;
        var name = $"shard-{_manifest.Shards.Count:D5}.bin";
        var tmp = Path.Combine(_tempDir, name + ".tmp");
        long records = _ends.Count, tokens = _tokens.Count;
        int width = _manifest.TokenWidth;
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        using (var fs = new FileStream(tmp, FileMode.Create, FileAccess.Write, FileShare.None, 1 << 20))
        {
            void Write(ReadOnlySpan<byte> bytes) { fs.Write(bytes); sha.AppendData(bytes); }
            Span<byte> header = stackalloc byte[ShardFormat.HeaderBytes];
            header.Clear();
            ShardFormat.Magic.CopyTo(header);
            BitConverter.TryWriteBytes(header[4..], ShardFormat.Version);
            BitConverter.TryWriteBytes(header[8..], width);
            BitConverter.TryWriteBytes(header[16..], records);
            BitConverter.TryWriteBytes(header[24..], tokens);
            Write(header);
            Write(MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(_ends)));
            Write(MemoryMarshal.AsBytes(CollectionsMarshal.AsSpan(_meta)));
            var ids = CollectionsMarshal.AsSpan(_tokens);
            if (width == 4) Write(MemoryMarshal.AsBytes(ids));
            else
            {
                var chunk = new ushort[1 << 16];
                for (int at = 0; at < ids.Length; at += chunk.Length)
                {
                    int n = Math.Min(chunk.Length, ids.Length - at);
                    for (int i = 0; i < n; i++) chunk[i] = (ushort)ids[at + i];
                    Write(MemoryMarshal.AsBytes(chunk.AsSpan(0, n)));
                }
            }
            fs.Flush(flushToDisk: false);
        }
        File.Move(tmp, Path.Combine(_tempDir, name));
        _manifest.Shards.Add(new ShardInfo
        {
            File = name, Records = records, Tokens = tokens, Bytes = ShardFormat.ExpectedBytes(records, tokens, width),
            Sha256 = Convert.ToHexString(sha.GetHashAndReset()),
        });
        _manifest.Records += records;
        _manifest.Tokens += tokens;
        _tokens.Clear(); _ends.Clear(); _meta.Clear();
    }

    /// <summary>Writes the last shard and the manifest (last, via temp + rename) and publishes the folder.</summary>
    public void Complete()
    {
        Flush();
        _manifest.CreatedUtc = DateTime.UtcNow.ToString("O");
        var manifestTmp = Path.Combine(_tempDir, "manifest.json.tmp");
        File.WriteAllText(manifestTmp, JsonSerializer.Serialize(_manifest, JsonOptions));
        File.Move(manifestTmp, Path.Combine(_tempDir, "manifest.json"));
        if (Directory.Exists(_finalDir)) Directory.Delete(_finalDir, recursive: true);
        try
        {
            Directory.Move(_tempDir, _finalDir);
        }
        catch (IOException) when (Directory.Exists(_finalDir))
        {
            // Another process published the same store concurrently; keep theirs.
            Directory.Delete(_tempDir, recursive: true);
        }
        _completed = true;
    }

    public void Dispose()
    {
        if (!_completed && Directory.Exists(_tempDir))
        {
            try { Directory.Delete(_tempDir, recursive: true); } catch (IOException) { } catch (UnauthorizedAccessException) { }
        }
    }
}

/// <summary>A memory-mapped shard file.</summary>
internal sealed unsafe class MappedShard : IDisposable
{
    readonly MemoryMappedFile _file;
    readonly MemoryMappedViewAccessor _view;
    readonly byte* _base;
    readonly long* _ends;
    readonly int* _meta;
    readonly byte* _tokens;
    readonly int _width;

    public MappedShard(string path, ShardInfo info, int width)
    {
        _file = MemoryMappedFile.CreateFromFile(path, FileMode.Open, null, 0, MemoryMappedFileAccess.Read);
        _view = _file.CreateViewAccessor(0, 0, MemoryMappedFileAccess.Read);
        byte* p = null;
        _view.SafeMemoryMappedViewHandle.AcquirePointer(ref p);
        _base = p + _view.PointerOffset;
        var header = new ReadOnlySpan<byte>(_base, ShardFormat.HeaderBytes);
        if (!header[..4].SequenceEqual(ShardFormat.Magic) || BitConverter.ToInt32(header[4..]) != ShardFormat.Version
            || BitConverter.ToInt32(header[8..]) != width || BitConverter.ToInt64(header[16..]) != info.Records
            || BitConverter.ToInt64(header[24..]) != info.Tokens)
        {
            Dispose();
            throw new InvalidDataException($"{path}: the shard header does not match the manifest");
        }
        Records = info.Records;
        _width = width;
        _ends = (long*)(_base + ShardFormat.HeaderBytes);
        _meta = (int*)(_base + ShardFormat.HeaderBytes + Records * 8);
        _tokens = _base + ShardFormat.HeaderBytes + Records * 12;
    }

    public long Records { get; }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    long Start(long r) => r == 0 ? 0 : _ends[r - 1];

    public int Length(long r) => (int)(_ends[r] - Start(r));
    public int Meta(long r) => _meta[r];

    public void CopyTo(long r, Span<int> destination)
    {
        long start = Start(r);
        int n = (int)(_ends[r] - start);
        if (_width == 4) new ReadOnlySpan<int>(_tokens + start * 4, n).CopyTo(destination);
        else
        {
            var src = new ReadOnlySpan<ushort>(_tokens + start * 2, n);
            for (int i = 0; i < n; i++) destination[i] = src[i];
        }
    }

    public void Dispose()
    {
        if (_base != null) _view.SafeMemoryMappedViewHandle.ReleasePointer();
        _view.Dispose();
        _file.Dispose();
    }
}

/// <summary>
/// A read-only, memory-mapped set of shards holding variable-length int records (sentences or examples) with an
/// int32 of metadata each. Records are addressed by a global index across shards.
/// </summary>
internal sealed class RecordStore : IDisposable
{
    readonly MappedShard[] _shards;
    readonly long[] _bases;

    RecordStore(string dir, StoreManifest manifest, MappedShard[] shards)
    {
        Directory = dir;
        Manifest = manifest;
        _shards = shards;
        _bases = new long[shards.Length + 1];
        for (int i = 0; i < shards.Length; i++) _bases[i + 1] = _bases[i] + shards[i].Records;
    }

    public string Directory { get; }
    public StoreManifest Manifest { get; }
    public long Records => _bases[^1];
    public int ShardCount => _shards.Length;

    /// <summary>Global index of the first record of each shard (and the total at the end).</summary>
    public ReadOnlySpan<long> ShardBases => _bases;

    /// <summary>Opens a complete store, or returns null with the reason it is missing, incomplete or corrupt.</summary>
    public static RecordStore? TryOpen(string dir, string kind, string key, bool verifyChecksums, out string? why)
    {
        why = null;
        var manifestPath = Path.Combine(dir, "manifest.json");
        if (!File.Exists(manifestPath)) { why = System.IO.Directory.Exists(dir) ? "no manifest (incomplete build)" : "not built yet"; return null; }
        StoreManifest? manifest;
        try { manifest = JsonSerializer.Deserialize<StoreManifest>(File.ReadAllText(manifestPath)); }
        catch (JsonException e) { why = $"unreadable manifest ({e.Message})"; return null; }
        if (manifest is null || manifest.FormatVersion != ShardFormat.Version || manifest.Kind != kind || manifest.Key != key)
        { why = "manifest version/kind/key mismatch"; return null; }
        long records = 0, tokens = 0;
        foreach (var s in manifest.Shards)
        {
            var path = Path.Combine(dir, s.File);
            if (!File.Exists(path)) { why = $"missing shard {s.File}"; return null; }
            long expected = ShardFormat.ExpectedBytes(s.Records, s.Tokens, manifest.TokenWidth);
            long actual = new FileInfo(path).Length;
            if (actual != expected || s.Bytes != expected) { why = $"shard {s.File} has {actual} bytes, expected {expected} (truncated or corrupt)"; return null; }
            if (verifyChecksums)
            {
                using var fs = File.OpenRead(path);
                if (Convert.ToHexString(SHA256.HashData(fs)) != s.Sha256) { why = $"shard {s.File} fails its SHA-256 check"; return null; }
            }
            records += s.Records; tokens += s.Tokens;
        }
        if (records != manifest.Records || tokens != manifest.Tokens) { why = "manifest totals do not add up"; return null; }
        var shards = new List<MappedShard>();
        try
        {
            foreach (var s in manifest.Shards) shards.Add(new MappedShard(Path.Combine(dir, s.File), s, manifest.TokenWidth));
        }
        catch (Exception e) when (e is InvalidDataException or IOException)
        {
            foreach (var m in shards) m.Dispose();
            why = e.Message;
            return null;
        }
        return new RecordStore(dir, manifest, shards.ToArray());
    }

    public (int Shard, long Local) Locate(long record)
    {
        if ((ulong)record >= (ulong)Records) throw new ArgumentOutOfRangeException(nameof(record), record, $"the store holds {Records} records");
        int lo = 0, hi = _shards.Length - 1;
        while (lo < hi)
        {
            int mid = (lo + hi + 1) >> 1;
            if (_bases[mid] <= record) lo = mid; else hi = mid - 1;
        }
        return (lo, record - _bases[lo]);
    }

    public int Length(long record) { var (s, l) = Locate(record); return _shards[s].Length(l); }
    public int Meta(long record) { var (s, l) = Locate(record); return _shards[s].Meta(l); }

    public int[] Get(long record)
    {
        var (s, l) = Locate(record);
        var result = new int[_shards[s].Length(l)];
        _shards[s].CopyTo(l, result);
        return result;
    }

    public void Append(long record, List<int> destination)
    {
        var (s, l) = Locate(record);
        int n = _shards[s].Length(l);
        int at = destination.Count;
        CollectionsMarshal.SetCount(destination, at + n);
        _shards[s].CopyTo(l, CollectionsMarshal.AsSpan(destination).Slice(at, n));
    }

    public void Dispose()
    {
        foreach (var s in _shards) s.Dispose();
    }
}
