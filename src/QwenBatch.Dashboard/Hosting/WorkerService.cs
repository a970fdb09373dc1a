using Microsoft.Extensions.Hosting;
using QwenBatch.Server;

namespace QwenBatch.Dashboard.Hosting;

/// <summary>The job engine over every batch, as a hosted service of <c>serve</c> (left out with <c>--no-worker</c>).</summary>
public sealed class WorkerService(JobServer server) : BackgroundService
{
    protected override Task ExecuteAsync(CancellationToken stoppingToken) => server.RunAsync(ServerScope.Everything, stoppingToken);
}
