using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using QwenBatch.Batches;
using QwenBatch.FlowControl;
using QwenBatch.Edits;
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
        var rounds = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 3;
        var database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("engine");
        // The probes' own pooled connections must not add DISCARD ALL to what is counted.
        await using var dataSource = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(database) { NoResetOnClose = true }.ConnectionString);
        var statements = await TryEnableStatementsAsync(dataSource);

        // Warm-up, not measured: a worker runs for hours, so what is compared is the steady state, not the JIT compiling the
        // code paths. Each loop gets its own, in rounds until one leaves the JIT little to compile (or eight ran): the tiered
        // JIT starts counting calls for its optimised tier only once new methods stop appearing, then recompiles thousands
        // of methods (twice, with profile-guided optimisation) on a background thread — after three fixed rounds it still
        // compiled 124–323 methods for 0.3–0.6 s of a 3 s measured run on 2 cores; after eight, 30–100 for 40–150 ms.
        var warmUp = Math.Min(jobs, 1000);

        // The warm-ups' files are deleted only at the end: on ext4 a file created seconds after thousands were deleted
        // waits while the inode allocator skips every recently freed inode (in one profile, creating the temporary
        // download files took 11 % of the machine's CPU when each warm-up deleted its folder right away).
        // QWENBATCH_BENCH_OUTPUTS puts the output files elsewhere (a tmpfs such as /dev/shm): on this VM's disk, creating
        // them costs the engine's process more CPU than the engine itself (docs/benchmarks.md shows both).
        var outputs = Environment.GetEnvironmentVariable("QWENBATCH_BENCH_OUTPUTS") is { Length: > 0 } elsewhere
            ? Directory.CreateDirectory(Path.Combine(elsewhere, $"qwenbatch-engine-{Guid.NewGuid():N}")).FullName
            : Directory.CreateTempSubdirectory("qwenbatch-engine-").FullName;
        var rawWarmUps = await WarmUpAsync(round => RawLoopAsync(dataSource, statements, warmUp, concurrency, $"raw_warm_up_{round}"));
        var engineWarmUps = await WarmUpAsync(round => EngineAsync(database, dataSource, statements, warmUp, concurrency, $"noop-warm-up-{round}", outputs));

        // The two loops take turns, the order swapped every round: on a virtual machine whose host steals a varying share of
        // its CPU (0–62 % from one run to the next here), one pair of runs compares the steal as much as the loops.
        var pairs = new List<(Measurement Raw, Measurement Engine, string Creating)>();
        for (var round = 1; round <= rounds; round++)
        {
            Measurement? raw = null;
            if (round % 2 == 1)
            {
                raw = await RawLoopAsync(dataSource, statements, jobs, concurrency, $"raw_jobs_{round}");
            }

            var creating = FileCreation.Probe(outputs, round);
            var engine = await EngineAsync(database, dataSource, statements, jobs, concurrency, $"noop-{round}", outputs);
            raw ??= await RawLoopAsync(dataSource, statements, jobs, concurrency, $"raw_jobs_{round}");
            pairs.Add((raw, engine, creating));
        }

        Directory.Delete(outputs, recursive: true);
        var version = await ScalarAsync(dataSource, "SHOW server_version");

        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{jobs} no-op jobs, {concurrency} workers/slots, PostgreSQL {version}; {rounds} rounds of both loops, taking turns (warm-up before them: {rawWarmUps} rounds of the raw loop, {engineWarmUps} of the engine)"));
        for (var i = 0; i < pairs.Count; i++)
        {
            var (raw, engine, creating) = pairs[i];
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  round {i + 1}: raw loop {jobs / raw.Seconds,6:N0} jobs/s ({Machine(raw)}), engine {jobs / engine.Seconds,6:N0} jobs/s ({Machine(engine)}), {raw.Seconds / engine.Seconds:P0}; creating a file just before: {creating}"));
        }

        // The run with the median throughput of each loop stands for it (with an even count, the slower of the two middle
        // runs); the ratio is of the two medians.
        var medianRaw = Median(pairs.Select(p => p.Raw));
        var medianEngine = Median(pairs.Select(p => p.Engine));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"raw SKIP LOCKED loop: {jobs / medianRaw.Seconds,8:N0} jobs/s, {medianRaw.Commits / (double)jobs:0.00} commits/job, {PerJob(medianRaw, jobs)} statements/job, {CpuPerJob(medianRaw, jobs)}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"QwenBatch engine:     {jobs / medianEngine.Seconds,8:N0} jobs/s, {medianEngine.Commits / (double)jobs:0.00} commits/job, {PerJob(medianEngine, jobs)} statements/job, {CpuPerJob(medianEngine, jobs)}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"ratio:                {medianRaw.Seconds / medianEngine.Seconds:P0} of the raw loop (medians of {rounds} rounds)"));
        Console.WriteLine($"in the raw loop's median run: {Inside(medianRaw, jobs)}");
        Console.WriteLine($"in the engine's median run: {Inside(medianEngine, jobs)}");
        if (medianEngine.Statements is { } engineStatements)
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

    /// <summary>
    /// Runs warm-up rounds until one compiles fewer than <see cref="QuietJit"/> methods (at most <see cref="MaxWarmUpRounds"/>),
    /// and returns how many ran.
    /// </summary>
    private static async Task<int> WarmUpAsync(Func<int, Task<Measurement>> round)
    {
        for (var n = 1; ; n++)
        {
            var measured = await round(n);
            Phase(string.Create(CultureInfo.InvariantCulture, $"warm-up round {n}: JIT {measured.Runtime.JitMethods} methods in {measured.Runtime.JitTime.TotalMilliseconds:0} ms, {measured.Seconds:0.00} s"));
            if (measured.Runtime.JitMethods < QuietJit || n == MaxWarmUpRounds)
            {
                return n;
            }
        }
    }

    private const int QuietJit = 40;

    private const int MaxWarmUpRounds = 8;

    private static string Machine(Measurement m) =>
        string.Create(CultureInfo.InvariantCulture, $"CPU {m.Runtime.Stolen:P0} stolen, {m.Runtime.Idle:P0} idle");

    private static Measurement Median(IEnumerable<Measurement> runs)
    {
        var sorted = runs.OrderBy(m => m.Seconds).ToList();
        return sorted[sorted.Count / 2];
    }

    /// <param name="DatabaseCpu">CPU time the cluster's server processes spent in the run (Linux /proc), or null.</param>
    /// <param name="Runtime">What the process's kernel time, JIT and GC took of it: what a run's figures move with.</param>
    private sealed record Measurement(
        double Seconds, long Commits, Dictionary<string, long>? Statements, TimeSpan? DatabaseCpu, RuntimeCost Runtime);

    /// <summary>
    /// The process's CPU (all threads) and its kernel share, the methods the JIT compiled and its time, GC collections and
    /// pauses, and the machine's steal and idle ticks, over a run.
    /// </summary>
    /// <param name="StolenTicks">The machine's CPU ticks stolen by its hypervisor (/proc/stat), of <paramref name="Ticks"/> in all.</param>
    /// <param name="IdleTicks">The machine's idle (and I/O wait) ticks: what a loop that is not CPU-bound leaves unused.</param>
    private sealed record RuntimeCost(
        TimeSpan ProcessCpu, TimeSpan KernelCpu, long JitMethods, TimeSpan JitTime, int Collections, TimeSpan GcPause, long StolenTicks, long IdleTicks, long Ticks)
    {
        public double Stolen => Ticks > 0 ? StolenTicks / (double)Ticks : 0;

        public double Idle => Ticks > 0 ? IdleTicks / (double)Ticks : 0;

        public static RuntimeCost Now()
        {
            using var process = Process.GetCurrentProcess();
            var (stolen, idle, ticks) = MachineTicks();
            return new RuntimeCost(
                process.TotalProcessorTime,
                process.PrivilegedProcessorTime,
                System.Runtime.JitInfo.GetCompiledMethodCount(),
                System.Runtime.JitInfo.GetCompilationTime(),
                GC.CollectionCount(0),
                GC.GetTotalPauseDuration(),
                stolen,
                idle,
                ticks);
        }

        public RuntimeCost Since(RuntimeCost before) => new(
            ProcessCpu - before.ProcessCpu, KernelCpu - before.KernelCpu, JitMethods - before.JitMethods, JitTime - before.JitTime,
            Collections - before.Collections, GcPause - before.GcPause, StolenTicks - before.StolenTicks, IdleTicks - before.IdleTicks,
            Ticks - before.Ticks);

        /// <summary>
        /// Steal, idle (with I/O wait) and all ticks from the first line of /proc/stat (user nice system idle iowait irq softirq steal …), zero
        /// elsewhere: on a virtual machine whose host is busy, the share stolen moves every figure of a run.
        /// </summary>
        private static (long Stolen, long Idle, long Ticks) MachineTicks()
        {
            if (!OperatingSystem.IsLinux())
            {
                return (0, 0, 0);
            }

            var fields = File.ReadLines("/proc/stat").First().Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..]
                .Select(f => long.Parse(f, CultureInfo.InvariantCulture)).ToArray();

            // Guest time (fields 9 and 10) is already counted in user and nice.
            return (fields[7], fields[3] + fields[4], fields.Take(8).Sum());
        }
    }

    private static string Inside(Measurement m, int jobs) => string.Create(CultureInfo.InvariantCulture,
        $"{m.Runtime.KernelCpu.TotalMilliseconds / jobs:0.000} ms/job of this process's CPU in the kernel, JIT {m.Runtime.JitMethods} methods in {m.Runtime.JitTime.TotalMilliseconds:0} ms, {m.Runtime.Collections} GCs pausing {m.Runtime.GcPause.TotalMilliseconds:0} ms, {m.Runtime.Stolen:P0} of the machine's CPU time stolen by its host");

    private static async Task<Measurement> MeasureAsync(NpgsqlDataSource dataSource, bool statements, Func<Task<double>> run)
    {
        // The cluster is found first: its look-up is a statement of ours, not the run's.
        var cluster = await DatabaseCpu.FindAsync(dataSource);
        var commits = await CommitsAsync(dataSource);
        var before = statements ? await StatementsAsync(dataSource) : null;
        var databaseBefore = cluster?.Sample();
        var runtimeBefore = RuntimeCost.Now();
        var seconds = await run();
        var runtime = RuntimeCost.Now().Since(runtimeBefore);
        var databaseCpu = cluster?.Since(databaseBefore!);
        var committed = await CommitsAsync(dataSource) - commits;
        return new Measurement(seconds, committed, before is null ? null : Delta(before, await StatementsAsync(dataSource)), databaseCpu, runtime);
    }

    private static string CpuPerJob(Measurement m, int jobs) => string.Create(CultureInfo.InvariantCulture,
        $"CPU/job {m.Runtime.ProcessCpu.TotalMilliseconds / jobs:0.000} ms here + {(m.DatabaseCpu is { } db ? (db.TotalMilliseconds / jobs).ToString("0.000", CultureInfo.InvariantCulture) : "n/a")} ms PostgreSQL");

    /// <summary>
    /// CPU time of the PostgreSQL server processes (the postmaster's children) from /proc: on a shared 2-core machine the
    /// CPU a job costs is steadier than jobs/s, which moves with whatever else runs. Processes that exit during the run
    /// take their time with them (the pool keeps its connections, so few do).
    /// </summary>
    private sealed class DatabaseCpu(int postmaster)
    {
        public static async Task<DatabaseCpu?> FindAsync(NpgsqlDataSource dataSource)
        {
            if (!OperatingSystem.IsLinux())
            {
                return null;
            }

            var backend = Convert.ToInt32(await ScalarAsync(dataSource, "SELECT pg_backend_pid()"), CultureInfo.InvariantCulture);
            return Stat(backend) is { } stat ? new DatabaseCpu(stat.Parent) : null;
        }

        public Dictionary<int, long> Sample()
        {
            var ticks = new Dictionary<int, long>();
            foreach (var dir in Directory.EnumerateDirectories("/proc"))
            {
                if (int.TryParse(Path.GetFileName(dir), NumberStyles.None, CultureInfo.InvariantCulture, out var pid)
                    && Stat(pid) is { } stat && stat.Parent == postmaster)
                {
                    ticks[pid] = stat.Ticks;
                }
            }

            return ticks;
        }

        public TimeSpan Since(Dictionary<int, long> before)
        {
            var ticks = Sample().Sum(kv => kv.Value - before.GetValueOrDefault(kv.Key));

            // USER_HZ: 100 on every Linux this runs on.
            return TimeSpan.FromMilliseconds(ticks * 10);
        }

        /// <summary>Parent pid and utime + stime (clock ticks) from /proc/pid/stat; null when the process is gone.</summary>
        private static (int Parent, long Ticks)? Stat(int pid)
        {
            try
            {
                var text = File.ReadAllText($"/proc/{pid}/stat");
                var fields = text[(text.LastIndexOf(')') + 2)..].Split(' ');
                return (int.Parse(fields[1], CultureInfo.InvariantCulture),
                    long.Parse(fields[11], CultureInfo.InvariantCulture) + long.Parse(fields[12], CultureInfo.InvariantCulture));
            }
            catch (IOException)
            {
                return null;
            }
        }
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

            // The probes themselves commit too and are not the worker's: the read of the first count, the statements'
            // snapshot and the second count's snapshot clear.
            var probes = statements ? 3 : 0;
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

    private static async Task<Measurement> RawLoopAsync(NpgsqlDataSource dataSource, bool statements, int jobs, int workers, string table)
    {
        await ExecuteAsync(dataSource, $"CREATE TABLE {table} (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, state text NOT NULL, payload text NOT NULL)");
        await ExecuteAsync(dataSource, $"INSERT INTO {table} (state, payload) SELECT 'pending', 'p' || g FROM generate_series(1, {jobs}) g");

        // Dropped once measured, so autovacuum is not left a dozen finished tables to work through during the later runs
        // and the idle worker's minute.
        var measured = await MeasureAsync(dataSource, statements, async () =>
        {
            var clock = Stopwatch.StartNew();
            await Task.WhenAll(Enumerable.Range(0, workers).Select(async _ =>
            {
                await using var connection = await dataSource.OpenConnectionAsync();
                while (true)
                {
                    await using var tx = await connection.BeginTransactionAsync();
                    await using var claim = new NpgsqlCommand(
                        $"SELECT id FROM {table} WHERE state = 'pending' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED", connection, tx);
                    if (await claim.ExecuteScalarAsync() is not long id)
                    {
                        return;
                    }

                    await using var done = new NpgsqlCommand($"UPDATE {table} SET state = 'succeeded' WHERE id = @id", connection, tx);
                    done.Parameters.AddWithValue("id", id);
                    await done.ExecuteNonQueryAsync();
                    await tx.CommitAsync();
                }
            }));
            return clock.Elapsed.TotalSeconds;
        });
        await ExecuteAsync(dataSource, $"DROP TABLE {table}");
        return measured;
    }

    /// <param name="outputs">Where the runs' batch folders go; deleted only after every run (see <see cref="RunAsync"/>).</param>
    private static async Task<Measurement> EngineAsync(
        string database, NpgsqlDataSource dataSource, bool statements, int jobs, int concurrency, string name, string outputs)
    {
        var time = TimeProvider.System;
        await using var store = new PostgresJobStore(database, time, NullLogger<PostgresJobStore>.Instance);
        await store.MigrateAsync(CancellationToken.None);
        var output = Path.Combine(outputs, name);
        var batch = (await store.ImportBatchAsync(
            new NewBatch(name, $"/bench/{name}.csv", "noop", output),
            Enumerable.Range(1, jobs).Select(i => new NewEdit($"job-{i:00000}", $"h{i}", "noop", new EditSpec { Prompt = "p", Images = ["https://x.example/a.png"] })),
            CancellationToken.None)).Batch;

        var options = new WorkerOptions { Concurrency = concurrency, FirstPollDelay = TimeSpan.FromMilliseconds(10), FallbackPollInterval = TimeSpan.FromMilliseconds(100) };
        var providers = new ProviderRegistry([new ProviderAccount("noop", new NoOpProvider(), new ProviderOptions())]);
        var server = JobEngine.Create(new EngineParts(
            store, providers, options, time, Random.Shared.NextDouble, new LatencyModel(), new OutputDownloader(new HttpClient()), NullLoggerFactory.Instance));

        var result = await MeasureAsync(dataSource, statements, async () =>
        {
            var clock = Stopwatch.StartNew();
            Phase($"{name} start");
            await server.RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
            Phase($"{name} end");
            return clock.Elapsed.TotalSeconds;
        });
        if (Environment.GetEnvironmentVariable("QWENBATCH_BENCH_PHASES") is { Length: > 0 })
        {
            var span = await ScalarAsync(dataSource, $"SELECT extract(epoch FROM max(h.at) - min(h.at)) FROM job_history h JOIN jobs j ON j.id = h.job_id WHERE j.batch_id = {batch.Id}");
            Phase(string.Create(CultureInfo.InvariantCulture, $"{name}: first to last transition {span} s of {result.Seconds:0.000} s"));
        }

        var progress = await store.GetProgressAsync(batch.Id, CancellationToken.None);
        if (progress.Count(EditState.Succeeded) != jobs)
        {
            throw new InvalidOperationException($"Only {progress.Count(EditState.Succeeded)} of {jobs} jobs succeeded.");
        }

        return result;
    }

    /// <summary>
    /// What creating an output costs on the outputs' file system right now, apart from the engine: files written and renamed
    /// into place as the downloader does, one at a time. On an ext4 without a journal (this VM's) the inode allocator skips
    /// every inode freed in the last one to six minutes, so a run started soon after thousands of deletions on the same disk
    /// (the previous run's clean-up, a test run) pays for them in every file it creates; this line shows when it does.
    /// The files stay until the outputs are deleted: deleting them now would be such a deletion.
    /// </summary>
    private static class FileCreation
    {
        private const int Files = 500;

        public static string Probe(string outputs, int round)
        {
            var folder = Directory.CreateDirectory(Path.Combine(outputs, $"probe-{round}")).FullName;
            var content = new byte[64];
            using var process = Process.GetCurrentProcess();
            var kernel = process.PrivilegedProcessorTime;
            var clock = Stopwatch.StartNew();
            for (var i = 0; i < Files; i++)
            {
                var temp = Path.Combine(folder, $".part-{i}");
                File.WriteAllBytes(temp, content);
                File.Move(temp, Path.Combine(folder, $"file-{i}"));
            }

            var wall = clock.Elapsed;
            process.Refresh();
            var inKernel = process.PrivilegedProcessorTime - kernel;
            return string.Create(CultureInfo.InvariantCulture,
                $"{wall.TotalMicroseconds / Files:0} µs per file ({inKernel.TotalMicroseconds / Files:0} µs in the kernel)");
        }
    }

    /// <summary>
    /// With QWENBATCH_BENCH_PHASES set, prints when a run starts and ends on the monotonic clock in nanoseconds (what
    /// <c>perf record -k CLOCK_MONOTONIC</c> stamps samples with), so a profile can be cut to the measured run.
    /// </summary>
    private static void Phase(string what)
    {
        if (Environment.GetEnvironmentVariable("QWENBATCH_BENCH_PHASES") is { Length: > 0 })
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[phase] {what} {Stopwatch.GetTimestamp()}"));
        }
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
