using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.Json;

namespace QwenBatch.Cli.Tests.Support;

/// <summary>
/// A separately started <c>qwenbatch simulate --port P</c>, read through its /_sim/stats. It can be stopped and started
/// again on the same port (its request ids are stateless, so a new life answers for an old life's tasks); counters start
/// from zero in each life, so <see cref="TotalsAsync"/> adds up every life.
/// </summary>
internal sealed class SimulatorProcess : IAsyncDisposable
{
    private static readonly HttpClient Http = new() { Timeout = TimeSpan.FromSeconds(10) };
    private readonly string _workingDirectory;
    private readonly string[] _args;
    private readonly IReadOnlyDictionary<string, string>? _environment;
    private readonly List<JsonElement> _pastLives = [];
    private CliProcess? _process;

    private SimulatorProcess(string workingDirectory, string[] args, Uri baseUrl, IReadOnlyDictionary<string, string>? environment = null)
    {
        _workingDirectory = workingDirectory;
        _args = args;
        _environment = environment;
        BaseUrl = baseUrl;
    }

    public Uri BaseUrl { get; }

    public bool IsRunning => _process is not null;

    public static Task<SimulatorProcess> StartAsync(string workingDirectory, string latency, params string[] options) =>
        StartAsync(workingDirectory, latency, null, options);

    /// <param name="environment">Configuration for the simulator process, e.g. <c>Simulator__RandomSeed</c> for faults in a fixed order.</param>
    public static async Task<SimulatorProcess> StartAsync(string workingDirectory, string latency, IReadOnlyDictionary<string, string>? environment, params string[] options)
    {
        var port = FreePort().ToString(CultureInfo.InvariantCulture);
        var simulator = new SimulatorProcess(workingDirectory, ["simulate", "--port", port, "--latency", latency, .. options], new Uri($"http://127.0.0.1:{port}/"), environment);
        await simulator.StartAgainAsync();
        return simulator;
    }

    /// <summary>Stops the process (SIGKILL), keeping its last counters for <see cref="TotalsAsync"/>; clients get refused connections.</summary>
    public async Task StopAsync()
    {
        var process = _process ?? throw new InvalidOperationException("The simulator is not running.");
        // The counters as late as possible: what is accepted or completed between this read and the kill is not in them.
        _pastLives.Add(await StatsAsync());
        await process.DisposeAsync();
        _process = null;
    }

    /// <summary>Starts a new life on the same port, with the same options.</summary>
    public async Task StartAgainAsync()
    {
        if (_process is not null)
        {
            throw new InvalidOperationException("The simulator is already running.");
        }

        _process = CliProcess.Start(_workingDirectory, _environment, _args);
        for (var i = 0; i < 300; i++)
        {
            try
            {
                await StatsAsync();
                return;
            }
            catch (HttpRequestException)
            {
                await Task.Delay(100);
            }
        }

        var output = _process.Stdout + _process.Stderr;
        await _process.DisposeAsync();
        _process = null;
        throw new TimeoutException($"The simulator did not answer on {BaseUrl}: {output}");
    }

    public async Task<JsonElement> StatsAsync()
    {
        var json = await Http.GetStringAsync(new Uri(BaseUrl, "_sim/stats"));
        return JsonDocument.Parse(json).RootElement.Clone();
    }

    public async Task<long> SubmitsAsync() => (await StatsAsync()).GetProperty("submits").GetInt64();

    /// <summary>Every life's counters added up (the running life's as of now).</summary>
    public async Task<SimulatorTotals> TotalsAsync()
    {
        var lives = _pastLives.ToList();
        if (_process is not null)
        {
            lives.Add(await StatsAsync());
        }

        var faults = new SortedDictionary<string, long>(StringComparer.Ordinal);
        foreach (var life in lives)
        {
            if (life.TryGetProperty("faults", out var f) && f.ValueKind == JsonValueKind.Object)
            {
                foreach (var fault in f.EnumerateObject())
                {
                    faults[fault.Name] = faults.GetValueOrDefault(fault.Name) + fault.Value.GetInt64();
                }
            }
        }

        return new SimulatorTotals(
            lives.Count,
            lives.Sum(l => l.GetProperty("submits").GetInt64()),
            lives.Sum(l => l.GetProperty("charged_images").GetInt64()),
            lives.Sum(l => l.GetProperty("charged_usd").GetDecimal()),
            lives.Sum(l => l.GetProperty("rate_limited").GetInt64()),
            faults);
    }

    public ValueTask DisposeAsync() => _process?.DisposeAsync() ?? ValueTask.CompletedTask;

    private static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }
}

/// <summary>A simulator's counters over all its lives.</summary>
internal sealed record SimulatorTotals(int Lives, long Submits, long ChargedImages, decimal ChargedUsd, long RateLimited, IReadOnlyDictionary<string, long> Faults)
{
    public long Fault(string name) => Faults.GetValueOrDefault(name);

    public string FaultList => Faults.Count == 0 ? "none" : string.Join(", ", Faults.Select(f => $"{f.Key}={f.Value}"));
}
