using Microsoft.Extensions.Hosting;

namespace QwenBatch.Simulator.Hosting;

/// <summary>
/// The simulator runs inside other processes (CLI, tests), so it must not take over Ctrl-C or
/// SIGTERM the way the default console lifetime does; its owner stops it.
/// </summary>
internal sealed class EmbeddedLifetime : IHostLifetime
{
    public Task WaitForStartAsync(CancellationToken cancellationToken) => Task.CompletedTask;

    public Task StopAsync(CancellationToken cancellationToken) => Task.CompletedTask;
}
