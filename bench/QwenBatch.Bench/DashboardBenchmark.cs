using System.Diagnostics;
using System.Globalization;
using Hangfire;
using Hangfire.Client;
using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using QwenBatch.Dashboard.Hosting;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Filters;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Hangfire.Jobs;
using QwenBatch.Hangfire.States;
using QwenBatch.Storage;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Bench;

/// <summary>
/// Dashboard render times on a million edits: seeds N edits (several batches, realistic states, two history rows each) with
/// generate_series, and Hangfire's storage the way QwenBatch's retention leaves it for them (succeeded jobs expire after
/// <see cref="HangfireOptions.SucceededJobExpiration"/>, failed ones stay); hosts the dashboard in-process on Kestrel
/// (loopback HTTP) and times QwenBatch's pages and Hangfire's own over real requests, p50/p95. Side by side, round by
/// round, each page's baseline: for QwenBatch's pages the naive query a dashboard without counters would run for it
/// (COUNT(*) over the edits, OFFSET paging), timed directly on the same database; for Hangfire's pages the same page over a
/// second Hangfire storage that holds only one job per state.
/// </summary>
internal static class DashboardBenchmark
{
    private const double GoalMs = 200;

    /// <summary>Naive queries take up to a second each on a million rows: ten rounds are enough for their p95.</summary>
    private const int NaiveRounds = 10;

    /// <summary>Where the dashboard over the nearly empty Hangfire storage answers, beside <c>/hangfire</c>.</summary>
    private const string EmptyRoot = "/hangfire-empty";

