using BertSharp.Checkpoints;
using BertSharp.Export;
using Xunit;

namespace BertSharp.Tests.Export;

/// <summary>The protobuf writer against the library's reader and hand-encoded bytes from the protobuf spec.</summary>
public class ProtoWriterTests
{
    [Fact]
    public void EncodesLikeTheSpec()
    {
        // Spec example: field 1 = 150 → 08 96 01; field 2 = "testing" → 12 07 74 65 73 74 69 6e 67.
        Assert.Equal(new byte[] { 0x08, 0x96, 0x01 }, new ProtoMessage().Int(1, 150).ToArray());
        Assert.Equal(Convert.FromHexString("120774657374696E67"), new ProtoMessage().String(2, "testing").ToArray());
        // Negative int64: ten bytes, two's complement.
        Assert.Equal(Convert.FromHexString("08FFFFFFFFFFFFFFFFFF01"), new ProtoMessage().Int(1, -1).ToArray());
        // Nested message: field 3 { field 1 = 150 } → 1a 03 08 96 01.
        Assert.Equal(Convert.FromHexString("1A03089601"), new ProtoMessage().Message(3, new ProtoMessage().Int(1, 150)).ToArray());
        // Packed repeated: field 4 = [3, 270, 86942] → 22 06 03 8E 02 9E A7 05.
        Assert.Equal(Convert.FromHexString("2206038E029EA705"), new ProtoMessage().PackedInts(4, [3, 270, 86942]).ToArray());
        // float: field 2 fixed32 1.5f = 0x3FC00000.
        Assert.Equal(Convert.FromHexString("150000C03F"), new ProtoMessage().Float(2, 1.5f).ToArray());
    }

    [Fact]
    public void RoundTripsThroughProtoReader()
    {
        var payload = Enumerable.Range(0, 300).Select(i => (byte)i).ToArray();
        var inner = new ProtoMessage().Int(1, long.MaxValue).LazyBytes(2, payload.Length, s => s.Write(payload));
        var msg = new ProtoMessage().Message(7, inner).Int(3, 0).String(4, "é€").PackedFloats(5, [1f, -2.5f]);
        var bytes = msg.ToArray();
        Assert.Equal(msg.Size, bytes.Length);

        var r = new ProtoReader(bytes, "test");
        var (f, w) = r.ReadTag();
        Assert.Equal((7, 2), (f, w));
        var ir = new ProtoReader(r.ReadBytes(), "inner");
        Assert.Equal((1, 0), ir.ReadTag());
        Assert.Equal((ulong)long.MaxValue, ir.ReadVarint());
        Assert.Equal((2, 2), ir.ReadTag());
        Assert.Equal(payload, ir.ReadBytes().ToArray());
        Assert.True(ir.End);
        Assert.Equal((3, 0), r.ReadTag());
        Assert.Equal(0UL, r.ReadVarint());
        Assert.Equal((4, 2), r.ReadTag());
        Assert.Equal("é€", System.Text.Encoding.UTF8.GetString(r.ReadBytes()));
        Assert.Equal((5, 2), r.ReadTag());
        var floats = r.ReadBytes();
        Assert.Equal(new[] { 1f, -2.5f }, new[] { BitConverter.ToSingle(floats[..4]), BitConverter.ToSingle(floats[4..]) });
        Assert.True(r.End);
    }

    [Fact]
    public void LazyBytesMustWriteWhatTheyPromise()
    {
        var msg = new ProtoMessage().LazyBytes(1, 4, s => s.Write([1, 2, 3]));
        Assert.Throws<InvalidOperationException>(() => msg.ToArray());
    }
}
