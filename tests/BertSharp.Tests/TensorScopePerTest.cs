using System.Reflection;
using TorchSharp;
using Xunit.Sdk;

[assembly: BertSharp.Tests.TensorScopePerTest]

namespace BertSharp.Tests;

/// <summary>
/// Runs every test inside a TorchSharp dispose scope, so each tensor wrapper a test creates on its thread and does not
/// dispose itself is freed when the test ends, on that thread. Without it such wrappers are freed by the finalizer
/// thread whenever a GC runs, and TorchSharp's wrappers hold raw handles: a temporary whose last use is a native call
/// (<c>a.t().contiguous()</c>, <c>emb.weight.normal_()</c> once inlined) can be finalized while libtorch is still
/// using it, which crashed the test host now and then (docs/native.md). The library follows the same rule itself.
/// </summary>
[AttributeUsage(AttributeTargets.Assembly | AttributeTargets.Class | AttributeTargets.Method)]
public sealed class TensorScopePerTestAttribute : BeforeAfterTestAttribute
{
    [ThreadStatic] static Stack<DisposeScope>? _scopes;
    static long _opened;

    /// <summary>How many test scopes were opened in this process (a test checks the attribute is in force).</summary>
    public static long Opened => Interlocked.Read(ref _opened);

    public override void Before(MethodInfo methodUnderTest)
    {
        (_scopes ??= new()).Push(torch.NewDisposeScope());
        Interlocked.Increment(ref _opened);
    }

    public override void After(MethodInfo methodUnderTest)
    {
        // Before and After run on the test's thread; a scope opened elsewhere is not ours to close.
        if (_scopes is { Count: > 0 }) _scopes.Pop().Dispose();
    }
}
