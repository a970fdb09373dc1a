using Hangfire;
using Hangfire.Server;
using Hangfire.Storage;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using QwenBatch.Batches;
using QwenBatch.Continuations;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Providers;
using QwenBatch.Retention;
using QwenBatch.Secrets;
using QwenBatch.Server;
using QwenBatch.Simulator;
using QwenBatch.Storage;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Storage.Sqlite;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Hangfire.Tests.Support;

/// <summary>Where an engine keeps QwenBatch's store and Hangfire's storage.</summary>
public enum Backend
{
    /// <summary>The embedded default: a SQLite file, Hangfire in memory (what <c>run</c> uses).</summary>
    Sqlite,

    /// <summary>The fleet: one PostgreSQL database with QwenBatch's tables and Hangfire's schema.</summary>
    Postgres,
}

/// <summary>What a test engine is made of; the defaults make quick, fault-free edits.</summary>
internal sealed record EngineSetup(Backend Backend)
{
    public SimulatorOptions Simulator { get; init; } = new() { LatencyMin = TimeSpan.FromMilliseconds(50), LatencyMax = TimeSpan.FromMilliseconds(150), MaxConcurrent = 10_000 };

    public WorkerOptions Worker { get; init; } = new()
    {
        FirstPollDelay = TimeSpan.FromMilliseconds(100),
        RetryBaseDelay = TimeSpan.FromMilliseconds(100),
        FallbackPollInterval = TimeSpan.FromMilliseconds(200),
        ShutdownGracePeriod = TimeSpan.FromSeconds(5),
    };

    public HangfireOptions Hangfire { get; init; } = new() { WorkerCount = 4, SchedulePollingInterval = TimeSpan.FromSeconds(1), QueuePollInterval = TimeSpan.FromSeconds(1) };

    /// <summary>The simulator account's options (its base URL is set to the simulator's).</summary>
    public ProviderOptions Account { get; init; } = new() { PricePerImage = 0.02m, RequestTimeout = TimeSpan.FromSeconds(10) };

    /// <summary>An existing database (a second engine on the same fleet), or null for a new one.</summary>
    public string? Database { get; init; }

    /// <summary>An existing simulator (a second engine against the same provider), or null for a new one.</summary>
    public Uri? SimulatorUrl { get; init; }

    /// <summary>An existing state folder (the next process on the same SQLite file), or null for a new one.</summary>
    public string? Folder { get; init; }
}

/// <summary>
/// A QwenBatch process as the CLI composes it (<see cref="QwenBatchServices"/>), over a real store and Hangfire storage,
/// against the simulator over loopback HTTP, with its Hangfire server started. Real time: tests wait for outcomes with a
/// generous bound and never assert how long anything took.
/// </summary>
internal sealed class TestEngine : IAsyncDisposable
{
    private readonly ServiceProvider _services;
    private readonly SimulatorHost? _ownSimulator;
    private readonly string? _folder;
    private IBackgroundProcessingServer? _server;

    private TestEngine(ServiceProvider services, SimulatorHost? simulator, Uri simulatorUrl, string folder, bool ownsFolder, string? database)
    {
        _services = services;
        _ownSimulator = simulator;
        SimulatorUrl = simulatorUrl;
        Folder = folder;
        _folder = ownsFolder ? folder : null;
        Database = database;
        Output = Path.Combine(folder, "output");
    }

    /// <summary>The state folder (the SQLite file) and the outputs' root.</summary>
    public string Folder { get; }

    public static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    /// <summary>
    /// One logger factory for every engine of the test process: Hangfire keeps one log provider per process, which must
    /// not be a factory a finished test disposed. QWENBATCH_TEST_LOGS=Debug (or Information…) prints the log to the
    /// console, to see why a test failed.
    /// </summary>
    private static readonly Lazy<ILoggerFactory> Loggers = new(() =>
    {
        var level = Enum.TryParse<LogLevel>(Environment.GetEnvironmentVariable("QWENBATCH_TEST_LOGS"), out var asked) ? asked : LogLevel.None;
        var loggers = LoggerFactory.Create(b => b.SetMinimumLevel(level).AddSimpleConsole(o => o.TimestampFormat = "HH:mm:ss.fff "));
        EngineServices.UseLogging(loggers);
        return loggers;
    });

