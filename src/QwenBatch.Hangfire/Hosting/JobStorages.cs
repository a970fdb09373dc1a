using Hangfire;
using Hangfire.InMemory;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;

namespace QwenBatch.Hangfire.Hosting;

/// <summary>
/// Hangfire's storage: Hangfire.PostgreSql for a fleet (its schema beside QwenBatch's tables in the same database), or
/// Hangfire.InMemory for the one-process <c>run</c>, where QwenBatch's SQLite file stays the durable truth and the next
/// run recreates the jobs of every unfinished edit.
/// </summary>
public static class JobStorages
{
    public static PostgreSqlStorage PostgreSql(string connectionString, HangfireOptions options) =>
        new(new NpgsqlConnectionFactory(Pooled(connectionString), Options(options)), Options(options));

    /// <summary>
    /// Hangfire.PostgreSql keeps no session state on its connections (it sets each transaction's isolation level, and its
    /// locks are rows), so a pooled connection needs no reset: without this, Npgsql sends DISCARD ALL at every reuse, one
    /// statement more for every transaction, an idle worker's included. Its statements are small, but for one: the count
    /// of every job by state behind each dashboard page's navigation, which PostgreSQL runs with parallel workers on a
    /// large job table; on a small busy server those cost more than they save (73 ms against 23 ms serial at 1M edits on
    /// 2 cores, docs/benchmarks.md), so Hangfire's sessions plan without them.
    /// </summary>
    private static string Pooled(string connectionString)
    {
        var builder = new Npgsql.NpgsqlConnectionStringBuilder(connectionString) { NoResetOnClose = true };
        builder.Options = $"{builder.Options} -c max_parallel_workers_per_gather=0".Trim();
        return builder.ConnectionString;
    }

    /// <summary>The options QwenBatch sets on Hangfire.PostgreSql, each on purpose (README, "Hangfire").</summary>
    public static PostgreSqlStorageOptions Options(HangfireOptions options) => new()
    {
        SchemaName = options.SchemaName,
        PrepareSchemaIfNecessary = true,

        // A job runs once at a time however long it takes, and a killed worker's jobs continue elsewhere after the
        // invisibility timeout instead of Hangfire.PostgreSql's default 30 minutes.
        UseSlidingInvisibilityTimeout = true,
        InvisibilityTimeout = options.InvisibilityTimeout,

        // Long polling stalls: a fetched job can stay Enqueued and invisible (hangfire-postgres#410). The feeder wakes the
        // workers of its own process when it enqueues, so polling is only the fallback.
        EnableLongPolling = false,
        QueuePollInterval = options.QueuePollInterval,
        DistributedLockTimeout = options.DistributedLockTimeout,
    };

    public static InMemoryStorage InMemory() => new(new InMemoryStorageOptions { IdType = InMemoryStorageIdType.Long });
}
