namespace BertSharp.Training;

/// <summary>
/// Linear warm-up from 0 to the peak learning rate over <see cref="WarmupSteps"/> updates, then linear decay to 0
/// at <see cref="TotalSteps"/> (HF <c>get_linear_schedule_with_warmup</c>; Google's BERT schedule with power 1).
/// </summary>
public sealed record LinearWarmupDecay(double PeakLr, long WarmupSteps, long TotalSteps)
{
    /// <summary>Learning rate of update number <paramref name="step"/>, counted from 0.</summary>
    public double At(long step)
    {
        if (step < WarmupSteps) return PeakLr * step / Math.Max(1, WarmupSteps);
        return PeakLr * Math.Max(0.0, (double)(TotalSteps - step) / Math.Max(1, TotalSteps - WarmupSteps));
    }

    /// <summary>Warm-up steps from either an explicit count or a proportion of the total.</summary>
    public static long ResolveWarmup(long totalSteps, double? proportion, long? steps)
    {
        if (steps is { } s) return Math.Clamp(s, 0, totalSteps);
        var p = proportion ?? 0.1;
        if (p < 0 || p > 1) throw new ArgumentException($"warmup proportion must be in [0, 1] (got {p})");
        return (long)Math.Floor(totalSteps * p);
    }
}
