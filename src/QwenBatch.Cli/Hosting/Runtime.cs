using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Hangfire.Server;
using QwenBatch.Continuations;
using QwenBatch.Edits;
using QwenBatch.FlowControl;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Outputs;
using QwenBatch.Providers;
using QwenBatch.Providers.Odirouter;
using QwenBatch.Providers.Resilience;
using QwenBatch.Providers.WaveSpeed;
using QwenBatch.Retention;
using QwenBatch.Schedules;
using QwenBatch.Secrets;
using QwenBatch.Server;
using QwenBatch.Simulator;
using QwenBatch.Storage;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Storage.Sqlite;
using QwenBatch.Webhooks;
using Serilog;

namespace QwenBatch.Cli.Hosting;

/// <summary>
/// The composition root for commands that touch the store: configuration, logging, the store, provider clients and the
/// edit engine on Hangfire (started only by the commands that run edits), plus the in-process simulator when a command
/// asks for it.
/// </summary>
internal sealed partial class Runtime : IAsyncDisposable
{
    public const string SimulatorApiKey = "simulator-local-key";
    private const string SimulatorPortFile = "simulator.port";

    private readonly ServiceProvider _services;
    private EngineLock? _engineLock;

    private readonly ScopeChoice _engineScope;

    /// <summary>When this process opened the store: a continuation claimed before it was fired by an earlier command.</summary>
    private readonly DateTimeOffset _started;

    private Runtime(ServiceProvider services, SimulatorHost? simulator, ScopeChoice engineScope, DateTimeOffset started)
    {
        _services = services;
        Simulator = simulator;
        _engineScope = engineScope;
        _started = started;
    }

    public IStore Store => _services.GetRequiredService<IStore>();

    /// <summary>The one owner of edit state: cancels and requeues go through it.</summary>
    public EditStateChanger Edits => _services.GetRequiredService<EditStateChanger>();

    public ScheduleRunner Schedules => _services.GetRequiredService<ScheduleRunner>();

    public ContinuationRunner Continuations => _services.GetRequiredService<ContinuationRunner>();

    public ProviderRegistry Providers => _services.GetRequiredService<ProviderRegistry>();

    public EngineSignals Signals => _services.GetRequiredService<EngineSignals>();

    /// <summary>Everything the engine and the dashboard are built from.</summary>
    public IServiceProvider Services => _services;

    /// <summary>Whether Hangfire's storage is this process's memory (the embedded SQLite store), not the fleet's PostgreSQL.</summary>
    public bool Embedded { get; private init; }

    public ILoggerFactory LoggerFactory => _services.GetRequiredService<ILoggerFactory>();

    public TimeProvider Time => _services.GetRequiredService<TimeProvider>();

    public SimulatorHost? Simulator { get; }

    /// <summary>
    /// Makes the fleet's gauges (in flight, backlog, Hangfire queue length) observable, for a process that serves
    /// <c>/metrics</c>: they read the store and Hangfire's storage only when scraped.
    /// </summary>
    public void ObserveFleetGauges()
    {
        _services.GetRequiredService<Metrics.BacklogGauges>();
        _services.GetRequiredService<global::QwenBatch.Hangfire.Hosting.HangfireQueueGauge>();
    }

