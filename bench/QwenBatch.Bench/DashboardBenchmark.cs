using System.Diagnostics;
using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using Hangfire.Common;
using QwenBatch.Dashboard.Hosting;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Storage;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Bench;

/// <summary>
/// Dashboard render times on a million edits: seeds N edits (several batches, realistic states, two history rows each) with
/// generate_series, hosts the dashboard in-process on Kestrel (loopback HTTP), and times QwenBatch's pages over real
/// requests, p50/p95. Side by side, round by round, each page's baseline: the naive query a dashboard without counters
/// would run for it (COUNT(*) over jobs), timed directly on the same database.
/// </summary>
internal static class DashboardBenchmark
{
    private const double GoalMs = 200;

    public static async Task<int> RunAsync(string[] args)
    {
        var jobs = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1_000_000;
        var requests = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 40;
        var database = args.Length > 2 ? args[2] : await (await PostgresServer.GetAsync()).CreateDatabaseAsync("dashboard_bench");
        await using var store = new PostgresStore(database, TimeProvider.System, NullLogger<PostgresStore>.Instance);
        await store.MigrateAsync(CancellationToken.None);
        await using var dataSource = NpgsqlDataSource.Create(database);

        var seedStart = Stopwatch.GetTimestamp();
        var seed = await SeedAsync(dataSource, jobs);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"seeded {jobs:N0} jobs in {seed.Batches} batches, {seed.HistoryRows:N0} history rows, in {Stopwatch.GetElapsedTime(seedStart).TotalSeconds:0} s"));

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddSingleton<IStore>(store);
        builder.Services.AddSingleton<IBatchStore>(store);
        builder.Services.AddSingleton<IEditStore>(store);
        builder.Services.AddSingleton<IReportReads>(store);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(new EditStateChanger(store, NullLogger<EditStateChanger>.Instance));
        builder.Services.AddSingleton<global::Hangfire.JobStorage>(JobStorages.PostgreSql(database, new HangfireOptions()));
        builder.Services.AddSingleton<IJobFilterProvider>(new JobFilterCollection());
        builder.Services.AddQwenBatchDashboard(builder.Configuration);
        await using var app = builder.Build();
        app.UseQwenBatchDashboard();
        await app.StartAsync();
        using var http = new HttpClient { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromMinutes(2) };

        var pages = Pages(seed);
        var ours = pages.ToDictionary(p => p.Name, _ => new List<double>());
        var naive = pages.ToDictionary(p => p.Name, _ => new List<double>());
        foreach (var page in pages)
        {
            // Warm up: JIT, connection pool, plan caches, buffer cache.
            for (var i = 0; i < 3; i++)
            {
                await RenderAsync(http, page.Path);
            }
        }

        for (var round = 0; round < requests; round++)
        {
            foreach (var page in pages)
            {
                ours[page.Name].Add(await RenderAsync(http, page.Path));
                if (round < Math.Min(requests, 10))
                {
                    // The naive queries take seconds each on a million rows: ten rounds are enough for their p95.
                    naive[page.Name].Add(await BaselineAsync(dataSource, page.Baseline));
                }
            }
        }

        await app.StopAsync();
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{jobs:N0} jobs; {requests} requests per page; goal p95 < {GoalMs:0} ms"));
        Console.WriteLine("| page | path | p50 ms | p95 ms | baseline p95 ms | baseline (naive query) | p95 ratio | goal |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|");
        var met = true;
        foreach (var page in pages)
        {
            var p95 = Percentile(ours[page.Name], 0.95);
            var baseP95 = Percentile(naive[page.Name], 0.95);
            met &= p95 < GoalMs;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {page.Name} | `{page.Path}` | {Percentile(ours[page.Name], 0.5):0.0} | {p95:0.0} | {baseP95:0.0} | {page.Baseline.What} | {p95 / baseP95:P1} | {(p95 < GoalMs ? "met" : "**missed**")} |"));
        }

        await WriteCostAsync(dataSource, seed);
        return met ? 0 : 1;
    }

    /// <summary>
    /// What the dashboard's trigram indexes cost every edit write: single-row updates that move an edit's state (as each
    /// move does; the state is indexed, so no update is HOT and every index gets an entry), timed with the indexes in place
    /// against the same updates with them dropped — each round in a transaction that is rolled back, alternating.
    /// </summary>
    private static async Task WriteCostAsync(NpgsqlDataSource dataSource, Seed seed)
    {
        const int Updates = 2000;
        string[] trigram = ["DROP INDEX IF EXISTS jobs_key_trgm", "DROP INDEX IF EXISTS jobs_prompt_trgm", "DROP INDEX IF EXISTS job_search_key_trgm", "DROP INDEX IF EXISTS job_search_prompt_trgm"];
        (string Name, string[] Drops)[] variants = [("with the search's trigram indexes", []), ("without them", trigram)];
        var times = variants.ToDictionary(v => v.Name, _ => new List<double>());
        for (var round = 0; round < 3 * variants.Length; round++)
        {
            var (name, drops) = variants[round % variants.Length];
            await using var connection = await dataSource.OpenConnectionAsync();
            await using var tx = await connection.BeginTransactionAsync();
            foreach (var sql in drops)
            {
                await using var drop = new NpgsqlCommand(sql, connection, tx);
                await drop.ExecuteNonQueryAsync();
            }

            await using var update = new NpgsqlCommand(
                "UPDATE jobs SET state = CASE WHEN $2 THEN 'succeeded' ELSE 'downloading' END, finished_at = now(), updated_at = now() WHERE id = $1",
                connection, tx);
            var id = new NpgsqlParameter<long>();
            var finishes = new NpgsqlParameter<bool>();
            update.Parameters.Add(id);
            update.Parameters.Add(finishes);
            var start = Stopwatch.GetTimestamp();
            for (var i = 0; i < Updates; i++)
            {
                // One update in four finishes a job, about the engine's mix (submit, polls, download, finish).
                id.TypedValue = seed.SampleJob - (i * 7919L % Math.Max(1, seed.SampleJob - 1));
                finishes.TypedValue = i % 4 == 0;
                await update.ExecuteNonQueryAsync();
            }

            times[name].Add(Stopwatch.GetElapsedTime(start).TotalMilliseconds * 1000 / Updates);
            await tx.RollbackAsync();
        }

        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"write cost: {Updates} single-row state updates per round, 3 rounds each, alternating; median µs/update:"));
        var baseline = times[variants[^1].Name].Order().ElementAt(1);
        foreach (var (name, _) in variants)
        {
            var median = times[name].Order().ElementAt(1);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  {name}: {median:0} µs (ratio {median / baseline:0.00})"));
        }
    }

    private static async Task<double> RenderAsync(HttpClient http, string path)
    {
        var start = Stopwatch.GetTimestamp();
        using var response = await http.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        var took = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (!response.IsSuccessStatusCode || !body.Contains("QwenBatch", StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{path} answered {(int)response.StatusCode}: {body[..Math.Min(300, body.Length)]}");
        }

        return took;
    }

    /// <summary>The naive query, in a transaction that first drops the indexes it must do without, then rolls back.</summary>
    private static async Task<double> BaselineAsync(NpgsqlDataSource dataSource, Baseline baseline)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        await using var tx = await connection.BeginTransactionAsync();
        foreach (var index in baseline.DropIndexes)
        {
            await using var drop = new NpgsqlCommand($"DROP INDEX IF EXISTS {index}", connection, tx);
            await drop.ExecuteNonQueryAsync();
        }

        var start = Stopwatch.GetTimestamp();
        await using (var command = new NpgsqlCommand(baseline.Sql, connection, tx) { CommandTimeout = 0 })
        await using (var reader = await command.ExecuteReaderAsync())
        {
            do
            {
                while (await reader.ReadAsync())
                {
                }
            }
            while (await reader.NextResultAsync());
        }

        var took = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        await tx.RollbackAsync();
        return took;
    }

    private static List<BenchPage> Pages(Seed seed)
    {
        const string Row = "SELECT * FROM jobs";
        var job = seed.SampleJob.ToString(CultureInfo.InvariantCulture);
        var batch = seed.SampleBatch.ToString(CultureInfo.InvariantCulture);
        return
        [
            new("overview", "/dashboard", new("COUNT(*) by state + outcomes by hour over jobs",
                "SELECT state, count(*) FROM jobs GROUP BY state; "
                + "SELECT date_trunc('hour', finished_at), state, count(*) FROM jobs WHERE state IN ('succeeded', 'failed') AND finished_at > now() - interval '30 days' GROUP BY 1, 2", [])),
            new("batches", "/dashboard/batches", new("COUNT(*) by batch and state", "SELECT batch_id, state, count(*) FROM jobs GROUP BY 1, 2", [])),
            new("batch page", $"/dashboard/batches/{batch}", new("COUNT(*) of one batch by state", $"SELECT state, count(*) FROM jobs WHERE batch_id = {batch} GROUP BY state", [])),
            new("job page", $"/dashboard/job/{job}", new("the job and its history, direct",
                $"{Row} WHERE id = {job}; SELECT * FROM job_history WHERE job_id = {job} ORDER BY id", [])),
        ];
    }

    /// <summary>
    /// Ten batches share the jobs. Per job: 80 % succeeded, 8 % failed, 3 % cancelled, 2 % held, 2 % at the provider, the rest
    /// pending; settled jobs finished over the last 30 days; a prompt from a few templates (one in a thousand says
    /// "ultramarine"); two history rows each.
    /// </summary>
    private static async Task<Seed> SeedAsync(NpgsqlDataSource dataSource, int jobs)
    {
        const int Batches = 10;
        var perBatch = jobs / Batches;
        await ExecuteAsync(dataSource,
            $"""
            INSERT INTO batches (name, source, provider, storage_dir, created_at, spent_usd)
            SELECT 'catalog-' || b, '/manifests/catalog-' || b || '.csv', CASE WHEN b % 2 = 0 THEN 'odirouter' ELSE 'wavespeed' END,
                   '/output/catalog-' || b, now() - make_interval(days => 31 - b * 3), 0
            FROM generate_series(1, {Batches}) b
            """);
        for (var b = 1; b <= Batches; b++)
        {
            // One statement per batch: the counters' statement triggers fold each into one upsert.
            await ExecuteAsync(dataSource,
                $"""
                INSERT INTO jobs (batch_id, key, content_hash, state, provider, spec, request_id, attempt, polls, due_at, created_at, submitted_at,
                                  finished_at, updated_at, cost_usd, error)
                SELECT bt.id, 'product-' || lpad(g::text, 7, '0'), md5(g::text), s.state, bt.provider,
                       jsonb_build_object(
                           'prompt', (ARRAY['White studio background, keep the product unchanged',
                                            'Replace the headline ''Summer Sale'' with ''Soldes d''été'' and keep the same font',
                                            'Remove the price tag and fill in the shelf behind it',
                                            'Move the mug to the left third of the frame, soft shadow'])[1 + g % 4]
                                     || CASE WHEN g % 1000 = 7 THEN ', ultramarine accents' ELSE '' END || ', item ' || g,
                           'images', jsonb_build_array('https://cdn.example.com/products/' || g || '.jpg'), 'n', 1 + g % 3),
                       CASE WHEN s.state <> 'pending' THEN 'req-' || md5(g::text) END, 1, 2, now(), t.at - interval '5 minutes', t.at - interval '4 minutes',
                       CASE WHEN s.settled THEN t.at END, t.at, CASE WHEN s.state = 'succeeded' THEN 0.02 ELSE 0 END,
                       CASE WHEN s.state = 'failed' THEN 'provider said: content policy' END
                FROM batches bt, generate_series({(b - 1) * perBatch + 1}, {b * perBatch}) g,
                     LATERAL (SELECT now() - make_interval(secs => (g * 2654435761::bigint % 2592000)::int) AS at) t,
                     LATERAL (SELECT CASE WHEN g % 100 < 80 THEN 'succeeded' WHEN g % 100 < 88 THEN 'failed' WHEN g % 100 < 91 THEN 'cancelled'
                                          WHEN g % 100 < 93 THEN 'held' WHEN g % 100 < 95 THEN 'at_provider' ELSE 'pending' END AS state) s0,
                     LATERAL (SELECT s0.state, s0.state IN ('succeeded', 'failed', 'cancelled') AS settled) s
                WHERE bt.name = 'catalog-{b}'
                """);
            await ExecuteAsync(dataSource,
                $"""
                INSERT INTO job_history (job_id, at, from_state, to_state, reason, server_id)
                SELECT j.id, j.updated_at - interval '4 minutes', 'submitting', 'at_provider', NULL, 'host-1:1:live0001' FROM jobs j
                WHERE j.batch_id = (SELECT id FROM batches WHERE name = 'catalog-{b}') AND j.state <> 'pending'
                UNION ALL
                SELECT j.id, j.updated_at, 'downloading', j.state, j.error, 'host-1:1:live0001' FROM jobs j
                WHERE j.batch_id = (SELECT id FROM batches WHERE name = 'catalog-{b}') AND j.state IN ('succeeded', 'failed', 'cancelled')
                """);
        }

        await ExecuteAsync(dataSource, "VACUUM ANALYZE");

        await using var command = dataSource.CreateCommand(
            """
            SELECT (SELECT id FROM batches WHERE name = 'catalog-5'),
                   (SELECT max(id) FROM jobs WHERE state = 'failed'),
                   (SELECT id FROM jobs WHERE state = 'succeeded' ORDER BY id OFFSET 2000 LIMIT 1),
                   (SELECT key FROM jobs WHERE state = 'succeeded' ORDER BY id OFFSET 123456 % (SELECT count(*) FROM jobs) LIMIT 1),
                   (SELECT count(*) FROM job_history),
                   (SELECT count(*) FROM jobs WHERE state = 'succeeded' AND id >= (SELECT id FROM jobs WHERE state = 'succeeded' ORDER BY id OFFSET 2000 LIMIT 1))
            """);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return new Seed(Batches, reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetString(3), reader.GetInt64(4), reader.GetInt64(5));
    }

    private static async Task ExecuteAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var command = dataSource.CreateCommand(sql);
        command.CommandTimeout = 0;
        await command.ExecuteNonQueryAsync();
    }

    private static double Percentile(List<double> values, double p)
    {
        var sorted = values.Order().ToList();
        return sorted[Math.Min(sorted.Count - 1, (int)Math.Ceiling(p * sorted.Count) - 1)];
    }

    private sealed record Seed(int Batches, long SampleBatch, long SampleJob, long DeepCursor, string SampleKey, long HistoryRows, long DeepOffset);

    private sealed record Baseline(string What, string Sql, string[] DropIndexes);

    private sealed record BenchPage(string Name, string Path, Baseline Baseline);
}
