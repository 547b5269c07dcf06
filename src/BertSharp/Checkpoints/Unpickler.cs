using System.Buffers.Binary;
using System.Numerics;
using System.Text;

namespace BertSharp.Checkpoints;

/// <summary>A pickled tuple.</summary>
internal sealed class PickleTuple(object?[] items)
{
    public object?[] Items { get; } = items;
    public int Count => Items.Length;
    public object? this[int i] => Items[i];
}

/// <summary>A pickled dict or OrderedDict (insertion order kept).</summary>
internal sealed class PickleDict
{
    readonly Dictionary<object, int> _index = new();
    public List<KeyValuePair<object, object?>> Items { get; } = new();
    public void Set(object? key, object? value, string where)
    {
        if (key is null) throw new InvalidDataException($"{where}: dictionary key is None");
        if (key is not (string or long or bool or double))
            throw new InvalidDataException($"{where}: unsupported dictionary key type {key.GetType().Name}");
        if (_index.TryGetValue(key, out var i)) { Items[i] = new(key, value); return; }
        _index[key] = Items.Count;
        Items.Add(new(key, value));
    }
}

/// <summary>A global that the allow-list accepted (module.name).</summary>
internal sealed record PickleGlobal(string Module, string Name)
{
    public string FullName => Module + "." + Name;
}

/// <summary>An argument-less mark on the unpickler stack.</summary>
internal sealed class PickleMark
{
    public static readonly PickleMark Instance = new();
}

/// <summary>
/// A restricted unpickler: it understands the opcodes <c>torch.save</c> emits and builds plain data (numbers,
/// strings, tuples, lists, dicts) plus the few objects the caller allows through <see cref="ResolveGlobal"/>,
/// <see cref="Reduce"/> and <see cref="PersistentLoad"/>. It never imports or calls anything: an unknown global is
/// refused as soon as it is read.
/// </summary>
internal sealed class Unpickler
{
    readonly byte[] _data;
    readonly string _where;
    int _pos;
    readonly List<object?> _stack = new();
    readonly Dictionary<long, object?> _memo = new();

    /// <summary>Maps (module, name) to an allowed object, or returns null to refuse it.</summary>
    public required Func<string, string, object?> ResolveGlobal { get; init; }

    /// <summary>Applies an allowed callable to its argument tuple.</summary>
    public required Func<object, PickleTuple, object?> Reduce { get; init; }

    /// <summary>Turns a persistent id into an object.</summary>
    public required Func<object?, object?> PersistentLoad { get; init; }

    public Unpickler(byte[] data, string where)
    {
        _data = data;
        _where = where;
    }

    InvalidDataException Error(string message) => new($"{_where}: {message} (pickle offset {_pos})");

    byte ReadByte()
    {
        if (_pos >= _data.Length) throw Error("pickle data ends unexpectedly (truncated)");
        return _data[_pos++];
    }

    ReadOnlySpan<byte> ReadBytes(long n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Error($"pickle data ends unexpectedly: need {n} bytes, {_data.Length - _pos} left");
        var s = new ReadOnlySpan<byte>(_data, _pos, (int)n);
        _pos += (int)n;
        return s;
    }

    string ReadLine()
    {
        var start = _pos;
        var idx = Array.IndexOf(_data, (byte)'\n', _pos);
        if (idx < 0) throw Error("unterminated text line in pickle");
        _pos = idx + 1;
        return Encoding.UTF8.GetString(_data, start, idx - start);
    }

    void Push(object? o) => _stack.Add(o);

    object? Pop()
    {
        if (_stack.Count == 0) throw Error("pickle stack underflow");
        var o = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        if (o is PickleMark) throw Error("unexpected MARK on the pickle stack");
        return o;
    }

    object? Peek()
    {
        if (_stack.Count == 0) throw Error("pickle stack underflow");
        return _stack[^1];
    }

