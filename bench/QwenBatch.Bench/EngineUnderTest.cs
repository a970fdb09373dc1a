using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.FlowControl;
using QwenBatch.Outputs;
using QwenBatch.Providers;
using QwenBatch.Providers.Odirouter;
using QwenBatch.Providers.Resilience;
using QwenBatch.Server;
using QwenBatch.Storage;
using QwenBatch.Storage.PostgreSql;

namespace QwenBatch.Bench;

/// <summary>What the engine benchmark asks of the engine it measures: edits against a provider, written to a folder.</summary>
/// <param name="Provider">The simulator's base URL (odirouter API at its root).</param>
/// <param name="Outputs">The folder the batch's output folder goes in.</param>
internal sealed record EngineRunSpec(string Database, Uri Provider, int Edits, int Workers, string Name, string Outputs);

/// <summary>
/// The engine the benchmark measures, and the only file that knows which one it is: today the home-made JobServer
/// (JobEngine.Create), with the provider clients composed as the CLI composes them (src/QwenBatch.Cli/Hosting/Runtime.cs:
/// the odirouter client speaks to the simulator, over the Polly pipeline, over the shared request allowance). Swap this
/// file for the engine on Hangfire; the benchmark around it stays.
/// </summary>
internal sealed class EngineUnderTest : IAsyncDisposable
{
    public const string Title = "QwenBatch engine (home-made JobServer)";

    /// <summary>The API key the runs send; the simulator takes any.</summary>
    private const string ApiKey = "bench-key";

    private readonly EngineRunSpec _spec;
    private readonly long _batchId;
    private readonly HttpClient _downloads = new(OutputDownloader.CreateHandler()) { Timeout = TimeSpan.FromMinutes(5) };
    private HttpClient? _api;
    private PostgresJobStore? _store;

    private EngineUnderTest(EngineRunSpec spec, long batchId)
    {
        _spec = spec;
        _batchId = batchId;
    }

    /// <summary>
    /// Tasks finish at once here, so the first status poll comes as early as the options allow (the default 1 s would
    /// add a second to every edit) and the slow fallback poll that ends a settled run is short.
    /// </summary>
    public static WorkerOptions Options(int workers) => new()
    {
        Concurrency = workers,
        FirstPollDelay = TimeSpan.FromMilliseconds(10),
        FallbackPollInterval = TimeSpan.FromMilliseconds(100),
    };

    public static string Describe(int workers)
    {
        var o = Options(workers);
        return string.Create(CultureInfo.InvariantCulture,
            $"JobEngine.Create, WorkerOptions: Concurrency {o.Concurrency}, FirstPollDelay {o.FirstPollDelay}, FallbackPollInterval {o.FallbackPollInterval}, others default; provider '{ProviderNames.Simulator}': OdirouterClient → ResilienceHandler (ProviderResilience defaults) → RateLimitHandler (no rate set) → SocketsHttpHandler; outputs: OutputDownloader over its own HttpClient");
    }

    /// <summary>Creates the schema and imports the batch (not timed), then closes every connection it opened.</summary>
    public static async Task<EngineUnderTest> PrepareAsync(EngineRunSpec spec)
    {
        await using var store = new PostgresJobStore(spec.Database, TimeProvider.System, NullLogger<PostgresJobStore>.Instance);
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

    /// <summary>Runs the batch until every edit is settled (timed), on a store whose connections are opened in the run.</summary>
    public async Task RunAsync()
    {
        var time = TimeProvider.System;
        _store = new PostgresJobStore(_spec.Database, time, NullLogger<PostgresJobStore>.Instance);
        var account = new ProviderOptions { BaseUrl = _spec.Provider, ApiKey = ApiKey };
        var pipeline = ProviderResilience.Build(
            ProviderNames.Simulator, account.Resilience, account.RequestTimeout, time, NullLogger.Instance);
        _api = new HttpClient(new ResilienceHandler(pipeline)
        {
            InnerHandler = new RateLimitHandler(_store, ProviderNames.Simulator, account, time, NullLogger<RateLimitHandler>.Instance)
            {
                InnerHandler = new SocketsHttpHandler(),
            },
        })
        { Timeout = Timeout.InfiniteTimeSpan };
        var providers = new ProviderRegistry([new ProviderAccount(
            ProviderNames.Simulator, new OdirouterClient(_api, account, NullLogger<OdirouterClient>.Instance), account)]);
        var server = JobEngine.Create(new EngineParts(
            _store, providers, Options(_spec.Workers), time, Random.Shared.NextDouble, new LatencyModel(), new OutputDownloader(_downloads), NullLoggerFactory.Instance));
        await server.RunAsync(new ServerScope(_batchId, StopWhenSettled: true), CancellationToken.None);
    }

    /// <summary>Closes the run's connections (the benchmark counts commits only once they are closed).</summary>
    public async Task ReleaseAsync()
    {
        if (_store is not null)
        {
            await _store.DisposeAsync();
            _store = null;
        }
    }

    /// <summary>Edits that succeeded, with their output file written.</summary>
    public async Task<int> SucceededAsync()
    {
        await using var store = new PostgresJobStore(_spec.Database, TimeProvider.System, NullLogger<PostgresJobStore>.Instance);
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

    /// <summary>True once the idle worker process has registered (its start-up is not idling). Mentions pg_stat so it is not counted.</summary>
    public static string IdleWorkerStartedSql(int pid) => $"SELECT count(*) > 0 /* pg_stat: a probe */ FROM servers WHERE pid = {pid}";

    public async ValueTask DisposeAsync()
    {
        await ReleaseAsync();
        _api?.Dispose();
        _downloads.Dispose();
    }
}
