using Xunit;
using static TorchSharp.torch;

namespace BertSharp.Tests;

/// <summary>Tensor comparisons shared by the parity tests.</summary>
public static class TensorAssert
{
    /// <summary>max |a − b| over the rows where the [B, L] mask is 1 (all rows when mask is null); NaN propagates.</summary>
    public static double MaxAbsDiff(Tensor a, Tensor b, Tensor? mask = null)
    {
        Assert.Equal(b.shape, a.shape);
        var d = (a.to(ScalarType.Float32) - b.to(ScalarType.Float32)).abs();
        if (mask is not null)
        {
            var m = mask.to(ScalarType.Float32);
            while (m.dim() < d.dim()) m = m.unsqueeze(-1);
            d = d * m;
        }
        return d.max().item<float>();
    }
}