    public IServiceProvider Services => _services;

    public IStore Store => _services.GetRequiredService<IStore>();

    public EditStateChanger Edits => _services.GetRequiredService<EditStateChanger>();

    public JobStorage Storage => _services.GetRequiredService<JobStorage>();

    public IBackgroundJobClient Client => _services.GetRequiredService<IBackgroundJobClient>();

    public Uri SimulatorUrl { get; }

    /// <summary>The PostgreSQL database, when the backend is PostgreSQL.</summary>
    public string? Database { get; }

    /// <summary>Where batches write their outputs.</summary>
    public string Output { get; }

    public static async Task<TestEngine> StartAsync(EngineSetup setup, EngineScope? scope = null)
    {
        var loggers = Loggers.Value;
        var simulator = setup.SimulatorUrl is null ? await SimulatorHost.StartAsync(setup.Simulator, 0, TimeProvider.System, loggers, CancellationToken.None) : null;
        var simulatorUrl = setup.SimulatorUrl ?? simulator!.BaseUrl;
        var folder = setup.Folder ?? Directory.CreateTempSubdirectory("qwenbatch-engine-").FullName;
        var database = setup.Backend == Backend.Postgres ? setup.Database ?? await (await PostgresServer.GetAsync()).CreateDatabaseAsync("engine") : null;
        var account = setup.Account;
        account.BaseUrl = simulatorUrl;
        account.ApiKey ??= "simulator-test-key";

        var services = new ServiceCollection();
        services.AddSingleton(loggers);
        services.AddLogging();
        services.AddQwenBatch(new QwenBatchParts(
            new Dictionary<string, ProviderOptions>(StringComparer.OrdinalIgnoreCase) { [ProviderNames.Simulator] = account },
            _ => database is null
                ? new SqliteStore(Path.Combine(folder, "qwenbatch.db"), TimeProvider.System)
                : new PostgresStore(database, TimeProvider.System, loggers.CreateLogger<PostgresStore>()),
            database,
            () => scope ?? EngineScope.Everything,
            setup.Worker,
            setup.Hangfire,
            new RetentionOptions { Enabled = false },
            new ContinuationOptions { PollInterval = TimeSpan.FromMilliseconds(500) },
            new SecretRedactor([account.ApiKey]),
            TimeProvider.System));
        var engine = new TestEngine(services.BuildServiceProvider(), simulator, simulatorUrl, folder, setup.Folder is null, database);
        await engine.Store.MigrateAsync(CancellationToken.None);
        return engine;
    }

    /// <summary>Starts this process's Hangfire server with the feeder, poller and housekeeping beside its workers.</summary>
    public async Task StartServerAsync()
    {
        _server = await EditServer.StartAsync(_services, CancellationToken.None);
    }

    /// <summary>Stops the server as a Ctrl-C would: steps under way get their grace period.</summary>
    public async Task StopServerAsync()
    {
        if (_server is { } server)
        {
            _server = null;
            await EditServer.StopAsync(server);
        }
    }

    /// <summary>Imports a batch of <paramref name="count"/> edits of the simulator with remote images (no files to read) unless <paramref name="image"/> names one.</summary>
    public async Task<BatchRecord> ImportAsync(string name, int count, int n = 1, decimal? budget = null, Func<int, string>? prompt = null, string? image = null)
    {
        var edits = Enumerable.Range(1, count).Select(i => new NewEdit($"e{i:D5}", $"h{i}", ProviderNames.Simulator, new EditSpec
        {
            Prompt = prompt?.Invoke(i) ?? $"edit {i}",
            Images = [image ?? "https://images.example.test/in.png"],
            N = n,
        }));
        var import = await Store.ImportBatchAsync(new NewBatch(name, $"/manifests/{name}.csv", ProviderNames.Simulator, Path.Combine(Output, name), budget), edits, CancellationToken.None);
        _services.GetRequiredService<EngineSignals>().WorkAdded();
        return import.Batch;
    }

