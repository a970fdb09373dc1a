using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Hangfire.Hosting;

namespace QwenBatch.Dashboard.Tests.Support;

/// <summary>
/// Hangfire keeps one log provider per process, and every web host of these tests points it at its own logger factory
/// when it mounts the dashboard (Hangfire.AspNetCore's AddHangfire does). That factory is disposed with its host, and
/// Hangfire asks the provider for loggers in constructors (its retry filter's, when the next runtime builds its filters),
/// which then throw ObjectDisposedException. One process runs one <c>serve</c>, so only tests meet this: each composition
/// starts from a provider that is never disposed.
/// </summary>
internal static class HangfireLogs
{
    public static void Reset() => EngineServices.UseLogging(NullLoggerFactory.Instance);
}
