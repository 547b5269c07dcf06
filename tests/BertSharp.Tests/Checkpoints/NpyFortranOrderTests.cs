using System.Text;
using System.Text.Json;
using BertSharp.Checkpoints;
using Xunit;

namespace BertSharp.Tests.Checkpoints;

public class NpyFortranOrderTests
{
    [Fact]
    public void FortranOrderIsReturnedInCOrder()
    {
        // C-order [[0,1,2],[3,4,5]] stored column-major: 0 3 1 4 2 5.
        var header = "{'descr': '<i8', 'fortran_order': True, 'shape': (2, 3), }";
        header = header.PadRight(118 - 10 - 1) + "\n";
        var bytes = new List<byte>([0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y', 1, 0]);
        bytes.AddRange(BitConverter.GetBytes((ushort)header.Length));
        bytes.AddRange(Encoding.ASCII.GetBytes(header));
        foreach (long v in new long[] { 0, 3, 1, 4, 2, 5 }) bytes.AddRange(BitConverter.GetBytes(v));
        var path = Path.GetTempFileName();
        try
        {
            File.WriteAllBytes(path, bytes.ToArray());
            var a = Npy.Read(path);
            Assert.Equal(new long[] { 2, 3 }, a.Shape);
            Assert.Equal(new long[] { 0, 1, 2, 3, 4, 5 }, a.ToInt64());
        }
        finally { File.Delete(path); }
    }

    /// <summary>The golden masked_positions files are Fortran-ordered; they must agree with the manifest's (batch, pos).</summary>
    [AssetFact(TestAssets.TinyRandom)]
    public void GoldenMaskedPositionsAgreeWithManifest()
    {
        var root = TestAssets.Path(TestAssets.TinyRandom);
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(root, "golden", "manifest.json")));
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            var expected = c.GetProperty("mlm").EnumerateArray().SelectMany(m => new[] { m.GetProperty("batch").GetInt64(), m.GetProperty("pos").GetInt64() }).ToArray();
            var actual = Npy.Read(Path.Combine(root, "golden", c.GetProperty("dir").GetString()!, "masked_positions.npy")).ToInt64();
            Assert.Equal(expected, actual);
        }
    }
}
