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
        var idleSeconds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 60;
        var database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("engine");
        // The probes' own pooled connections must not add DISCARD ALL to what is counted.
        await using var dataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(database) { NoResetOnClose = true }.ConnectionString);
        var statements = await TryEnableStatementsAsync(dataSource);

        var raw = await RawLoopAsync(dataSource, statements, jobs, concurrency);
        var ours = await EngineAsync(database, dataSource, statements, jobs, concurrency);
        var version = await ScalarAsync(dataSource, "SHOW server_version");

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{jobs} no-op jobs, {concurrency} workers/slots, PostgreSQL {version}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"raw SKIP LOCKED loop: {jobs / raw.Seconds,8:N0} jobs/s, {raw.Commits / (double)jobs:0.00} commits/job, {PerJob(raw, jobs)} statements/job"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"QwenBatch engine:     {jobs / ours.Seconds,8:N0} jobs/s, {ours.Commits / (double)jobs:0.00} commits/job, {PerJob(ours, jobs)} statements/job"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio:                {raw.Seconds / ours.Seconds:P0} of the raw loop"));
        if (ours.Statements is { } engineStatements)
        {
            Console.WriteLine("engine statements per job, by query:");
            foreach (var (query, calls) in engineStatements.OrderByDescending(kv => kv.Value).Take(8))
            {
                Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {calls / (double)jobs,6:0.00}  {Squeeze(query)}"));
            }
        }

        await IdleWorkerAsync(database, dataSource, statements, idleSeconds);
        return 0;
    }

    private sealed record Measurement(double Seconds, long Commits, Dictionary<string, long>? Statements);

    private static async Task<Measurement> MeasureAsync(NpgsqlDataSource dataSource, bool statements, Func<Task<double>> run)
    {
        var commits = await CommitsAsync(dataSource);
        var before = statements ? await StatementsAsync(dataSource) : null;
        var seconds = await run();
        var committed = await CommitsAsync(dataSource) - commits;
        return new Measurement(seconds, committed, before is null ? null : Delta(before, await StatementsAsync(dataSource)));
    }

    private static string PerJob(Measurement m, int jobs) =>
        m.Statements is { } s ? (s.Values.Sum() / (double)jobs).ToString("0.00", CultureInfo.InvariantCulture) : "n/a";

    private static string Squeeze(string query)
    {
        var flat = string.Join(' ', query.Split((char[])['\n', '\r', ' '], StringSplitOptions.RemoveEmptyEntries));
        return flat.Length > 110 ? flat[..110] + "…" : flat;
    }

    /// <summary>pg_stat_statements needs shared_preload_libraries (the test cluster loads it); without it, no statement counts.</summary>
    private static async Task<bool> TryEnableStatementsAsync(NpgsqlDataSource dataSource)
    {
        try
        {
            await ExecuteAsync(dataSource, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
            await StatementsAsync(dataSource);
            return true;
        }
        catch (PostgresException ex)
        {
            Console.WriteLine($"(no statement counts: {ex.MessageText})");
            return false;
        }
    }

    /// <summary>
    /// A real <c>qwenbatch worker</c> process (default settings, its maintenance loops included) with nothing to do:
    /// statements/s it sends, from pg_stat_statements (or commits/s from pg_stat_database), after a warm-up.
    /// </summary>
    private static async Task IdleWorkerAsync(string database, NpgsqlDataSource dataSource, bool statements, int seconds)
    {
        var root = AppContext.BaseDirectory;
        while (!File.Exists(Path.Combine(root, "QwenBatch.sln")))
        {
            root = Path.GetDirectoryName(root) ?? throw new InvalidOperationException("QwenBatch.sln not found above the benchmark.");
        }

        var cli = Path.Combine(root, "src", "QwenBatch.Cli", "bin", "Release", "net10.0", "qwenbatch.dll");
        if (!File.Exists(cli) || seconds <= 0)
        {
            Console.WriteLine($"idle worker: not measured ({(seconds <= 0 ? "0 s asked" : $"build the CLI first: {cli}")})");
            return;
        }

        var work = Directory.CreateTempSubdirectory("qwenbatch-idle-").FullName;
        var info = new ProcessStartInfo("dotnet") { WorkingDirectory = work, RedirectStandardOutput = true, RedirectStandardError = true };
        foreach (var arg in (string[])["exec", cli, "worker", "--database", database])
        {
            info.ArgumentList.Add(arg);
        }

        info.Environment["ODIROUTER_API_KEY"] = "bench-key";
        info.Environment["WAVESPEED_API_KEY"] = "bench-key";
        using var worker = Process.Start(info)!;
        worker.OutputDataReceived += (_, _) => { };
        worker.ErrorDataReceived += (_, _) => { };
        worker.BeginOutputReadLine();
        worker.BeginErrorReadLine();
        try
        {
            // Start-up (migrations, registration, the first look at every loop) is not idling.
            for (var i = 0; i < 600 && Convert.ToInt64(await ScalarAsync(dataSource, "SELECT count(*) FROM servers"), CultureInfo.InvariantCulture) == 0; i++)
            {
                if (worker.HasExited)
                {
                    throw new InvalidOperationException($"The idle worker exited with {worker.ExitCode}.");
                }

                await Task.Delay(100);
            }

            await Task.Delay(TimeSpan.FromSeconds(5));
            var idle = await MeasureAsync(dataSource, statements, async () =>
            {
                await Task.Delay(TimeSpan.FromSeconds(seconds));
                return seconds;
            });

            // The probes themselves (snapshot clear, counters) commit too; they are not the worker's.
            var probes = statements ? 4 : 0;
            var sent = idle.Statements is { } s ? $"{s.Values.Sum() / (double)seconds:0.00} statements/s" : "statements n/a";
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"idle worker ({seconds} s, default settings): {sent}, {Math.Max(0, idle.Commits - probes) / (double)seconds:0.00} commits/s"));
            if (idle.Statements is { } idleStatements)
            {
                foreach (var (query, calls) in idleStatements.OrderByDescending(kv => kv.Value).Take(8))
                {
                    Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {calls,5}  {Squeeze(query)}"));
                }
            }
        }
        finally
        {
            worker.Kill(entireProcessTree: true);
            await worker.WaitForExitAsync();
            Directory.Delete(work, recursive: true);
        }
    }

    private static async Task<Measurement> RawLoopAsync(NpgsqlDataSource dataSource, bool statements, int jobs, int workers)
    {
        await ExecuteAsync(dataSource, "CREATE TABLE raw_jobs (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, state text NOT NULL, payload text NOT NULL)");
        await ExecuteAsync(dataSource, $"INSERT INTO raw_jobs (state, payload) SELECT 'pending', 'p' || g FROM generate_series(1, {jobs}) g");
        return await MeasureAsync(dataSource, statements, async () =>
        {
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
            return clock.Elapsed.TotalSeconds;
        });
    }

    private static async Task<Measurement> EngineAsync(string database, NpgsqlDataSource dataSource, bool statements, int jobs, int concurrency)
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

        var result = await MeasureAsync(dataSource, statements, async () =>
        {
            var clock = Stopwatch.StartNew();
            await server.RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
            return clock.Elapsed.TotalSeconds;
        });
        var progress = await store.GetProgressAsync(batch.Id, CancellationToken.None);
        if (progress.Count(JobState.Succeeded) != jobs)
        {
            throw new InvalidOperationException($"Only {progress.Count(JobState.Succeeded)} of {jobs} jobs succeeded.");
        }

        Directory.Delete(output, recursive: true);
        return result;
    }

    /// <summary>Top-level statements run in this database so far, per query text (pg_stat_statements), without our own probes.</summary>
    private static async Task<Dictionary<string, long>> StatementsAsync(NpgsqlDataSource dataSource)
    {
        await using var command = dataSource.CreateCommand(
            """
            SELECT query, sum(calls)::bigint FROM pg_stat_statements
            WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database()) AND query NOT LIKE '%pg_stat%'
            GROUP BY query
            """);
        var counts = new Dictionary<string, long>();
        await using var reader = await command.ExecuteReaderAsync();
        while (await reader.ReadAsync())
        {
            counts[reader.GetString(0)] = reader.GetInt64(1);
        }

        return counts;
    }

    private static Dictionary<string, long> Delta(Dictionary<string, long> before, Dictionary<string, long> after) =>
        after.Select(kv => (kv.Key, Calls: kv.Value - before.GetValueOrDefault(kv.Key)))
            .Where(x => x.Calls > 0)
            .ToDictionary(x => x.Key, x => x.Calls);

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