    public static async Task<Runtime> StartAsync(IConfiguration configuration, bool withSimulator, CancellationToken ct)
    {
        var time = TimeProvider.System;
        var started = time.GetUtcNow();

        // Options are validated before any work starts, with messages that name the setting and its range.
        var worker = SettingsCheck.Bind<WorkerOptions>(configuration, WorkerOptions.SectionName);
        var hangfire = SettingsCheck.Bind<HangfireOptions>(configuration, HangfireOptions.SectionName);
        var retention = SettingsCheck.Bind<RetentionOptions>(configuration, RetentionOptions.SectionName);
        var continuations = SettingsCheck.Bind<ContinuationOptions>(configuration, ContinuationOptions.SectionName);
        var webhooks = SettingsCheck.Bind<WebhookOptions>(configuration, WebhookOptions.SectionName);
        var accounts = AccountOptions(configuration);
        if (webhooks.WaveSpeedUrl is { } receiver)
        {
            // Every worker of the fleet asks WaveSpeed to post finished tasks to the one receiver serve runs there.
            accounts[ProviderNames.WaveSpeed].ReceiveWebhooksAt(new ProviderWebhook(receiver, webhooks.FallbackMargin));
        }

        SimulatorHost? simulator = null;
        if (withSimulator)
        {
            simulator = await StartSimulatorAsync(configuration, time, ct);
        }

        if (simulator is not null)
        {
            accounts[ProviderNames.Simulator].BaseUrl = simulator.BaseUrl;
        }

        accounts = accounts.Where(a => a.Value.BaseUrl is not null || a.Key != ProviderNames.Simulator).ToDictionary(StringComparer.OrdinalIgnoreCase);
        var postgres = configuration.GetConnectionString("Postgres") is { Length: > 0 } connection && !string.IsNullOrWhiteSpace(connection) ? connection : null;
        var engineScope = new ScopeChoice();
        var services = new ServiceCollection();
        services.AddSingleton(configuration);
        services.AddLogging(logging => logging.ClearProviders().AddSerilog(dispose: false));
        services.AddQwenBatch(new QwenBatchParts(
            accounts,
            sp => CreateStore(configuration, time, sp.GetRequiredService<ILoggerFactory>()),
            postgres,
            () => engineScope.Scope,
            worker,
            hangfire,
            retention,
            continuations,
            Logging.ConfiguredSecrets.From(configuration),
            time));
        services.AddSingleton(webhooks);
        var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
        var runtime = new Runtime(provider, simulator, engineScope, started) { Embedded = postgres is null };
        try
        {
            await runtime.Store.MigrateAsync(ct);
            return runtime;
        }
        catch (Exception ex) when (ex is Npgsql.NpgsqlException or Microsoft.Data.Sqlite.SqliteException or ArgumentException or IOException)
        {
            await runtime.DisposeAsync();
            throw new CliException(ExitCodes.UsageOrConfiguration, $"Cannot open the job store: {ex.Message}");
        }
    }

    /// <summary>
    /// Starts this process's Hangfire server with the feeder, poller and housekeeping beside its workers. On the embedded
    /// store, Hangfire lives in this process's memory: every unsettled edit in scope forgets the job an earlier process gave
    /// it (a submit caught in flight is counted uncertain), so the feeder and the sweep give each a job again.
    /// </summary>
    /// <param name="scope">What the engine works on: one batch (<c>run</c>) or every batch.</param>
    public async Task<IBackgroundProcessingServer> StartEngineAsync(EngineScope scope, CancellationToken ct)
    {
        _engineScope.Scope = scope;
        var loggers = LoggerFactory;
        EngineServices.UseLogging(loggers);
        if (Embedded)
        {
            _engineLock ??= EngineLock.Take(StateDirectory(_services.GetRequiredService<IConfiguration>()));
            var forgotten = await Edits.ForgetJobsAsync(scope.BatchId, $"{Environment.MachineName}:{Environment.ProcessId}", ct);
            var logger = loggers.CreateLogger<Runtime>();
            if (forgotten > 0)
            {
                LogResuming(logger, forgotten);
            }
        }

        return await EditServer.StartAsync(_services, ct);
    }

