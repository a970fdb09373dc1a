using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using QwenBatch.Continuations;
using QwenBatch.FlowControl;
using QwenBatch.Edits;
using QwenBatch.Outputs;
using QwenBatch.Providers;
using QwenBatch.Providers.Odirouter;
using QwenBatch.Providers.Resilience;
using QwenBatch.Providers.WaveSpeed;
using QwenBatch.Retention;
using QwenBatch.Schedules;
using QwenBatch.Server;
using QwenBatch.Simulator;
using QwenBatch.Steps;
using QwenBatch.Storage;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Storage.Sqlite;
using Serilog;

namespace QwenBatch.Cli.Hosting;

/// <summary>
/// The composition root for commands that touch the store: configuration, logging, the store, provider clients and the
/// engine, plus the in-process simulator when a command asks for it.
/// </summary>
internal sealed class Runtime : IAsyncDisposable
{
    public const string SimulatorApiKey = "simulator-local-key";
    private const string SimulatorPortFile = "simulator.port";

    private readonly ServiceProvider _services;

    private Runtime(ServiceProvider services, SimulatorHost? simulator)
    {
        _services = services;
        Simulator = simulator;
    }

    public IJobStore Store => _services.GetRequiredService<IJobStore>();

    public JobServer Server => _services.GetRequiredService<JobServer>();

    public ScheduleRunner Schedules => _services.GetRequiredService<ScheduleRunner>();

    /// <summary>Fires the continuation of a batch this process ended (workers fire the others from their loop).</summary>
    public ContinuationRunner Continuations => _services.GetRequiredService<ContinuationRunner>();

    public ProviderRegistry Providers => _services.GetRequiredService<ProviderRegistry>();

    public DailyBudgetLoop DailyBudget => _services.GetRequiredService<DailyBudgetLoop>();

    public ILoggerFactory LoggerFactory => _services.GetRequiredService<ILoggerFactory>();

    public TimeProvider Time => _services.GetRequiredService<TimeProvider>();

    public SimulatorHost? Simulator { get; }

    public static async Task<Runtime> StartAsync(IConfiguration configuration, bool withSimulator, CancellationToken ct)
    {
        var time = TimeProvider.System;

        // Options are validated before any work starts, with messages that name the setting and its range.
        var worker = SettingsCheck.Bind<WorkerOptions>(configuration, WorkerOptions.SectionName);
        var schedules = SettingsCheck.Bind<ScheduleOptions>(configuration, ScheduleOptions.SectionName);
        var retention = SettingsCheck.Bind<RetentionOptions>(configuration, RetentionOptions.SectionName);
        var continuations = SettingsCheck.Bind<ContinuationOptions>(configuration, ContinuationOptions.SectionName);
        var accounts = AccountOptions(configuration);
        SimulatorHost? simulator = null;
        if (withSimulator)
        {
            simulator = await StartSimulatorAsync(configuration, time, ct);
        }

        var services = new ServiceCollection();
        services.AddSingleton(configuration);
        services.AddSingleton(time);
        services.AddLogging(logging => logging.ClearProviders().AddSerilog(dispose: false));
        services.AddSingleton(worker);
        services.AddSingleton<Func<double>>(Random.Shared.NextDouble);
        services.AddSingleton(sp => CreateStore(configuration, time, sp.GetRequiredService<ILoggerFactory>()));
        services.AddHttpClient(nameof(OutputDownloader), http => http.Timeout = TimeSpan.FromMinutes(5))
            .ConfigurePrimaryHttpMessageHandler(OutputDownloader.CreateHandler);
        services.AddSingleton(sp => new OutputDownloader(sp.GetRequiredService<IHttpClientFactory>().CreateClient(nameof(OutputDownloader))));
        if (simulator is not null)
        {
            accounts[ProviderNames.Simulator].BaseUrl = simulator.BaseUrl;
        }

        accounts = accounts.Where(a => a.Value.BaseUrl is not null || a.Key != ProviderNames.Simulator).ToDictionary(StringComparer.OrdinalIgnoreCase);
        var pipelines = new System.Collections.Concurrent.ConcurrentDictionary<string, Polly.ResiliencePipeline<HttpResponseMessage>>();
        foreach (var (name, options) in accounts)
        {
            // One pipeline per provider, shared by every handler the factory builds, so the circuit is per provider. The
            // pipeline times each attempt; the HttpClient itself must not cut a call that is between retries. Inside it,
            // every attempt (retries too) spends the account's shared request allowance; downloads use their own client.
            services.AddHttpClient(ProviderClientName(name), http => http.Timeout = Timeout.InfiniteTimeSpan)
                .AddHttpMessageHandler(sp => new ResilienceHandler(pipelines.GetOrAdd(name, n => ProviderResilience.Build(
                    n, options.Resilience, options.RequestTimeout, time, sp.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(ProviderResilience).FullName!)))))
                .AddHttpMessageHandler(sp => new RateLimitHandler(
                    sp.GetRequiredService<IJobStore>(), name, options, time, sp.GetRequiredService<ILogger<RateLimitHandler>>()));
        }