    List<object?> PopMark()
    {
        var i = _stack.Count - 1;
        while (i >= 0 && _stack[i] is not PickleMark) i--;
        if (i < 0) throw Error("MARK not found on the pickle stack");
        var items = _stack.GetRange(i + 1, _stack.Count - i - 1);
        _stack.RemoveRange(i, _stack.Count - i);
        return items;
    }

    void Memo(long key, object? value)
    {
        if (_memo.Count > 10_000_000) throw Error("pickle memo too large");
        _memo[key] = value;
    }

    object? Get(long key) =>
        _memo.TryGetValue(key, out var v) ? v : throw Error($"pickle memo key {key} was never stored");

    object Global(string module, string name)
    {
        var g = ResolveGlobal(module, name);
        if (g is null)
            throw new InvalidDataException(
                $"{_where}: forbidden pickle global '{module}.{name}' (only tensor-rebuilding globals such as " +
                "collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.*Storage are allowed); " +
                "refusing to load (nothing was executed)");
        return g;
    }

    public object? Load()
    {
        while (true)
        {
            var op = ReadByte();
            switch (op)
            {
                case 0x80: // PROTO
                    var proto = ReadByte();
                    if (proto > 5) throw Error($"unsupported pickle protocol {proto}");
                    break;
                case 0x95: // FRAME
                    ReadBytes(8);
                    break;
                case (byte)'.': // STOP
                    return Pop();
                case (byte)'}': Push(new PickleDict()); break; // EMPTY_DICT
                case (byte)']': Push(new List<object?>()); break; // EMPTY_LIST
                case (byte)')': Push(new PickleTuple([])); break; // EMPTY_TUPLE
                case (byte)'(': Push(PickleMark.Instance); break; // MARK
                case (byte)'N': Push(null); break; // NONE
                case 0x88: Push(true); break; // NEWTRUE
                case 0x89: Push(false); break; // NEWFALSE
                case (byte)'X': // BINUNICODE
                    Push(Encoding.UTF8.GetString(ReadBytes(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))));
                    break;
                case 0x8c: // SHORT_BINUNICODE
                    Push(Encoding.UTF8.GetString(ReadBytes(ReadByte())));
                    break;
                case 0x8d: // BINUNICODE8
                    Push(Encoding.UTF8.GetString(ReadBytes((long)BinaryPrimitives.ReadUInt64LittleEndian(ReadBytes(8)))));
                    break;
                case (byte)'T': // BINSTRING (py2 str)
                    Push(Encoding.Latin1.GetString(ReadBytes(BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4)))));
                    break;
                case (byte)'U': // SHORT_BINSTRING
                    Push(Encoding.Latin1.GetString(ReadBytes(ReadByte())));
                    break;
                case (byte)'B': // BINBYTES
                    Push(ReadBytes(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4))).ToArray());
                    break;
                case (byte)'C': // SHORT_BINBYTES
                    Push(ReadBytes(ReadByte()).ToArray());
                    break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4))); break; // BININT
                case (byte)'K': Push((long)ReadByte()); break; // BININT1
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(ReadBytes(2))); break; // BININT2
                case 0x8a: // LONG1
                    Push(Long(ReadBytes(ReadByte())));
                    break;
                case 0x8b: // LONG4
                    Push(Long(ReadBytes(BinaryPrimitives.ReadInt32LittleEndian(ReadBytes(4)))));
                    break;
                case (byte)'G': // BINFLOAT (big-endian double)
                    Push(BinaryPrimitives.ReadDoubleBigEndian(ReadBytes(8)));
                    break;
                case 0x85: Push(new PickleTuple([Pop()])); break; // TUPLE1
                case 0x86: // TUPLE2
                {
                    var b = Pop();
                    var a = Pop();
                    Push(new PickleTuple([a, b]));
                    break;
                }
                case 0x87: // TUPLE3
                {
                    var c = Pop();
                    var b = Pop();
                    var a = Pop();
                    Push(new PickleTuple([a, b, c]));
                    break;
                }
                case (byte)'t': Push(new PickleTuple(PopMark().ToArray())); break; // TUPLE
                case (byte)'l': Push(PopMark()); break; // LIST
                case (byte)'d': // DICT
                {
                    var items = PopMark();
                    var d = new PickleDict();
                    if (items.Count % 2 != 0) throw Error("DICT with an odd number of items");
                    for (var i = 0; i < items.Count; i += 2) d.Set(items[i], items[i + 1], _where);
                    Push(d);
                    break;
                }
                case (byte)'q': Memo(ReadByte(), Peek()); break; // BINPUT
                case (byte)'r': Memo(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)), Peek()); break; // LONG_BINPUT
                case 0x94: Memo(_memo.Count, Peek()); break; // MEMOIZE
                case (byte)'h': Push(Get(ReadByte())); break; // BINGET
                case (byte)'j': Push(Get(BinaryPrimitives.ReadUInt32LittleEndian(ReadBytes(4)))); break; // LONG_BINGET
                case (byte)'c': // GLOBAL
                {
                    var module = ReadLine();
                    var name = ReadLine();
                    Push(Global(module, name));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    var name = Pop() as string ?? throw Error("STACK_GLOBAL name is not a string");
                    var module = Pop() as string ?? throw Error("STACK_GLOBAL module is not a string");
                    Push(Global(module, name));
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    var args = Pop() as PickleTuple ?? throw Error("REDUCE arguments are not a tuple");
                    var func = Pop() ?? throw Error("REDUCE of None");
                    Push(Reduce(func, args));
                    break;
                }
                case (byte)'b': // BUILD: state is ignored (e.g. an OrderedDict's _metadata); nothing is called
                    Pop();
                    Peek();
                    break;
                case (byte)'s': // SETITEM
                {
                    var value = Pop();
                    var key = Pop();
                    var d = Peek() as PickleDict ?? throw Error("SETITEM on a non-dict");
                    d.Set(key, value, _where);
                    break;
                }
                case (byte)'u': // SETITEMS
                {
                    var items = PopMark();
                    var d = Peek() as PickleDict ?? throw Error("SETITEMS on a non-dict");
                    if (items.Count % 2 != 0) throw Error("SETITEMS with an odd number of items");
                    for (var i = 0; i < items.Count; i += 2) d.Set(items[i], items[i + 1], _where);
                    break;
                }
                case (byte)'a': // APPEND
                {
                    var value = Pop();
                    var l = Peek() as List<object?> ?? throw Error("APPEND on a non-list");
                    l.Add(value);
                    break;
                }
                case (byte)'e': // APPENDS
                {
                    var items = PopMark();
                    var l = Peek() as List<object?> ?? throw Error("APPENDS on a non-list");
                    l.AddRange(items);
                    break;
                }
                case (byte)'Q': Push(PersistentLoad(Pop())); break; // BINPERSID
                case (byte)'0': Pop(); break; // POP
                case (byte)'1': PopMark(); break; // POP_MARK
                case (byte)'2': Push(Peek()); break; // DUP
                default:
                    _pos--;
                    throw Error($"unsupported pickle opcode 0x{op:x2} ('{(op >= 32 && op < 127 ? (char)op : '?')}'); only the opcodes torch.save emits are accepted");
            }
        }
    }

    object Long(ReadOnlySpan<byte> bytes)
    {
        if (bytes.Length == 0) return 0L;
        var v = new BigInteger(bytes, isUnsigned: false, isBigEndian: false);
        // (object) matters: without it the conditional's type is BigInteger and every LONG1 value (e.g. a storage of
        // 2^31 elements or more) would reach the caller as a BigInteger instead of a long.
        return v >= long.MinValue && v <= long.MaxValue ? (object)(long)v : v;
    }
}
