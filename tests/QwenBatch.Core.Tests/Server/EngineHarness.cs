using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.Batches;
using QwenBatch.FlowControl;
using QwenBatch.Edits;
using QwenBatch.Outputs;
using QwenBatch.Providers;
using QwenBatch.Server;
using QwenBatch.Steps;
using QwenBatch.Storage;
using QwenBatch.Storage.Sqlite;
using QwenBatch.Testing.Time;

namespace QwenBatch.Core.Tests.Server;

/// <summary>
/// The real engine (store, state changer, steps, server) on a SQLite file, a fake clock and a scripted provider.
/// Jitter is fixed at 0.5 so backoff and poll delays are exact.
/// </summary>
internal sealed class EngineHarness : IAsyncDisposable
{
    public const string Provider = "scripted";
    private readonly string _directory = Path.Combine(Path.GetTempPath(), "qwenbatch-engine-" + Guid.NewGuid().ToString("N"));
    private readonly List<IJobStore> _stores = [];

    public EngineHarness(ScriptedProvider? provider = null, ManualTimeProvider? time = null)
    {
        Time = time ?? new ManualTimeProvider();
        Directory.CreateDirectory(_directory);
        Scripted = provider ?? new ScriptedProvider();
        Store = NewStore();
    }

    public ManualTimeProvider Time { get; }

    public ScriptedProvider Scripted { get; }

    public IJobStore Store { get; }

    public string StorageDir => Path.Combine(_directory, "out");

    public WorkerOptions Options { get; } = new()
    {
        Concurrency = 4,
        LeaseDuration = TimeSpan.FromSeconds(30),
        HeartbeatInterval = TimeSpan.FromSeconds(10),
        RescueInterval = TimeSpan.FromSeconds(5),
        FallbackPollInterval = TimeSpan.FromSeconds(2),
        MaxAttempts = 3,
        RetryBaseDelay = TimeSpan.FromSeconds(2),
        RetryMaxDelay = TimeSpan.FromSeconds(60),
        MaxProviderResubmits = 1,
        FirstPollDelay = TimeSpan.FromSeconds(1),
        MaxPollInterval = TimeSpan.FromSeconds(5),
        ShutdownGracePeriod = TimeSpan.FromSeconds(5),
    };

    /// <summary>The scripted provider's account settings (price, limits).</summary>
    public ProviderOptions Account { get; } = new() { PricePerImage = 0.02m };

    /// <summary>Latencies learned by every server of this harness.</summary>
    public LatencyModel Latency { get; } = new();

    public static double Jitter() => 0.5;

    /// <summary>Another store on the same file, as a second process would have.</summary>
    public IJobStore NewStore()
    {
        var store = new SqliteJobStore(Path.Combine(_directory, "state.db"), Time);
        _stores.Add(store);
        return store;
    }

    public EditStateChanger Changer(IJobStore? store = null) => new(store ?? Store, NullLogger<EditStateChanger>.Instance);

    /// <summary>The one scripted account, as the engine sees it.</summary>
    public ProviderRegistry Providers => new([new ProviderAccount(Provider, Scripted, Account)]);

    /// <param name="latency">What the server's process has learned; by default the harness's shared model.</param>
    public JobServer Server(IJobStore? store = null, LatencyModel? latency = null)
    {
        store ??= Store;
        return JobEngine.Create(new EngineParts(store, Providers, Options, Time, Jitter, latency ?? Latency, new OutputDownloader(new HttpClient()), NullLoggerFactory.Instance));
    }

    public async Task<BatchRecord> ImportAsync(int jobs, string name = "batch", decimal? budget = null)
    {
        await Store.MigrateAsync(CancellationToken.None);
        var spec = Enumerable.Range(1, jobs).Select(i => new NewEdit($"job-{i:000}", $"h{i}", Provider, new EditSpec
        {
            Prompt = $"prompt {i}",
            Images = ["https://images.example/in.png"],
        })).ToList();
        var import = await Store.ImportBatchAsync(new NewBatch(name, $"/manifests/{name}.csv", Provider, Path.Combine(StorageDir, name), budget), spec, CancellationToken.None);
        return import.Batch;
    }

    /// <summary>
    /// Moves the fake clock in small steps, giving the engine's tasks real time to react between steps, until the
    /// condition holds. Fails the test rather than hanging when it never does.
    /// </summary>
    /// <param name="quiesce">Wait for the engine to catch up before each move of the clock (for tests that measure lag).</param>
    public async Task RunClockUntilAsync(Func<Task<bool>> condition, TimeSpan step, int maxSteps = 2000, bool quiesce = false)
    {
        for (var i = 0; i < maxSteps; i++)
        {
            if (await condition())
            {
                return;
            }

            Time.Advance(step);
            if (quiesce)
            {
                await QuiesceAsync();
            }
            else
            {
                await Task.Delay(5);
            }
        }

        throw new TimeoutException($"The condition did not hold after {maxSteps} clock steps of {step}.");
    }

    /// <summary>
    /// Waits (in real time, a little at most) until the engine has caught up with the clock: no job is leased and none
    /// is due. Moving the clock before that would make a slow machine look like a slow engine. Only for tests whose
    /// steps all finish on their own; the bound only keeps a broken test from hanging.
    /// </summary>
    private async Task QuiesceAsync()
    {
        for (var i = 0; i < 2000; i++)
        {
            await Task.Delay(2);
            var busy = false;
            foreach (var batch in await Store.GetBatchesAsync(CancellationToken.None))
            {
                var now = Time.GetUtcNow();
                busy |= (await Store.GetJobsAsync(batch.Id, CancellationToken.None))
                    .Any(j => j.LeaseOwner is not null || (EditStates.Claimable.Contains(j.State) && j.DueAt <= now));
            }

            if (!busy)
            {
                return;
            }
        }
    }

    /// <summary>Runs one server over the batch until it settles, on the fake clock, and returns the batch's jobs.</summary>
    /// <param name="store">The server's store (a wrapper around <see cref="Store"/>, say); by default <see cref="Store"/>.</param>
    public async Task<IReadOnlyList<EditRecord>> RunBatchAsync(BatchRecord batch, bool quiesce = false, LatencyModel? latency = null, IJobStore? store = null)
    {
        var run = Server(store, latency).RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        await RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), TimeSpan.FromMilliseconds(250), quiesce: quiesce);
        await run;
        return await Store.GetJobsAsync(batch.Id, CancellationToken.None);
    }

    public async Task<bool> SettledAsync(long batchId) => (await Store.GetProgressAsync(batchId, CancellationToken.None)).IsSettled;

    public async ValueTask DisposeAsync()
    {
        foreach (var store in _stores)
        {
            await store.DisposeAsync();
        }

        try
        {
            Directory.Delete(_directory, recursive: true);
        }
        catch (IOException)
        {
            // A pooled SQLite handle may linger a moment; the temp folder is cleaned by the OS.
        }
    }
}
