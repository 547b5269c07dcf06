namespace BertSharp.Data;

/// <summary>
/// Small deterministic PRNG (xoshiro256** seeded through SplitMix64) used by the data pipeline. Never touches a
/// global RNG: every random decision is derived from an explicit seed, so example creation, masking and epoch
/// order are pure functions of (seed, purpose, indices).
/// </summary>
public sealed class DataRng
{
    ulong _s0, _s1, _s2, _s3;

    public DataRng(ulong seed)
    {
        ulong x = seed;
        _s0 = SplitMix(ref x); _s1 = SplitMix(ref x); _s2 = SplitMix(ref x); _s3 = SplitMix(ref x);
        if ((_s0 | _s1 | _s2 | _s3) == 0) _s0 = 1;
    }

    /// <summary>An RNG for a stream identified by a seed and up to three further keys (e.g. purpose, epoch, index).</summary>
    public static DataRng For(ulong seed, ulong a, ulong b = 0, ulong c = 0) => new(Mix(seed, a, b, c));

    /// <summary>Hashes a tuple of keys into one well-mixed 64-bit seed.</summary>
    public static ulong Mix(ulong seed, ulong a, ulong b = 0, ulong c = 0)
    {
        ulong h = MixPair(seed, a);
        h = Finalize(h ^ (b + 0xA0761D6478BD642FUL));
        h = Finalize(h ^ (c + 0xD6E8FEB86659FD93UL));
        return h;
    }

    /// <summary>Hashes two keys into one seed (the first two rounds of <see cref="Mix"/>; the trainer's per-step seed).</summary>
    public static ulong MixPair(ulong a, ulong b) => Finalize(Finalize(a ^ 0x9E3779B97F4A7C15UL) ^ (b + 0x632BE59BD9B4E019UL));

    /// <summary>One step of the splitmix64 generator: advances <paramref name="x"/> and returns the next value.
    /// The only splitmix64 in the library (seeding, hashing, shuffles).</summary>
    public static ulong SplitMix(ref ulong x)
    {
        x += 0x9E3779B97F4A7C15UL;
        return Finalize(x);
    }

    static ulong Finalize(ulong z)
    {
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
        return z ^ (z >> 31);
    }

    static ulong Rotl(ulong x, int k) => (x << k) | (x >> (64 - k));

    public ulong NextUInt64()
    {
        ulong result = Rotl(_s1 * 5, 7) * 9;
        ulong t = _s1 << 17;
        _s2 ^= _s0; _s3 ^= _s1; _s1 ^= _s2; _s0 ^= _s3;
        _s2 ^= t;
        _s3 = Rotl(_s3, 45);
        return result;
    }

    /// <summary>Uniform double in [0, 1) (Python's <c>random.random()</c>).</summary>
    public double NextDouble() => (NextUInt64() >> 11) * (1.0 / (1UL << 53));

    /// <summary>Uniform integer in [0, n) without modulo bias.</summary>
    public int NextInt(int n)
    {
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(n), n, "must be positive");
        ulong bound = (ulong)n;
        ulong threshold = (0UL - bound) % bound;
        while (true)
        {
            ulong r = NextUInt64();
            if (r >= threshold) return (int)(r % bound);
        }
    }

    /// <summary>Uniform integer in [lo, hi], both inclusive (Python's <c>random.randint(lo, hi)</c>).</summary>
    public int NextInclusive(int lo, int hi)
    {
        if (hi < lo) throw new ArgumentOutOfRangeException(nameof(hi), $"randint({lo}, {hi}): empty range");
        return lo + NextInt(hi - lo + 1);
    }

    /// <summary>Fisher–Yates shuffle in place.</summary>
    public void Shuffle<T>(IList<T> items)
    {
        for (int i = items.Count - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }

    public void Shuffle<T>(Span<T> items)
    {
        for (int i = items.Length - 1; i > 0; i--)
        {
            int j = NextInt(i + 1);
            (items[i], items[j]) = (items[j], items[i]);
        }
    }
}

/// <summary>Purposes that separate the random streams derived from one seed.</summary>
internal static class RngPurpose
{
    public const ulong CreateExamples = 1;
    public const ulong StaticMask = 2;
    public const ulong DynamicMask = 3;
    public const ulong EpochOrder = 4;
    public const ulong BatchOrder = 5;
}
