using System.Globalization;
using Hangfire.Server;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using QwenBatch.Batches;
using QwenBatch.Continuations;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Providers;
using QwenBatch.Retention;
using QwenBatch.Secrets;
using QwenBatch.Server;
using QwenBatch.Storage;
using QwenBatch.Storage.PostgreSql;

namespace QwenBatch.Bench;

/// <summary>What the engine benchmark asks of the engine it measures: edits against a provider, written to a folder.</summary>
/// <param name="Provider">The simulator's base URL (odirouter API at its root).</param>
/// <param name="Outputs">The folder the batch's output folder goes in.</param>
internal sealed record EngineRunSpec(string Database, Uri Provider, int Edits, int Workers, string Name, string Outputs);

/// <summary>
/// The engine the benchmark measures, and the only file that knows which one it is: the engine on Hangfire, composed as
/// the CLI composes a server (QwenBatchServices over QwenBatch's PostgreSQL store and Hangfire.PostgreSql in the same
/// database; the odirouter client speaks to the simulator over the Polly pipeline and the shared request allowance), one
/// Hangfire server with the feeder, poller and housekeeping beside its workers, run until the batch settles.
/// </summary>
internal sealed class EngineUnderTest : IAsyncDisposable
{
    public const string Title = "QwenBatch engine on Hangfire (Hangfire.PostgreSql)";

    /// <summary>The API key the runs send; the simulator takes any.</summary>
    private const string ApiKey = "bench-key";

    private readonly EngineRunSpec _spec;
    private readonly long _batchId;
    private ServiceProvider? _services;

    private EngineUnderTest(EngineRunSpec spec, long batchId)
    {
        _spec = spec;
        _batchId = batchId;
    }

    /// <summary>
    /// Tasks finish at once here, so the first status poll comes as early as the options allow (the default 1 s would
    /// add a second to every edit) and an idle look at the store is short.
    /// </summary>
    public static WorkerOptions Options() => new()
    {
        FirstPollDelay = TimeSpan.FromMilliseconds(10),
        FallbackPollInterval = TimeSpan.FromMilliseconds(100),
    };

    public static HangfireOptions Hangfire(int workers) => new() { WorkerCount = workers };

    public static string Describe(int workers)
    {
        var (o, h) = (Options(), Hangfire(workers));
        return string.Create(CultureInfo.InvariantCulture,
            $"QwenBatchServices + EditServer, Hangfire: WorkerCount {h.WorkerCount}, queue '{h.Queue}', schema '{h.SchemaName}', sliding InvisibilityTimeout {h.InvisibilityTimeout}, QueuePollInterval {h.QueuePollInterval}, SchedulePollingInterval {h.SchedulePollingInterval}; Worker: FirstPollDelay {o.FirstPollDelay}, FallbackPollInterval {o.FallbackPollInterval}, QueuedPerWorker {o.QueuedPerWorker}, PollConcurrency {o.PollConcurrency}, others default; provider '{ProviderNames.Simulator}': OdirouterClient → ResilienceHandler (ProviderResilience defaults) → RateLimitHandler (no rate set) → SocketsHttpHandler; outputs: OutputDownloader over its own HttpClient");
    }

    /// <summary>Creates the schema and imports the batch (not timed), then closes every connection it opened.</summary>
    public static async Task<EngineUnderTest> PrepareAsync(EngineRunSpec spec)
    {
        await using var store = new PostgresStore(spec.Database, TimeProvider.System, NullLogger<PostgresStore>.Instance);
        await store.MigrateAsync(CancellationToken.None);
        var batch = (await store.ImportBatchAsync(
            new NewBatch(spec.Name, $"/bench/{spec.Name}.csv", ProviderNames.Simulator, Path.Combine(spec.Outputs, spec.Name)),
            Enumerable.Range(1, spec.Edits).Select(i => new NewEdit(
                $"edit-{i:00000}", $"h{i}", ProviderNames.Simulator,
                // The smallest output the simulator makes: it encodes every output PNG in this process.
                new EditSpec { Prompt = "White studio background", Images = [$"https://images.example/{i}.png"], Size = "512*512", Seed = i })),
            CancellationToken.None)).Batch;
        return new EngineUnderTest(spec, batch.Id);
    }

