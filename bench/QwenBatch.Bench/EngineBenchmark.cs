using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using QwenBatch.Batches;
using QwenBatch.FlowControl;
using QwenBatch.Jobs;
using QwenBatch.Outputs;
using QwenBatch.Providers;
using QwenBatch.Server;
using QwenBatch.Steps;
using QwenBatch.Storage;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Bench;

/// <summary>
/// The engine with the provider replaced by an in-process no-op (accepts at once, completes at the first poll with an
/// inline image): jobs/s and commits per job (pg_stat_database) through the real claim → submit → poll → download path,
/// against a raw SQL loop that claims one job with SKIP LOCKED and completes it in one transaction, on the same database.
/// </summary>
internal static class EngineBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        var jobs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 5000;
        var concurrency = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 32;
        var database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("engine");
        await using var dataSource = NpgsqlDataSource.Create(database);

        var (rawSeconds, rawCommits) = await RawLoopAsync(dataSource, jobs, concurrency);
        var (ourSeconds, ourCommits) = await EngineAsync(database, dataSource, jobs, concurrency);
        var version = await ScalarAsync(dataSource, "SHOW server_version");

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{jobs} no-op jobs, {concurrency} workers/slots, PostgreSQL {version}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"raw SKIP LOCKED loop: {jobs / rawSeconds,8:N0} jobs/s, {rawCommits / (double)jobs:0.00} commits/job"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"QwenBatch engine:     {jobs / ourSeconds,8:N0} jobs/s, {ourCommits / (double)jobs:0.00} commits/job"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio:                {rawSeconds / ourSeconds:P0} of the raw loop"));
        return 0;
    }

    private static async Task<(double Seconds, long Commits)> RawLoopAsync(NpgsqlDataSource dataSource, int jobs, int workers)
    {
        await ExecuteAsync(dataSource, "CREATE TABLE raw_jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, state text NOT NULL, payload text NOT NULL)");
        await ExecuteAsync(dataSource, $"INSERT INTO raw_jobs (state, payload) SELECT 'pending', 'p' || g FROM generate_series(1, {jobs}) g");
        var before = await CommitsAsync(dataSource);
        var clock = Stopwatch.StartNew();
        await Task.WhenAll(Enumerable.Range(0, workers).Select(async _ =>
        {
            await using var connection = await dataSource.OpenConnectionAsync();
            while (true)
            {
                await using var tx = await connection.BeginTransactionAsync();
                await using var claim = new NpgsqlCommand(
                    "SELECT id FROM raw_jobs WHERE state = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED", connection, tx);
                if (await claim.ExecuteScalarAsync() is not long id)
                {
                    return;
                }

                await using var done = new NpgsqlCommand("UPDATE raw_jobs SET state = 'succeeded' WHERE id = @id", connection, tx);
                done.Parameters.AddWithValue("id", id);
                await done.ExecuteNonQueryAsync();
                await tx.CommitAsync();
            }
        }));
        return (clock.Elapsed.TotalSeconds, await CommitsAsync(dataSource) - before);
    }

    private static async Task<(double Seconds, long Commits)> EngineAsync(string database, NpgsqlDataSource dataSource, int jobs, int concurrency)
    {
        var time = TimeProvider.System;
        await using var store = new PostgresJobStore(database, time, NullLogger<PostgresJobStore>.Instance);
        await store.MigrateAsync(CancellationToken.None);
        var output = Directory.CreateTempSubdirectory("qwenbatch-engine-").FullName;
        var batch = (await store.ImportBatchAsync(
            new NewBatch("noop", "/bench/noop.csv", "noop", output),
            Enumerable.Range(1, jobs).Select(i => new NewJob($"job-{i:00000}", $"h{i}", "noop", new JobSpec { Prompt = "p", Images = ["https://x.example/a.png"] })),
            CancellationToken.None)).Batch;

        var options = new WorkerOptions { Concurrency = concurrency, FirstPollDelay = TimeSpan.FromMilliseconds(10), FallbackPollInterval = TimeSpan.FromMilliseconds(100) };
        var providers = new ProviderRegistry([new ProviderAccount("noop", new NoOpProvider(), new ProviderOptions())]);
        var server = JobEngine.Create(new EngineParts(
            store, providers, options, time, Random.Shared.NextDouble, new LatencyModel(), new OutputDownloader(new HttpClient()), NullLoggerFactory.Instance));

        var commits = await CommitsAsync(dataSource);
        var clock = Stopwatch.StartNew();
        await server.RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        var seconds = clock.Elapsed.TotalSeconds;
        var progress = await store.GetProgressAsync(batch.Id, CancellationToken.None);
        if (progress.Count(JobState.Succeeded) != jobs)
        {
            throw new InvalidOperationException($"Only {progress.Count(JobState.Succeeded)} of {jobs} jobs succeeded.");
        }

        var result = (seconds, await CommitsAsync(dataSource) - commits);
        Directory.Delete(output, recursive: true);
        return result;
    }

    private static async Task<long> CommitsAsync(NpgsqlDataSource dataSource)
    {
        // The statistics collector publishes with a delay; a fresh snapshot makes the before/after counts comparable.
        await ExecuteAsync(dataSource, "SELECT pg_stat_clear_snapshot()");
        await Task.Delay(600);
        return (long)(await ScalarAsync(dataSource, "SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"))!;
    }

    private static async Task<object?> ScalarAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        return await command.ExecuteScalarAsync();
    }

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }

    /// <summary>Accepts at once and completes at the first poll with a tiny inline PNG.</summary>
    private sealed class NoOpProvider : IImageEditProvider
    {
        // A PNG signature, an IHDR header and an IEND trailer: enough for the downloader's start and end checks.
        private static readonly string Png = Convert.ToBase64String(
            [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52, 0, 0, 0, 0, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82]);
        private long _next;

        public Task<SubmitAccepted> SubmitAsync(EditRequest request, CancellationToken ct) =>
            Task.FromResult(new SubmitAccepted($"noop-{Interlocked.Increment(ref _next)}", 0));

        public Task<PollResult> PollAsync(string requestId, CancellationToken ct) =>
            Task.FromResult(new PollResult(PollStatus.Completed, Outputs: [new ProviderOutput(null, Png, "image/png")]));

        public Task<CancelOutcome> CancelAsync(string requestId, CancellationToken ct) => Task.FromResult(CancelOutcome.Requested);
    }
}
