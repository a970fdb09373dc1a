using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using QwenBatch.Simulator.Faults;
using QwenBatch.Simulator.Hosting;
using QwenBatch.Simulator.Images;
using QwenBatch.Simulator.Odirouter;
using QwenBatch.Simulator.Stats;
using QwenBatch.Simulator.Tasks;
using QwenBatch.Simulator.WaveSpeed;
using QwenBatch.Simulator.Webhooks;

namespace QwenBatch.Simulator;

/// <summary>
/// A running provider simulator: Kestrel on a loopback (or configured) address serving the
/// odirouter queue API at the root and under /model, the WaveSpeed API at its /api/v3 paths (and its webhooks, sent to
/// the receivers submits name), the output files and <c>/_sim/stats</c>.
/// </summary>
internal sealed class SimulatorHost : IAsyncDisposable
{
    private readonly WebApplication _app;
    private readonly StatsReader _stats;
    private readonly WebhookDispatcher _webhooks;
    private readonly ILogger _logger;
    private int _disposed;

    private SimulatorHost(WebApplication app, StatsReader stats, WebhookDispatcher webhooks, Uri baseUrl, ILogger logger)
    {
        _app = app;
        _stats = stats;
        _webhooks = webhooks;
        BaseUrl = baseUrl;
        _logger = logger;
    }

    /// <summary>Root URL with a trailing slash, e.g. http://127.0.0.1:41234/. The real API's base corresponds to <c>BaseUrl + "model"</c> (or BaseUrl itself).</summary>
    public Uri BaseUrl { get; }

    /// <summary>Starts Kestrel; <paramref name="port"/> 0 picks a free port.</summary>
    public static async Task<SimulatorHost> StartAsync(
        SimulatorOptions options,
        int port,
        TimeProvider time,
        ILoggerFactory loggerFactory,
        CancellationToken ct)
    {
        options.Validate();
        ArgumentOutOfRangeException.ThrowIfNegative(port);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(port, IPEndPoint.MaxPort);

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions
        {
            ApplicationName = typeof(SimulatorHost).Assembly.GetName().Name,
            ContentRootPath = AppContext.BaseDirectory,
        });
        // Ignore appsettings.json / ASPNETCORE_* of the host process: a "Kestrel" section or
        // ASPNETCORE_URLS there must not change where the simulator listens.
        builder.Configuration.Sources.Clear();
        builder.Logging.ClearProviders();
        builder.Services.AddSingleton(loggerFactory);
        builder.Services.AddSingleton<IHostLifetime, EmbeddedLifetime>();
        builder.WebHost.ConfigureKestrel(kestrel =>
        {
            kestrel.AddServerHeader = false;
            if (string.Equals(options.Host, "localhost", StringComparison.OrdinalIgnoreCase))
                kestrel.ListenLocalhost(port);
            else if (IPAddress.TryParse(options.Host, out var address))
                kestrel.Listen(address, port);
            else
                throw new ArgumentException($"Simulator Host must be an IP address or \"localhost\", got \"{options.Host}\".");
        });

        var app = builder.Build();
        var board = new TaskBoard(options, time);
        var counters = new CallCounters();
        var dice = new FaultDice(options.RandomSeed);
        var gate = new ApiGate(options, time, counters, dice);
        app.MapOdirouter(new OdirouterApi(board, counters, gate, options, loggerFactory.CreateLogger<OdirouterApi>()));
        var uploads = new UploadShelf(time);
        var stats = new StatsReader(counters, board, uploads, options);
        var signer = new WebhookSigner(options.WebhookSecret);
        var webhooks = new WebhookDispatcher(options, board, new WebhookSender(signer, time), counters, dice, time, loggerFactory.CreateLogger<WebhookDispatcher>());
        var waveSpeed = new WaveSpeedApi(board, counters, gate, uploads, webhooks, options, time, loggerFactory.CreateLogger<WaveSpeedApi>());
        app.MapWaveSpeed(waveSpeed, new WaveSpeedUploads(waveSpeed, uploads), new WaveSpeedWebhookSecret(waveSpeed, signer));
        app.MapSimulatorFiles(board, counters, dice, options);
        app.MapSimulatorStats(stats);

        await app.StartAsync(ct);

        var logger = loggerFactory.CreateLogger<SimulatorHost>();
        var baseUrl = ResolveBaseUrl(app, options.Host);
        logger.Started(baseUrl, options.MaxConcurrent, options.LatencyMin, options.LatencyMax, options.FailRate);
        return new SimulatorHost(app, stats, webhooks, baseUrl, logger);
    }

    /// <summary>Counters and charges as of now (same data as <c>GET /_sim/stats</c>).</summary>
    public SimulatorStats GetStats() => _stats.Read();

    /// <summary>
    /// Completes when <paramref name="ct"/> is cancelled (e.g. Ctrl-C in a foreground <c>simulate</c>
    /// command) or the host is stopped; does not throw on cancellation. Dispose afterwards.
    /// </summary>
    public async Task WaitForShutdownAsync(CancellationToken ct)
    {
        var stopping = _app.Lifetime.ApplicationStopping;
        using var linked = CancellationTokenSource.CreateLinkedTokenSource(ct, stopping);
        try
        {
            await Task.Delay(Timeout.InfiniteTimeSpan, linked.Token);
        }
        catch (OperationCanceledException)
        {
            // Expected: this is how waiting ends.
        }
    }

    public async ValueTask DisposeAsync()
    {
        if (Interlocked.Exchange(ref _disposed, 1) != 0)
            return;
        try
        {
            // Pending and running webhook deliveries are cancelled first: stopping must not wait on a receiver.
            await _webhooks.DisposeAsync();
            await _app.StopAsync(CancellationToken.None);
        }
        finally
        {
            await _app.DisposeAsync();
            _logger.Stopped(BaseUrl);
        }
    }

    private static Uri ResolveBaseUrl(WebApplication app, string host)
    {
        var addresses = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()?.Addresses ?? [];
        var bound = addresses.Select(a => new Uri(a)).FirstOrDefault()
            ?? throw new InvalidOperationException("The simulator started without a bound address.");
        // Kestrel reports "localhost" bindings as http://localhost:port; IPs as given.
        var authority = IPAddress.TryParse(host, out var ip) && ip.AddressFamily == System.Net.Sockets.AddressFamily.InterNetworkV6
            ? $"[{ip}]"
            : host;
        return new Uri($"http://{authority}:{bound.Port}/");
    }
}