    public static async Task<int> RunAsync(string[] args)
    {
        var edits = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 1_000_000;
        var requests = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 40;
        var database = args.Length > 2 ? args[2] : await (await PostgresServer.GetAsync()).CreateDatabaseAsync("dashboard_bench");
        await using var store = new PostgresStore(database, TimeProvider.System, NullLogger<PostgresStore>.Instance);
        await store.MigrateAsync(CancellationToken.None);
        await using var dataSource = NpgsqlDataSource.Create(database);

        // QwenBatch's own Hangfire settings; the schemas are created here, as a server's start creates them.
        var options = new HangfireOptions();
        var storage = JobStorages.PostgreSql(database, options);
        var emptyStorage = JobStorages.PostgreSql(database, new HangfireOptions { SchemaName = "hangfire_empty" });

        var seedStart = Stopwatch.GetTimestamp();
        var seed = await SeedAsync(dataSource, emptyStorage, options, edits);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"seeded {edits:N0} edits in {seed.Batches} batches, {seed.HistoryRows:N0} history rows, and Hangfire's storage, in {Stopwatch.GetElapsedTime(seedStart).TotalSeconds:0} s"));
        await DescribeAsync(dataSource, options.SchemaName);
        await DescribeAsync(dataSource, "hangfire_empty");

        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Services.AddSingleton<IStore>(store);
        builder.Services.AddSingleton<IBatchStore>(store);
        builder.Services.AddSingleton<IEditStore>(store);
        builder.Services.AddSingleton<IReportReads>(store);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(new EditStateChanger(store, NullLogger<EditStateChanger>.Instance));
        builder.Services.AddSingleton<JobStorage>(storage);
        builder.Services.AddSingleton<IJobFilterProvider>(new JobFilterCollection());
        builder.Services.AddQwenBatchDashboard(builder.Configuration);
        await using var app = builder.Build();
        app.UseQwenBatchDashboard();

        // The baseline of Hangfire's pages: the same dashboard, behind the same gate, over the nearly empty storage.
        app.UseHangfireDashboard(EmptyRoot, new global::Hangfire.DashboardOptions { Authorization = [], DashboardTitle = "QwenBatch", AppPath = null }, emptyStorage);
        await app.StartAsync();

        // No redirects followed: an old address answering would be timed as a redirect plus the page.
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(app.Urls.First()), Timeout = TimeSpan.FromMinutes(2) };

        var pages = Pages(seed);
        var ours = pages.ToDictionary(p => p.Name, _ => new List<double>());
        var baselines = pages.ToDictionary(p => p.Name, _ => new List<double>());
        foreach (var page in pages)
        {
            // Warm up: JIT, connection pool, plan caches, buffer cache.
            for (var i = 0; i < 3; i++)
            {
                await RenderAsync(http, page.Path, page.Marker);
                if (page.Baseline is SamePage same)
                {
                    await RenderAsync(http, same.Path, same.Marker);
                }
            }
        }

        for (var round = 0; round < requests; round++)
        {
            foreach (var page in pages)
            {
                ours[page.Name].Add(await RenderAsync(http, page.Path, page.Marker));
                switch (page.Baseline)
                {
                    case SamePage same:
                        baselines[page.Name].Add(await RenderAsync(http, same.Path, same.Marker));
                        break;
                    case NaiveQuery naive when round < NaiveRounds:
                        baselines[page.Name].Add(await QueryAsync(dataSource, naive.Sql));
                        break;
                }
            }
        }

        await app.StopAsync();
        Console.WriteLine();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"{edits:N0} edits; {requests} requests per page; goal p95 < {GoalMs:0} ms"));
        Console.WriteLine("| page | path | p50 ms | p95 ms | baseline p50 ms | baseline p95 ms | baseline | p95 / baseline p95 | goal |");
        Console.WriteLine("|---|---|---|---|---|---|---|---|---|");
        var met = true;
        foreach (var page in pages)
        {
            var p95 = Percentile(ours[page.Name], 0.95);
            var baseP95 = Percentile(baselines[page.Name], 0.95);
            met &= p95 < GoalMs;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"| {page.Name} | `{page.Path}` | {Percentile(ours[page.Name], 0.5):0.0} | {p95:0.0} | {Percentile(baselines[page.Name], 0.5):0.0} | {baseP95:0.0} | {page.Baseline.What} | {p95 / baseP95:P1} | {(p95 < GoalMs ? "met" : "**missed**")} |"));
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

    /// <summary>
    /// One request, body read. The page must answer 200 with its own content (<paramref name="marker"/>): a Hangfire page
    /// for a job that is not there, or a batch page that rendered nothing, would otherwise be timed as if it worked.
    /// </summary>
    private static async Task<double> RenderAsync(HttpClient http, string path, string marker)
    {
        var start = Stopwatch.GetTimestamp();
        using var response = await http.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();
        var took = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        if (!response.IsSuccessStatusCode || !body.Contains(marker, StringComparison.Ordinal))
        {
            throw new InvalidOperationException($"{path} answered {(int)response.StatusCode} without '{marker}': {body[..Math.Min(300, body.Length)]}");
        }

        return took;
    }

    /// <summary>A naive query, every row read.</summary>
    private static async Task<double> QueryAsync(NpgsqlDataSource dataSource, string sql)
    {
        await using var connection = await dataSource.OpenConnectionAsync();
        var start = Stopwatch.GetTimestamp();
        await using (var command = new NpgsqlCommand(sql, connection) { CommandTimeout = 0 })
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

        return Stopwatch.GetElapsedTime(start).TotalMilliseconds;
    }

    private static List<BenchPage> Pages(Seed seed)
    {
        var batch = seed.SampleBatch.ToString(CultureInfo.InvariantCulture);
        var before = seed.OldestPageBefore.ToString(CultureInfo.InvariantCulture);
        const string Edits = "SELECT * FROM jobs";
        return
        [
            new("batches", "/hangfire/batches", "id=\"batches\"", new NaiveQuery("COUNT(*) by batch and state", "SELECT batch_id, state, count(*) FROM jobs GROUP BY 1, 2")),
            new("a batch", $"/hangfire/batches/{batch}", "id=\"edits\"", new NaiveQuery("COUNT(*) of one batch by state",
                $"SELECT state, count(*) FROM jobs WHERE batch_id = {batch} GROUP BY state")),
            new("a batch's failed edits", $"/hangfire/batches/{batch}?state=failed", "Edits failed", new NaiveQuery("COUNT(*) of one batch by state + its newest 50 failed",
                $"SELECT state, count(*) FROM jobs WHERE batch_id = {batch} GROUP BY state; {Edits} WHERE batch_id = {batch} AND state = 'failed' ORDER BY id DESC LIMIT 50")),
            new("a batch's succeeded edits, oldest page (keyset)", $"/hangfire/batches/{batch}?state=succeeded&before={before}", "Edits succeeded",
                new NaiveQuery("COUNT(*) of one batch by state + OFFSET to the same page",
                    $"SELECT state, count(*) FROM jobs WHERE batch_id = {batch} GROUP BY state; "
                    + $"{Edits} WHERE batch_id = {batch} AND state = 'succeeded' ORDER BY id DESC OFFSET {seed.OldestPageOffset} LIMIT 50")),
            new("Hangfire: home", "/hangfire", "id=\"historyGraph\"", new SamePage("", "id=\"historyGraph\"")),
            new("Hangfire: succeeded jobs", "/hangfire/jobs/succeeded", "jobs/details/", new SamePage("/jobs/succeeded", "jobs/details/")),
            new("Hangfire: failed jobs", "/hangfire/jobs/failed", "jobs/details/", new SamePage("/jobs/failed", "jobs/details/")),
            new("Hangfire: a succeeded edit's job", $"/hangfire/jobs/details/{seed.SucceededJob}", "id=\"edit-fields\"",
                new SamePage($"/jobs/details/{seed.Empty.Succeeded}", "id=\"edit-fields\"")),
            new("Hangfire: a failed edit's job", $"/hangfire/jobs/details/{seed.FailedJob}", "id=\"edit-fields\"",
                new SamePage($"/jobs/details/{seed.Empty.Failed}", "id=\"edit-fields\"")),
        ];
    }

    /// <summary>
    /// Ten batches share the edits. Per edit: 80 % succeeded, 8 % failed, 3 % cancelled, 2 % held, 2 % at the provider, the
    /// rest pending; settled edits finished over the last 30 days; a prompt from a few templates (one in a thousand says
    /// "ultramarine"); two history rows each. Then Hangfire's storage as QwenBatch leaves it: see <see cref="SeedHangfireAsync"/>.
    /// </summary>
    private static async Task<Seed> SeedAsync(NpgsqlDataSource dataSource, JobStorage emptyStorage, HangfireOptions options, int edits)
    {
        const int Batches = 10;
        var perBatch = edits / Batches;
        await ExecuteAsync(dataSource,
            $"""
            INSERT INTO batches (name, source, provider, storage_dir, created_at, spent_usd)
            SELECT 'catalog-' || b, '/manifests/catalog-' || b || '.csv', CASE WHEN b % 2 = 0 THEN 'odirouter' ELSE 'wavespeed' END,
                   '/output/catalog-' || b, now() - make_interval(days => 31 - b * 3), 0
            FROM generate_series(1, {Batches}) b
            """);
        for (var b = 1; b <= Batches; b++)
        {
            // One statement per batch: the counters' statement triggers fold each into one upsert. Every edit handed to
            // Hangfire is bound to its job, numbered g here (the job is cloned in Hangfire's storage below if it is still
            // there); pending and held edits were never handed over. A settled edit keeps its binding after its job expires.
            await ExecuteAsync(dataSource,
                $"""
                INSERT INTO jobs (batch_id, key, content_hash, state, provider, spec, request_id, attempt, polls, due_at, created_at, submitted_at,
                                  finished_at, updated_at, cost_usd, error, hangfire_job)
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
                       CASE WHEN s.state = 'failed' THEN 'provider said: content policy' END,
                       CASE WHEN s.state NOT IN ('pending', 'held') THEN g::text END
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

        // Sample edits: the newest of each kind whose job is still in Hangfire's storage. The succeeded one finished more
        // than an hour before its job expires, so the job is there for the whole run (nothing expires it here anyway: no
        // Hangfire server runs).
        var expiration = (long)options.SucceededJobExpiration.TotalSeconds;
        await using var command = dataSource.CreateCommand(
            $"""
            SELECT (SELECT id FROM batches WHERE name = 'catalog-5'),
                   (SELECT max(id) FROM jobs WHERE state = 'failed'),
                   (SELECT max(id) FROM jobs WHERE state = 'succeeded' AND finished_at > now() - make_interval(secs => {expiration} - 3600)),
                   (SELECT max(id) FROM jobs WHERE state = 'at_provider'),
                   (SELECT max(id) FROM jobs WHERE state = 'cancelled' AND finished_at > now() - make_interval(secs => {expiration} - 3600)),
                   (SELECT id FROM jobs WHERE batch_id = (SELECT id FROM batches WHERE name = 'catalog-5') AND state = 'succeeded' ORDER BY id OFFSET 100 LIMIT 1),
                   (SELECT count(*) FROM job_history),
                   (SELECT count(*) - 101 FROM jobs WHERE batch_id = (SELECT id FROM batches WHERE name = 'catalog-5') AND state = 'succeeded')
            """);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        var (batch, failed, succeeded, atProvider, cancelled, oldestBefore, history, oldestOffset) =
            (reader.GetInt64(0), reader.GetInt64(1), reader.GetInt64(2), reader.GetInt64(3), reader.GetInt64(4), reader.GetInt64(5), reader.GetInt64(6), reader.GetInt64(7));

        var templates = CreateJobs(emptyStorage, options, new SampleEdits(succeeded, failed, atProvider, cancelled));
        await SeedHangfireAsync(dataSource, options, templates);
        await ExecuteAsync(dataSource, "VACUUM ANALYZE");

        await using var jobs = dataSource.CreateCommand($"SELECT hangfire_job FROM jobs WHERE id = ANY(ARRAY[{succeeded}, {failed}]::bigint[]) ORDER BY id = {failed}");
        await using var bound = await jobs.ExecuteReaderAsync();
        var ids = new List<string>();
        while (await bound.ReadAsync())
        {
            ids.Add(bound.GetString(0));
        }

        return new Seed(Batches, batch, failed, oldestBefore, oldestOffset, history, ids[0], ids[1], templates);
    }

    /// <summary>
    /// One real job per kind of edit, made through Hangfire's client, state changer and fetch — exactly what Hangfire writes
    /// for an edit's job: the feeder's create (Enqueued), a worker's fetch and run, the park at the provider, the poller's
    /// enqueue, and the end (Succeeded with QwenBatch's <see cref="JobExpiration"/>, Failed, Deleted). These are the only
    /// jobs of the nearly empty storage, and the templates that <see cref="SeedHangfireAsync"/> clones.
    /// </summary>
    private static Templates CreateJobs(JobStorage storage, HangfireOptions options, SampleEdits edits)
    {
        var filters = new JobFilterCollection { new CaptureCultureAttribute(), new JobExpiration(options) };
        var states = new BackgroundJobStateChanger(filters);
        var client = new BackgroundJobClient(storage, new BackgroundJobFactory(filters), states);
        var now = DateTimeOffset.UtcNow;
        var atProvider = new AtProviderState("req-0f3a9c", "wavespeed", now.AddMinutes(-4), now.AddSeconds(30));
        Exception refused;
        try
        {
            throw new EditFailedException("provider said: content policy");
        }
        catch (EditFailedException e)
        {
            refused = e;
        }

        string Make(long editId, params IState[] path)
        {
            var id = client.Create(EditJobClient.JobFor(editId, options.Queue), new EnqueuedState(options.Queue));
            var from = EnqueuedState.StateName;
            foreach (var state in path)
            {
                if (from == EnqueuedState.StateName)
                {
                    // A worker's fetch: the queue entry is taken and, once the run ends, removed.
                    using var connection = storage.GetConnection();
                    using var fetched = connection.FetchNextJob([options.Queue], CancellationToken.None);
                    if (fetched.JobId != id)
                    {
                        throw new InvalidOperationException($"fetched job {fetched.JobId}, expected {id}: the storage '{options.SchemaName}' was not empty");
                    }

                    Move(id, new Running(), from);
                    Move(id, state, Running.Name);
                    fetched.RemoveFromQueue();
                }
                else
                {
                    Move(id, state, from);
                }

                from = state.Name;
            }

            return id;
        }

        void Move(string id, IState state, string from)
        {
            using var connection = storage.GetConnection();
            if (states.ChangeState(new StateChangeContext(storage, connection, id, state, from)) is null)
            {
                throw new InvalidOperationException($"job {id} did not move from {from} to {state.Name}");
            }
        }

        return new Templates(
            Make(edits.Succeeded, atProvider, new EnqueuedState(options.Queue), new SucceededState(null, 240_000, 1_800)),
            Make(edits.Failed, atProvider, new EnqueuedState(options.Queue), new FailedState(refused) { Reason = "provider said: content policy" }),
            Make(edits.AtProvider, atProvider),
            Make(edits.Cancelled, atProvider, new DeletedState { Reason = "cancelled from its batch's page" }));
    }

    /// <summary>
    /// Hangfire's storage as QwenBatch's settings leave it for the seeded edits: a succeeded edit's job is there only when the
    /// edit finished within <see cref="HangfireOptions.SucceededJobExpiration"/> (Succeeded and Deleted jobs expire after
    /// it), a failed edit's job stays (Hangfire keeps failed jobs until requeued or deleted), an edit at the provider has
    /// its parked job, pending and held edits have none. Each job is a clone of the template of its kind (its job row,
    /// parameters and state history, dates moved to the edit's), with the edit's id as its argument and the id the edit
    /// is bound to. Hangfire's counters are what its filters would have counted for every edit: totals, and the daily
    /// (kept a month) and hourly (kept a day) counts the home page's graphs read.
    /// </summary>
    private static async Task SeedHangfireAsync(NpgsqlDataSource dataSource, HangfireOptions options, Templates templates)
    {
        var schema = options.SchemaName;
        var expiration = (long)options.SucceededJobExpiration.TotalSeconds;
        await ExecuteAsync(dataSource,
            $"""
            CREATE UNLOGGED TABLE bench_hangfire_jobs AS
            SELECT j.id AS edit, j.hangfire_job::bigint AS job, coalesce(j.finished_at, j.updated_at) AS at, k.template,
                   CASE WHEN k.expires THEN j.finished_at + make_interval(secs => {expiration}) END AS expireat
            FROM jobs j
            JOIN (VALUES ('succeeded', {templates.Succeeded}::bigint, true), ('failed', {templates.Failed}, false),
                         ('at_provider', {templates.AtProvider}, false), ('cancelled', {templates.Deleted}, true)) k(state, template, expires)
              ON k.state = j.state
            WHERE j.hangfire_job IS NOT NULL AND (NOT k.expires OR j.finished_at > now() - make_interval(secs => {expiration}));
            CREATE UNLOGGED TABLE bench_hangfire_history AS
            SELECT jobid AS template, name, reason, data, (row_number() OVER (PARTITION BY jobid ORDER BY id))::int - 1 AS step,
                   (count(*) OVER (PARTITION BY jobid))::int AS steps
            FROM hangfire_empty.state;
            """);

        // Ids are made from the edit's job number, so a job's last state is known before it is inserted; the sequences are
        // moved past them, as Hangfire would have left them.
        await ExecuteAsync(dataSource,
            $$"""
            INSERT INTO "{{schema}}".job (id, stateid, statename, invocationdata, arguments, createdat, expireat)
            SELECT c.job, c.job * 8 + h.steps - 1, t.statename, jsonb_set(t.invocationdata, '{Arguments}', to_jsonb(a.arguments::text)), a.arguments,
                   c.at - interval '5 minutes', c.expireat
            FROM bench_hangfire_jobs c
            JOIN hangfire_empty.job t ON t.id = c.template
            JOIN bench_hangfire_history h ON h.template = c.template AND h.step = 0,
            LATERAL (SELECT jsonb_set(t.arguments, '{0}', to_jsonb(c.edit::text)) AS arguments) a;

            INSERT INTO "{{schema}}".jobparameter (jobid, name, value)
            SELECT c.job, p.name, p.value FROM bench_hangfire_jobs c JOIN hangfire_empty.jobparameter p ON p.jobid = c.template;

            INSERT INTO "{{schema}}".state (id, jobid, name, reason, createdat, data)
            SELECT c.job * 8 + h.step, c.job, h.name, h.reason, s.at,
                   (SELECT coalesce(jsonb_object_agg(key, CASE WHEN key LIKE '%At' THEN to_jsonb(to_char(s.at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"')) ELSE value END), '{}')
                    FROM jsonb_each(coalesce(h.data, '{}')))
            FROM bench_hangfire_jobs c
            JOIN bench_hangfire_history h ON h.template = c.template,
            LATERAL (SELECT c.at - make_interval(secs => (h.steps - 1 - h.step) * 240.0 / greatest(h.steps - 1, 1)) AS at) s;

            SELECT setval('"{{schema}}".job_id_seq', (SELECT max(id) FROM "{{schema}}".job));
            SELECT setval('"{{schema}}".state_id_seq', (SELECT max(id) FROM "{{schema}}".state));
            DROP TABLE bench_hangfire_jobs;
            DROP TABLE bench_hangfire_history;
            """);

        await ExecuteAsync(dataSource,
            $"""
            INSERT INTO "{schema}".aggregatedcounter (key, value, expireat)
            SELECT 'stats:succeeded', count(*), NULL::timestamptz FROM jobs WHERE state = 'succeeded'
            UNION ALL SELECT 'stats:deleted', count(*), NULL FROM jobs WHERE state = 'cancelled'
            UNION ALL
            SELECT 'stats:' || k.name || ':' || to_char(j.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD'), count(*),
                   date_trunc('day', j.finished_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 month'
            FROM jobs j JOIN (VALUES ('succeeded', 'succeeded'), ('failed', 'failed'), ('cancelled', 'deleted')) k(state, name) ON k.state = j.state
            GROUP BY 1, 3
            UNION ALL
            SELECT 'stats:' || k.name || ':' || to_char(j.finished_at AT TIME ZONE 'UTC', 'YYYY-MM-DD-HH24'), count(*),
                   date_trunc('hour', j.finished_at AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' + interval '1 day'
            FROM jobs j JOIN (VALUES ('succeeded', 'succeeded'), ('failed', 'failed'), ('cancelled', 'deleted')) k(state, name) ON k.state = j.state
            WHERE j.finished_at > now() - interval '1 day'
            GROUP BY 1, 3
            """);
    }

    /// <summary>What a Hangfire schema holds: jobs by state, state and parameter rows, counters.</summary>
    private static async Task DescribeAsync(NpgsqlDataSource dataSource, string schema)
    {
        await using var command = dataSource.CreateCommand(
            $"""
            SELECT string_agg(statename || ' ' || n, ', ' ORDER BY n DESC), sum(n),
                   (SELECT count(*) FROM "{schema}".state), (SELECT count(*) FROM "{schema}".jobparameter),
                   (SELECT count(*) FROM "{schema}".aggregatedcounter) + (SELECT count(*) FROM "{schema}".counter),
                   (SELECT coalesce(sum(value), 0) FROM "{schema}".aggregatedcounter WHERE key = 'stats:succeeded')
                   + (SELECT coalesce(sum(value), 0) FROM "{schema}".counter WHERE key = 'stats:succeeded'),
                   pg_size_pretty((SELECT sum(pg_total_relation_size(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                   WHERE n.nspname = '{schema}' AND c.relkind = 'r'))
            FROM (SELECT statename, count(*) AS n FROM "{schema}".job GROUP BY statename) s
            """);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"Hangfire schema {schema}: {reader.GetInt64(1):N0} jobs ({reader.GetString(0)}), {reader.GetInt64(2):N0} states, {reader.GetInt64(3):N0} job parameters, {reader.GetInt64(4):N0} counter rows, stats:succeeded {reader.GetInt64(5):N0}; {reader.GetString(6)}"));
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

    /// <summary>
    /// What a worker writes when it takes a job: Hangfire's ProcessingState, whose constructor only Hangfire's worker may
    /// call, so the same name and data here.
    /// </summary>
    private sealed class Running : IState
    {
        public const string Name = "Processing";

        private readonly DateTime _startedAt = DateTime.UtcNow;

        string IState.Name => Name;

        public string Reason => null!;

        public bool IsFinal => false;

        public bool IgnoreJobLoadException => false;

        public Dictionary<string, string> SerializeData() => new()
        {
            ["StartedAt"] = JobHelper.SerializeDateTime(_startedAt),
            ["ServerId"] = "bench-host:1:0f3a9c",
            ["WorkerId"] = "0f3a9c-worker-1",
        };
    }

    private sealed record SampleEdits(long Succeeded, long Failed, long AtProvider, long Cancelled);

    /// <summary>The Hangfire job ids of the four template jobs, in the nearly empty storage.</summary>
    private sealed record Templates(string Succeeded, string Failed, string AtProvider, string Deleted);

    private sealed record Seed(int Batches, long SampleBatch, long SampleJob, long OldestPageBefore, long OldestPageOffset, long HistoryRows, string SucceededJob, string FailedJob, Templates Empty);

    private abstract record Baseline(string What);

    /// <summary>The naive query a dashboard without counters would run for the page, timed directly on the database.</summary>
    private sealed record NaiveQuery(string What, string Sql) : Baseline(What);

    /// <summary>The same page over the nearly empty Hangfire storage (<see cref="EmptyRoot"/>).</summary>
    private sealed record SamePage(string Page, string Marker) : Baseline("the same page, Hangfire's storage holding one job per state")
    {
        public string Path => EmptyRoot + Page;
    }

    private sealed record BenchPage(string Name, string Path, string Marker, Baseline Baseline);
}