    /// <summary>
    /// Fires the settled batch's continuation as a Hangfire job and waits for what it did, so that the command that ended
    /// the batch can print it: claimed here (or by a housekeeper that was quicker; each fires once fleet-wide), run by this
    /// process's engine when one is running, else by a short-lived one started for it. Null when the batch has none, or
    /// when another process runs the embedded store's engine and fires it there, or when an earlier command already fired
    /// it (the batch was settled before this one, and a second cancel changes nothing).
    /// </summary>
    public async Task<string?> ContinueAsync(long batchId, CancellationToken ct)
    {
        if (await Store.GetContinuationAsync(batchId, ct) is not { Then.IsEmpty: false } continuation
            || (continuation.ClaimedAt is { } claimedAt && claimedAt < _started))
        {
            return null;
        }

        IBackgroundProcessingServer? started = null;
        if (_engineScope.Scope.BatchId != batchId && _engineLock is null)
        {
            if (Embedded && !EngineLock.IsFree(StateDirectory(_services.GetRequiredService<IConfiguration>())))
            {
                return null;
            }

            started = await StartEngineAsync(new EngineScope(batchId), ct);
        }

        try
        {
            var client = _services.GetRequiredService<global::Hangfire.IBackgroundJobClient>();
            var queue = _services.GetRequiredService<HangfireOptions>().Queue;
            foreach (var claimed in await Continuations.ClaimSettledAsync(batchId, ct))
            {
                client.Create(QwenBatch.Hangfire.Jobs.ContinuationJob.JobFor(claimed.BatchId, queue), new global::Hangfire.States.EnqueuedState(queue) { Reason = "its batch settled" });
            }

            var waited = Time.GetTimestamp();
            while (Time.GetElapsedTime(waited) < ContinuationWait)
            {
                if ((await Store.GetContinuationAsync(batchId, ct))?.Result is { } result)
                {
                    return result;
                }

                await Task.Delay(TimeSpan.FromMilliseconds(200), Time, ct);
            }

            return "still firing in the background";
        }
        finally
        {
            if (started is not null)
            {
                await EditServer.StopAsync(started);
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Resuming {Count} edit(s) an earlier process had handed to Hangfire")]
    private static partial void LogResuming(Microsoft.Extensions.Logging.ILogger logger, int count);

    /// <summary>How long a command waits for a batch's continuation job before it exits and leaves it to the job.</summary>
    private static readonly TimeSpan ContinuationWait = TimeSpan.FromMinutes(2);

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        _engineLock?.Dispose();
        if (Simulator is not null)
        {
            await Simulator.DisposeAsync();
        }
    }

    private static IStore CreateStore(IConfiguration configuration, TimeProvider time, ILoggerFactory loggers)
    {
        var connectionString = configuration.GetConnectionString("Postgres");
        if (!string.IsNullOrWhiteSpace(connectionString))
        {
            return new PostgresStore(connectionString, time, loggers.CreateLogger<PostgresStore>());
        }

        return new SqliteStore(Path.Combine(StateDirectory(configuration), "qwenbatch.db"), time);
    }

    /// <summary>Every configured account's options: keys from configuration or the provider's environment variable.</summary>
    private static Dictionary<string, ProviderOptions> AccountOptions(IConfiguration configuration)
    {
        var accounts = new Dictionary<string, ProviderOptions>(StringComparer.OrdinalIgnoreCase);
        var odirouter = Bind(configuration, "Odirouter");
        odirouter.ApiKey ??= Environment.GetEnvironmentVariable("ODIROUTER_API_KEY") is { Length: > 0 } key ? key : null;
        accounts[ProviderNames.Odirouter] = odirouter;

        var waveSpeed = Bind(configuration, "WaveSpeed");
        waveSpeed.ApiKey ??= Environment.GetEnvironmentVariable("WAVESPEED_API_KEY") is { Length: > 0 } wsKey ? wsKey : null;
        accounts[ProviderNames.WaveSpeed] = waveSpeed;

        var simulated = Bind(configuration, "Simulator");
        simulated.ApiKey ??= SimulatorApiKey;
        accounts[ProviderNames.Simulator] = simulated;
        return accounts;
    }

    private static ProviderOptions Bind(IConfiguration configuration, string section)
    {
        var options = SettingsCheck.Bind<ProviderOptions>(configuration, $"Providers:{section}");
        if (string.IsNullOrEmpty(options.ApiKey))
        {
            options.ApiKey = null;
        }

        return options;
    }

    public static string StateDirectory(IConfiguration configuration) =>
        Path.GetFullPath(configuration["State:Directory"] is { Length: > 0 } dir ? dir : ".qwenbatch");

    /// <summary>
    /// Starts the simulator on the port it used last time when it is free, so a resumed run can still fetch outputs of
    /// tasks the previous run submitted (the simulator's request ids carry their own state).
    /// </summary>
    private static async Task<SimulatorHost> StartSimulatorAsync(IConfiguration configuration, TimeProvider time, CancellationToken ct)
    {
        var options = new SimulatorOptions();
        configuration.GetSection("Simulator").Bind(options);
        var loggers = new Serilog.Extensions.Logging.SerilogLoggerFactory(Log.Logger, dispose: false);
        var portFile = Path.Combine(StateDirectory(configuration), SimulatorPortFile);
        if (File.Exists(portFile) && int.TryParse(await File.ReadAllTextAsync(portFile, ct), out var port))
        {
            try
            {
                return await SimulatorHost.StartAsync(options, port, time, loggers, ct);
            }
            catch (IOException)
            {
                // Taken by something else now: any free port will do.
            }
        }

        var host = await SimulatorHost.StartAsync(options, 0, time, loggers, ct);
        Directory.CreateDirectory(Path.GetDirectoryName(portFile)!);
        await File.WriteAllTextAsync(portFile, host.BaseUrl.Port.ToString(System.Globalization.CultureInfo.InvariantCulture), ct);
        return host;
    }
}

/// <summary>What the engine of this process works on, chosen when a command starts it (a <c>run</c> knows its batch only after the import).</summary>
internal sealed class ScopeChoice
{
    public EngineScope Scope { get; set; } = EngineScope.Everything;
}
