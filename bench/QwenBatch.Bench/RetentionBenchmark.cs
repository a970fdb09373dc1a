using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using QwenBatch.Retention;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Bench;

/// <summary>
/// Retention on a million rows: a finished batch of N jobs (with one history row each, inserted with generate_series)
/// purged by <see cref="RetentionLoop"/> in chunks, against the one-statement baseline (DELETE the batch, cascading),
/// on identical data. Reports total time and the longest single statement — the longest any lock is held.
/// </summary>
internal static class RetentionBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var rows = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1_000_000;
        var chunk = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : RetentionOptions.DefaultChunkSize;
        var database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("retention");
        await using var store = new PostgresStore(database, TimeProvider.System, NullLogger<PostgresStore>.Instance);
        await store.MigrateAsync(CancellationToken.None);
        await using var dataSource = NpgsqlDataSource.Create(database);

        // Baseline: one statement deletes the batch, its jobs and their history.
        var baselineBatch = await SeedAsync(dataSource, "baseline", rows);
        var start = Stopwatch.GetTimestamp();
        await using (var delete = dataSource.CreateCommand("DELETE FROM batches WHERE id = @id"))
        {
            delete.CommandTimeout = 0;
            delete.Parameters.AddWithValue("id", baselineBatch);
            await delete.ExecuteNonQueryAsync();
        }

        var baseline = Stopwatch.GetElapsedTime(start).TotalSeconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"baseline: one DELETE of {rows:N0} jobs + history: {baseline:0.00} s (one statement holds every row lock)"));

        // Ours: a recent batch that must survive, and the old one, purged chunk by chunk.
        await SeedAsync(dataSource, "recent", 1000, ageDays: 1);
        await SeedAsync(dataSource, "old", rows);
        var cutoff = TimeProvider.System.GetUtcNow().AddDays(-30);
        var longest = TimeSpan.Zero;
        var statements = 0;
        start = Stopwatch.GetTimestamp();
        while (await store.FindExpiredBatchAsync(cutoff, CancellationToken.None) is { } batchId)
        {
            RetentionStep step;
            do
            {
                var stepStart = Stopwatch.GetTimestamp();
                step = await store.PurgeBatchChunkAsync(batchId, cutoff, chunk, CancellationToken.None);
                var took = Stopwatch.GetElapsedTime(stepStart);
                longest = took > longest ? took : longest;
                statements++;
            }
            while (step.JobsDeleted > 0);
        }

        var ours = Stopwatch.GetElapsedTime(start).TotalSeconds;
        await using var left = dataSource.CreateCommand("SELECT (SELECT count(*) FROM jobs), (SELECT count(*) FROM job_history), (SELECT string_agg(name, ',') FROM batches)");
        await using var reader = await left.ExecuteReaderAsync();
        await reader.ReadAsync();
        var (jobsLeft, historyLeft, batchesLeft) = (reader.GetInt64(0), reader.GetInt64(1), reader.GetString(2));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"QwenBatch retention: {rows:N0} jobs in {statements:N0} statements of ≤ {chunk:N0}: {ours:0.00} s, longest statement {longest.TotalMilliseconds:0} ms"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio (ours / baseline total time): {ours / baseline:0.00}"));
        Console.WriteLine($"left: {jobsLeft} jobs, {historyLeft} history rows, batches: {batchesLeft}");
        return jobsLeft == 1000 && historyLeft == 1000 && batchesLeft == "recent" ? 0 : 1;
    }

    private static async Task<long> SeedAsync(NpgsqlDataSource dataSource, string name, int rows, int ageDays = 40)
    {
        await using var batch = dataSource.CreateCommand(
            """
            INSERT INTO batches (name, source, provider, storage_dir, created_at)
            VALUES (@name, '/manifests/' || @name || '.csv', 'simulator', '/output/' || @name, now() - make_interval(days => @age))
            RETURNING id
            """);
        batch.Parameters.AddWithValue("name", name);
        batch.Parameters.AddWithValue("age", ageDays);
        var batchId = (long)(await batch.ExecuteScalarAsync())!;

        await using var jobs = dataSource.CreateCommand(
            """
            INSERT INTO jobs (batch_id, key, content_hash, state, provider, spec, due_at, created_at, updated_at, finished_at)
            SELECT b.id, 'row-' || g, 'h', 'succeeded', 'simulator', '{"prompt": "p", "images": ["https://example.com/a.png"]}',
                   b.created_at, b.created_at, b.created_at, b.created_at
            FROM batches b, generate_series(1, @rows) g
            WHERE b.id = @b
            """);
        jobs.CommandTimeout = 0;
        jobs.Parameters.AddWithValue("b", batchId);
        jobs.Parameters.AddWithValue("rows", rows);
        await jobs.ExecuteNonQueryAsync();

        await using var history = dataSource.CreateCommand(
            "INSERT INTO job_history (job_id, at, from_state, to_state) SELECT id, updated_at, 'downloading', 'succeeded' FROM jobs WHERE batch_id = @b; ANALYZE");
        history.CommandTimeout = 0;
        history.Parameters.AddWithValue("b", batchId);
        await history.ExecuteNonQueryAsync();
        return batchId;
    }
}
