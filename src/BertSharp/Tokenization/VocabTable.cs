using System.Runtime.CompilerServices;

namespace BertSharp.Tokenization;

/// <summary>
/// Read-only open-addressing hash table from token text to id, built for WordPiece's greedy search: the hash is
/// prefix-extendable (<c>h' = (h + c) · P</c>), so one pass over a word gives the hash of every candidate piece
/// [start, end) and each probe costs O(1) plus one comparison on a hash match. Token characters live in one
/// contiguous pool; nothing is allocated per lookup.
/// </summary>
internal sealed class VocabTable
{
    const uint Prime = 0x01000193;
    readonly char[] _pool;
    readonly int[] _start, _length;   // per entry
    readonly int[] _ids;              // per entry
    readonly int[] _slots;            // entry index + 1, 0 = empty
    readonly uint[] _slotHash;
    readonly int _mask;

    public VocabTable(IReadOnlyList<(string Text, int Id)> entries)
    {
        int n = entries.Count;
        _start = new int[n];
        _length = new int[n];
        _ids = new int[n];
        _pool = new char[entries.Sum(e => e.Text.Length)];
        int cap = 16;
        while (cap < n * 2) cap <<= 1;
        _slots = new int[cap];
        _slotHash = new uint[cap];
        _mask = cap - 1;
        int pos = 0;
        for (int i = 0; i < n; i++)
        {
            var (text, id) = entries[i];
            text.CopyTo(0, _pool, pos, text.Length);
            _start[i] = pos;
            _length[i] = text.Length;
            _ids[i] = id;
            pos += text.Length;
            uint h = Hash(text);
            if (TryGet(text, h, out _)) continue; // first occurrence wins
            int slot = Slot(h);
            while (_slots[slot] != 0) slot = (slot + 1) & _mask;
            _slots[slot] = i + 1;
            _slotHash[slot] = h;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static uint Step(uint h, char c) => (h + c) * Prime;

    public static uint Hash(ReadOnlySpan<char> s)
    {
        uint h = 0;
        foreach (var c in s) h = Step(h, c);
        return h;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    int Slot(uint h) => (int)((h ^ (h >> 15)) * 0x9E3779B1u >> 8) & _mask;

    /// <summary>Looks up <paramref name="s"/> whose <see cref="Hash"/> is <paramref name="h"/>.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(ReadOnlySpan<char> s, uint h, out int id)
    {
        int slot = Slot(h);
        while (true)
        {
            int e = _slots[slot];
            if (e == 0) { id = -1; return false; }
            if (_slotHash[slot] == h)
            {
                e--;
                if (_length[e] == s.Length && s.SequenceEqual(_pool.AsSpan(_start[e], s.Length)))
                {
                    id = _ids[e];
                    return true;
                }
            }
            slot = (slot + 1) & _mask;
        }
    }
}