    /// <summary>Runs the batch until every edit is settled (timed), with a Hangfire server started in the run.</summary>
    public async Task RunAsync()
    {
        var account = new ProviderOptions { BaseUrl = _spec.Provider, ApiKey = ApiKey };
        var services = new ServiceCollection();
        services.AddSingleton<ILoggerFactory>(NullLoggerFactory.Instance);
        services.AddLogging();
        services.AddQwenBatch(new QwenBatchParts(
            new Dictionary<string, ProviderOptions>(StringComparer.OrdinalIgnoreCase) { [ProviderNames.Simulator] = account },
            _ => new PostgresStore(_spec.Database, TimeProvider.System, NullLogger<PostgresStore>.Instance),
            _spec.Database,
            () => new EngineScope(_batchId),
            Options(),
            Hangfire(_spec.Workers),
            new RetentionOptions { Enabled = false },
            new ContinuationOptions(),
            new SecretRedactor([ApiKey]),
            TimeProvider.System));
        _services = services.BuildServiceProvider();
        var store = _services.GetRequiredService<IBatchStore>();
        var signals = _services.GetRequiredService<EngineSignals>();
        var server = await EditServer.StartAsync(_services, CancellationToken.None);
        try
        {
            signals.WorkAdded();
            while (true)
            {
                var settled = signals.SettledWake;
                if ((await store.GetProgressAsync(_batchId, CancellationToken.None)).IsSettled)
                {
                    return;
                }

                await Task.WhenAny(settled, Task.Delay(TimeSpan.FromMilliseconds(100)));
            }
        }
        finally
        {
            await EditServer.StopAsync(server);
        }
    }

    /// <summary>Closes the run's connections (the benchmark counts commits only once they are closed): QwenBatch's and Hangfire's pools.</summary>
    public async Task ReleaseAsync()
    {
        if (_services is not null)
        {
            await _services.DisposeAsync();
            _services = null;
        }

        NpgsqlConnection.ClearAllPools();
    }

    /// <summary>Edits that succeeded, with their output file written.</summary>
    public async Task<int> SucceededAsync()
    {
        await using var store = new PostgresStore(_spec.Database, TimeProvider.System, NullLogger<PostgresStore>.Instance);
        var succeeded = (await store.GetProgressAsync(_batchId, CancellationToken.None)).Count(EditState.Succeeded);
        var files = Directory.EnumerateFiles(Path.Combine(_spec.Outputs, _spec.Name), "*.png", SearchOption.AllDirectories).Count();
        return Math.Min(succeeded, files);
    }

    /// <summary>The idle worker: the CLI's <c>worker</c> command, default settings, on the benchmark's database.</summary>
    public static IReadOnlyList<string> IdleWorkerArguments(string database) => ["worker", "--database", database];

    public static IReadOnlyDictionary<string, string> IdleWorkerEnvironment { get; } = new Dictionary<string, string>
    {
        ["ODIROUTER_API_KEY"] = ApiKey,
        ["WAVESPEED_API_KEY"] = ApiKey,
    };

    /// <summary>
    /// True once the idle worker process's Hangfire server has announced itself (its start-up is not idling); Hangfire's
    /// server ids are <c>host:pid:guid</c>. Mentions pg_stat so it is not counted.
    /// </summary>
    public static string IdleWorkerStartedSql(int pid) =>
        $"SELECT count(*) > 0 /* pg_stat: a probe */ FROM hangfire.server WHERE id LIKE '%:{pid}:%'";

    public async ValueTask DisposeAsync() => await ReleaseAsync();
}
