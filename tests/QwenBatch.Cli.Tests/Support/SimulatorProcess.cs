using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace QwenBatch.Cli.Tests.Support;

/// <summary>A separately started <c>qwenbatch simulate --port P</c>, read through its /_sim/stats.</summary>
internal sealed class SimulatorProcess : IAsyncDisposable
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly CliProcess _process;

    private SimulatorProcess(CliProcess process, Uri baseUrl)
    {
        _process = process;
        BaseUrl = baseUrl;
    }

    public Uri BaseUrl { get; }

    public static async Task<SimulatorProcess> StartAsync(string workingDirectory, string latency, params string[] options)
    {
        var port = FreePort();
        var process = CliProcess.Start(workingDirectory, null, ["simulate", "--port", port.ToString(System.Globalization.CultureInfo.InvariantCulture), "--latency", latency, .. options]);
        var simulator = new SimulatorProcess(process, new Uri($"http://127.0.0.1:{port}/"));
        for (var i = 0; i < 200; i++)
        {
            try
            {
                await simulator.StatsAsync();
                return simulator;
            }
            catch (HttpRequestException)
            {
                await Task.Delay(100);
            }
        }

        await process.DisposeAsync();
        throw new TimeoutException($"The simulator did not answer on port {port}: {process.Stdout}");
    }

    public async Task<JsonElement> StatsAsync()
    {
        var json = await Http.GetStringAsync(new Uri(BaseUrl, "_sim/stats"));
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    public async Task<long> SubmitsAsync() => (await StatsAsync()).GetProperty("submits").GetInt64();

    public ValueTask DisposeAsync() => _process.DisposeAsync();

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}