        services.AddSingleton(sp => new ProviderRegistry(CreateAccounts(accounts, sp)));
        services.AddSingleton(schedules);
        services.AddSingleton<ScheduleRunner>();
        services.AddSingleton<IServerLoop, ScheduleLoop>();
        services.AddSingleton(retention);
        services.AddSingleton<IServerLoop, RetentionLoop>();
        services.AddSingleton<DailyBudgetLoop>();
        services.AddSingleton<IServerLoop>(sp => sp.GetRequiredService<DailyBudgetLoop>());
        services.AddSingleton(continuations);
        services.AddHttpClient(nameof(ContinuationRunner), http => http.Timeout = TimeSpan.FromSeconds(30));
        services.AddSingleton(sp => new ContinuationRunner(sp.GetRequiredService<IJobStore>(), continuations,
            sp.GetRequiredService<IHttpClientFactory>().CreateClient(nameof(ContinuationRunner)), time, sp.GetRequiredService<ILogger<ContinuationRunner>>()));
        services.AddSingleton<IServerLoop>(sp => sp.GetRequiredService<ContinuationRunner>());
        services.AddSingleton(sp => JobEngine.Create(new EngineParts(
            sp.GetRequiredService<IJobStore>(),
            sp.GetRequiredService<ProviderRegistry>(),
            sp.GetRequiredService<WorkerOptions>(),
            time,
            sp.GetRequiredService<Func<double>>(),
            new LatencyModel(),
            sp.GetRequiredService<OutputDownloader>(),
            sp.GetRequiredService<ILoggerFactory>(),
            sp.GetServices<IServerLoop>(),
            Logging.ConfiguredSecrets.From(configuration))));
        var provider = services.BuildServiceProvider(new ServiceProviderOptions { ValidateOnBuild = true, ValidateScopes = true });
        var runtime = new Runtime(provider, simulator);
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

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        if (Simulator is not null)
        {
            await Simulator.DisposeAsync();
        }
    }

    private static IJobStore CreateStore(IConfiguration configuration, TimeProvider time, ILoggerFactory loggers)
    {
        var connectionString = configuration.GetConnectionString("Postgres");
        if (!string.IsNullOrWhiteSpace(connectionString))
        {
            var listen = configuration.GetConnectionString("PostgresListen");
            return new PostgresJobStore(connectionString, time, loggers.CreateLogger<PostgresJobStore>(), string.IsNullOrWhiteSpace(listen) ? null : listen);
        }

        return new SqliteJobStore(Path.Combine(StateDirectory(configuration), "qwenbatch.db"), time);
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

    private static IEnumerable<ProviderAccount> CreateAccounts(Dictionary<string, ProviderOptions> accounts, IServiceProvider services)
    {
        var http = services.GetRequiredService<IHttpClientFactory>();
        var loggers = services.GetRequiredService<ILoggerFactory>();
        foreach (var (name, options) in accounts)
        {
            var client = http.CreateClient(ProviderClientName(name));
            IImageEditProvider provider = name == ProviderNames.WaveSpeed
                ? new WaveSpeedClient(client, options, loggers.CreateLogger<WaveSpeedClient>())
                : new OdirouterClient(client, options, loggers.CreateLogger<OdirouterClient>());
            yield return new ProviderAccount(name, provider, options);
        }
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

    private static string ProviderClientName(string provider) => $"provider:{provider}";

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
