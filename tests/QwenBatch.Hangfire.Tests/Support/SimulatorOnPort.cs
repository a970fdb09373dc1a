using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Simulator;

namespace QwenBatch.Hangfire.Tests.Support;

/// <summary>A simulator a test stops and starts again on the same port (a provider outage).</summary>
internal sealed class SimulatorOnPort : IAsyncDisposable
{
    private SimulatorHost? _host;

    private SimulatorOnPort(SimulatorHost host) => _host = host;

    public Uri Url { get; private init; } = null!;

    public static async Task<SimulatorOnPort> StartAsync(SimulatorOptions options, int port = 0)
    {
        var host = await SimulatorHost.StartAsync(options, port, TimeProvider.System, NullLoggerFactory.Instance, CancellationToken.None);
        return new SimulatorOnPort(host) { Url = host.BaseUrl };
    }

    internal SimulatorStats Stats() => _host?.GetStats() ?? throw new InvalidOperationException("The simulator is stopped.");

    public async Task StopAsync()
    {
        if (_host is { } host)
        {
            _host = null;
            await host.DisposeAsync();
        }
    }

    public ValueTask DisposeAsync() => new(StopAsync());
}