    /// <summary>Waits until every edit of the batch has settled; fails the test after <see cref="Patience"/>.</summary>
    public async Task<IReadOnlyList<EditRecord>> WaitSettledAsync(long batchId, TimeSpan? patience = null)
    {
        var waited = TimeProvider.System.GetTimestamp();
        while (TimeProvider.System.GetElapsedTime(waited) < (patience ?? Patience))
        {
            if ((await Store.GetProgressAsync(batchId, CancellationToken.None)).IsSettled)
            {
                return await Store.GetEditsAsync(batchId, CancellationToken.None);
            }

            await Task.Delay(100);
        }

        var progress = await Store.GetProgressAsync(batchId, CancellationToken.None);
        var stuck = (await Store.GetEditsAsync(batchId, CancellationToken.None)).Where(e => !e.State.IsSettled()).Take(5)
            .Select(e => $"edit {e.Id} {e.State} polls={e.Polls} attempt={e.Attempt} job={e.HangfireJob} due={e.DueAt:HH:mm:ss.fff} error={e.Error}");
        throw new TimeoutException($"Batch {batchId} did not settle: {string.Join(", ", progress.Counts.Select(c => $"{c.Key}={c.Value}"))}; {string.Join("; ", stuck)}");
    }

    /// <summary>Waits until <paramref name="condition"/> holds of the batch's edits; fails the test after <see cref="Patience"/>.</summary>
    public async Task<IReadOnlyList<EditRecord>> WaitForAsync(long batchId, Func<IReadOnlyList<EditRecord>, bool> condition, string what, TimeSpan? patience = null)
    {
        var waited = TimeProvider.System.GetTimestamp();
        while (TimeProvider.System.GetElapsedTime(waited) < (patience ?? Patience))
        {
            var edits = await Store.GetEditsAsync(batchId, CancellationToken.None);
            if (condition(edits))
            {
                return edits;
            }

            await Task.Delay(100);
        }

        throw new TimeoutException($"Batch {batchId}: never {what}.");
    }

    /// <summary>The simulator's counters (submits, status calls, cancels, …).</summary>
    public async Task<SimulatorStats> SimulatorStatsAsync()
    {
        if (_ownSimulator is not null)
        {
            return _ownSimulator.GetStats();
        }

        using var http = new HttpClient();
        return (await System.Net.Http.Json.HttpClientJsonExtensions.GetFromJsonAsync<SimulatorStats>(http, new Uri(SimulatorUrl, "/_sim/stats"),
            new System.Text.Json.JsonSerializerOptions(System.Text.Json.JsonSerializerDefaults.Web) { PropertyNamingPolicy = System.Text.Json.JsonNamingPolicy.SnakeCaseLower }))!;
    }

    /// <summary>The names of the states an edit's Hangfire job went through, oldest first.</summary>
    public IReadOnlyList<string> JobStates(string jobId)
    {
        var details = Storage.GetMonitoringApi().JobDetails(jobId);
        return details.History.Select(h => h.StateName).Reverse().ToList();
    }

    public StateData? JobState(string jobId)
    {
        using var connection = Storage.GetConnection();
        return connection.GetStateData(jobId);
    }

    public async ValueTask DisposeAsync()
    {
        await StopServerAsync();
        await _services.DisposeAsync();
        if (_ownSimulator is not null)
        {
            await _ownSimulator.DisposeAsync();
        }

        if (_folder is not null)
        {
            try
            {
                Directory.Delete(_folder, recursive: true);
            }
            catch (IOException)
            {
                // A file still open by the dying server; the temp folder is the system's to clean.
            }
        }
    }
}
