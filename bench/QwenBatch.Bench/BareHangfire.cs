using System.Diagnostics;
using System.Globalization;
using Hangfire;
using Hangfire.Common;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Npgsql;

namespace QwenBatch.Bench;

/// <summary>
/// Hangfire with nothing of ours in it, on Hangfire.PostgreSql in a schema of its own: no-op jobs pre-enqueued, then a
/// server timed from its start until the last one is Succeeded; and an idle server with default options. The storage
/// is passed explicitly and nothing is set on Hangfire's global configuration (its default filters, AutomaticRetry
/// among them, apply as in any application).
/// </summary>
internal sealed class BareHangfire(PostgreSqlStorage storage, string schema)
{
    /// <summary>The queue the no-op jobs go to and the timed server listens on.</summary>
    public const string Queue = "default";

    public static BareHangfire Create(string database, string schema)
    {
        var options = StorageOptions(schema);
        return new BareHangfire(new PostgreSqlStorage(new NpgsqlConnectionFactory(database, options), options), schema);
    }

    /// <summary>
    /// What the engine on Hangfire is to run with: a job that runs longer than the invisibility timeout keeps its
    /// fetch (sliding) instead of being fetched again by another worker (docs/shared HANGFIRE.md, "a job longer than
    /// InvisibilityTimeout"); QueuePollInterval stays at its default.
    /// </summary>
    public static PostgreSqlStorageOptions StorageOptions(string schema) => new()
    {
        SchemaName = schema,
        PrepareSchemaIfNecessary = true,
        UseSlidingInvisibilityTimeout = true,
        InvisibilityTimeout = TimeSpan.FromMinutes(1),
    };

    public static string Describe(PostgreSqlStorageOptions o) => string.Create(CultureInfo.InvariantCulture,
        $"Hangfire.PostgreSql storage: SchemaName {o.SchemaName}, PrepareSchemaIfNecessary {o.PrepareSchemaIfNecessary}, UseSlidingInvisibilityTimeout {o.UseSlidingInvisibilityTimeout}, InvisibilityTimeout {o.InvisibilityTimeout}, QueuePollInterval {o.QueuePollInterval} (default), UseNativeDatabaseTransactions {o.UseNativeDatabaseTransactions}, EnableLongPolling {o.EnableLongPolling}, DistributedLockTimeout {o.DistributedLockTimeout}");

    public static string Describe(BackgroundJobServerOptions o) => string.Create(CultureInfo.InvariantCulture,
        $"BackgroundJobServerOptions: WorkerCount {o.WorkerCount}, Queues [{string.Join(", ", o.Queues)}], SchedulePollingInterval {o.SchedulePollingInterval}, HeartbeatInterval {o.HeartbeatInterval}, ServerCheckInterval {o.ServerCheckInterval}, CancellationCheckInterval {o.CancellationCheckInterval}");

    public static BackgroundJobServerOptions ServerOptions(int workers) => new() { WorkerCount = workers, Queues = [Queue] };

    public PostgreSqlStorageOptions Options => StorageOptions(schema);

    /// <summary>
    /// Enqueues <paramref name="jobs"/> no-op jobs (8 threads, not timed), closes the connections that left open, then
    /// starts a server with <paramref name="workers"/> workers and times it until the last job is Succeeded: the job's
    /// counter says when the last one ran, and the monitoring API's Succeeded count, read from then on, when its state
    /// was written. The server is stopped after the clock, within the counted statements.
    /// </summary>
    public async Task<Measurement> RunAsync(DatabaseProbe probe, int jobs, int workers)
    {
        var monitoring = storage.GetMonitoringApi();
        var succeeded = monitoring.SucceededListCount() + jobs;
        var client = new BackgroundJobClient(storage);
        await Task.Run(() => Parallel.For(0, jobs, new ParallelOptions { MaxDegreeOfParallelism = 8 }, _ => client.Enqueue(() => NoOpJob.Run())));
        var ran = NoOpJob.Expect(jobs);

        // The enqueueing connections must be closed for the run's commits to be counted apart (see DatabaseProbe).
        NpgsqlConnection.ClearAllPools();
        BackgroundJobServer? server = null;
        var measured = await probe.MeasureAsync(
            async () =>
            {
                var clock = Stopwatch.StartNew();
                server = new BackgroundJobServer(ServerOptions(workers), storage);
                await ran;
                while (monitoring.SucceededListCount() < succeeded)
                {
                    await Task.Delay(5);
                }

                return clock.Elapsed.TotalSeconds;
            },
            async () =>
            {
                await Task.Run(() => server?.Dispose());
                NpgsqlConnection.ClearAllPools();
            });
        var total = monitoring.SucceededListCount();
        NpgsqlConnection.ClearAllPools();
        return total == succeeded ? measured : throw new InvalidOperationException($"Hangfire: {total} jobs Succeeded in {schema}, expected {succeeded}.");
    }

    /// <summary>
    /// A server with default options and one daily recurring job, idle: statements and commits over
    /// <paramref name="window"/> (see <see cref="DatabaseProbe.MeasureIdleAsync"/>).
    /// </summary>
    public async Task<Measurement> IdleAsync(DatabaseProbe probe, TimeSpan window)
    {
        new RecurringJobManager(storage).AddOrUpdate("daily-no-op", Job.FromExpression(() => NoOpJob.Run()), Cron.Daily());

        // The connections that installed the schema and registered the job must not be the measured server's.
        NpgsqlConnection.ClearAllPools();
        return await probe.MeasureIdleAsync(window, async idle =>
        {
            var server = new BackgroundJobServer(new BackgroundJobServerOptions(), storage);
            await idle();
            return async () =>
            {
                await Task.Run(server.Dispose);
                NpgsqlConnection.ClearAllPools();
            };
        });
    }
}

/// <summary>The bare Hangfire benchmark's job: does nothing but count itself, so the run knows when the last one ran.</summary>
public static class NoOpJob
{
    private static int _ran;
    private static int _expected = int.MaxValue;
    private static TaskCompletionSource _all = new(TaskCreationOptions.RunContinuationsAsynchronously);

    public static void Run()
    {
        if (Interlocked.Increment(ref _ran) == Volatile.Read(ref _expected))
        {
            _all.TrySetResult();
        }
    }

    /// <summary>Counts from zero again; the task completes when <paramref name="jobs"/> have run.</summary>
    internal static Task Expect(int jobs)
    {
        _all = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Volatile.Write(ref _ran, 0);
        Volatile.Write(ref _expected, jobs);
        return _all.Task;
    }
}
