using System.Runtime.CompilerServices;
using BertSharp.Inference;

namespace BertSharp.Tests;

/// <summary>
/// The test process is an entry point like the CLI: it sets the runtime up once, with one libtorch thread (what the
/// training tests' configs ask for, deterministic, and fastest on a shared machine). The trainer itself never changes
/// the thread count; verbs run in-process with <c>--threads N</c> still apply theirs. The ONNX engine's cache
/// (<c>BERTSHARP_CACHE</c>) is a fresh temporary folder of this process, set once here and never changed by a test
/// (tests run in parallel), so every run exercises the export and the user's cache is left alone.
/// </summary>
static class TestRuntime
{
#pragma warning disable CA2255 // a module initializer in a test assembly: the entry-point setup, intentional
    [ModuleInitializer]
    internal static void Initialize()
    {
        Runtime.Initialize(threads: 1);
        var cache = Directory.CreateTempSubdirectory("bertsharp-test-cache-").FullName;
        Environment.SetEnvironmentVariable(OnnxEngine.CacheEnvVar, cache);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(cache, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        };
    }
#pragma warning restore CA2255
}
