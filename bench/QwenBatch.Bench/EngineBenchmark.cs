using System.Diagnostics;
using System.Globalization;
using Hangfire;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using QwenBatch.Simulator;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Bench;

/// <summary>
/// The engine against bare Hangfire, side by side on one PostgreSQL database: N no-op Hangfire jobs (Hangfire.PostgreSql,
/// a schema of its own) against N edits through <see cref="EngineUnderTest"/> against the simulator in this process over
/// loopback HTTP with instant tasks; then an idle bare Hangfire server against an idle worker of the engine. jobs/s and
/// edits/s, statements and commits per job, and the process's and machine's figures for every run.
/// </summary>
internal static class EngineBenchmark
{
    /// <summary>The goals set for the engine on Hangfire (the issue's): edits/s, and edits/s as a share of the no-op jobs/s.</summary>
    private const double GoalEditsPerSecond = 100;

    private const double GoalShareOfHangfire = 0.35;

    private const string BareSchema = "hangfire_bare";

    private const string IdleSchema = "hangfire_idle";

    public static async Task<int> RunAsync(string[] args)
    {
        var edits = args.Length > 0 ? int.Parse(args[0], CultureInfo.InvariantCulture) : 2000;
        var workers = args.Length > 1 ? int.Parse(args[1], CultureInfo.InvariantCulture) : 32;
        var idleSeconds = args.Length > 2 ? int.Parse(args[2], CultureInfo.InvariantCulture) : 60;
        var rounds = args.Length > 3 ? int.Parse(args[3], CultureInfo.InvariantCulture) : 3;
        var database = await (await PostgresServer.GetAsync()).CreateDatabaseAsync("engine");
        await using var probe = await DatabaseProbe.CreateAsync(database);

        // The probes must not count themselves: an empty window shows it.
        var empty = await probe.MeasureAsync(() => Task.FromResult(0.0), () => Task.CompletedTask);

        // Tasks finish as soon as they are submitted; no limits, no faults.
        var simulatorOptions = new SimulatorOptions { LatencyMin = TimeSpan.Zero, LatencyMax = TimeSpan.Zero, MaxConcurrent = 100_000, RandomSeed = 1 };
        await using var simulator = await SimulatorHost.StartAsync(simulatorOptions, 0, TimeProvider.System, NullLoggerFactory.Instance, CancellationToken.None);
        var bare = BareHangfire.Create(database, BareSchema);

        // The warm-ups' files are deleted only at the end: on ext4 a file created seconds after thousands were deleted
        // waits while the inode allocator skips every recently freed inode (in one profile, creating the temporary
        // download files took 11 % of the machine's CPU when each warm-up deleted its folder right away).
        // QWENBATCH_BENCH_OUTPUTS puts the output files elsewhere (a tmpfs such as /dev/shm): on this VM's disk, creating
        // them costs the engine's process more CPU than the engine itself (docs/benchmarks.md shows both).
        var outputs = Environment.GetEnvironmentVariable("QWENBATCH_BENCH_OUTPUTS") is { Length: > 0 } elsewhere
            ? Directory.CreateDirectory(Path.Combine(elsewhere, $"qwenbatch-engine-{Guid.NewGuid():N}")).FullName
            : Directory.CreateTempSubdirectory("qwenbatch-engine-").FullName;
        EngineRunSpec Spec(int count, string name) => new(database, simulator.BaseUrl, count, workers, name, outputs);

        var version = await probe.ScalarAsync("SHOW server_version /* pg_stat: a probe */");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"engine benchmark: {edits} jobs/edits, {workers} workers, PostgreSQL {version} (one database), {Environment.ProcessorCount} cores, outputs in {outputs}"));
        Console.WriteLine($"  bare Hangfire: {BareHangfire.Describe(bare.Options)}");
        Console.WriteLine($"                 {BareHangfire.Describe(BareHangfire.ServerOptions(workers))}; job: static NoOpJob.Run() pre-enqueued with BackgroundJobClient (8 threads, not timed)");
        Console.WriteLine($"  {EngineUnderTest.Title}: {EngineUnderTest.Describe(workers)}");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  simulator in this process at {simulator.BaseUrl}: latency {simulatorOptions.LatencyMin.TotalSeconds:0}–{simulatorOptions.LatencyMax.TotalSeconds:0} s, MaxConcurrent {simulatorOptions.MaxConcurrent}, no faults; every output a 512×512 PNG made at download"));
        Console.WriteLine($"  probe check: an empty window counted {empty.Commits} commits and {empty.StatementCount} statements (both should be 0)");

        // Warm-up, not measured: a worker runs for hours, so what is compared is the steady state, not the JIT compiling the
        // code paths. Each side gets its own, in rounds until one leaves the JIT little to compile (or eight ran): the tiered
        // JIT starts counting calls for its optimised tier only once new methods stop appearing, then recompiles thousands
        // of methods (twice, with profile-guided optimisation) on a background thread — after three fixed rounds it still
        // compiled 124–323 methods for 0.3–0.6 s of a 3 s measured run on 2 cores; after eight, 30–100 for 40–150 ms.
        var warmUp = Math.Min(edits, 1000);
        var bareWarmUps = await WarmUpAsync("bare Hangfire", _ => bare.RunAsync(probe, warmUp, workers));
        var engineWarmUps = await WarmUpAsync("engine", round => EngineAsync(probe, simulator, Spec(warmUp, $"warm-up-{round}")));
        await ProviderPathAlone.RunAsync(simulator.BaseUrl, warmUp, workers, outputs);
        Console.WriteLine($"warm-up: {bareWarmUps} rounds of bare Hangfire, {engineWarmUps} of the engine ({warmUp} each), until one compiled fewer than {QuietJit} methods; 1 of the provider path alone");

        // The two take turns, the order swapped every round: on a virtual machine whose host steals a varying share of its
        // CPU (0–62 % from one run to the next here), one pair of runs compares the steal as much as the engines.
        // After each pair, the provider path alone (no engine, no database) shows what the simulator and the HTTP and file
        // work of an edit leave of the machine at that moment.
        var pairs = new List<(Measurement Bare, Measurement Engine, Measurement Alone, string Creating)>();
        for (var round = 1; round <= rounds; round++)
        {
            Measurement? hangfire = null;
            if (round % 2 == 1)
            {
                hangfire = await bare.RunAsync(probe, edits, workers);
            }

            var creating = FileCreation.Probe(outputs, round);
            var engine = await EngineAsync(probe, simulator, Spec(edits, $"round-{round}"));
            hangfire ??= await bare.RunAsync(probe, edits, workers);
            var alone = await ProviderPathAlone.RunAsync(simulator.BaseUrl, edits, workers, outputs);
            pairs.Add((hangfire, engine, alone, creating));
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  round {round} ({(round % 2 == 1 ? "Hangfire first" : "engine first")}): bare Hangfire {edits / hangfire.Seconds,5:N0} jobs/s ({Machine(hangfire)}), engine {edits / engine.Seconds,5:N0} edits/s ({Machine(engine)}), {hangfire.Seconds / engine.Seconds:P0}; provider path alone {edits / alone.Seconds,5:N0} edits/s ({Machine(alone)}); creating a file just before the engine: {creating}"));
        }

        Directory.Delete(outputs, recursive: true);

        // The run with the median throughput of each side stands for it (with an even count, the slower of the two middle
        // runs); the ratio is of the two medians.
        var medianBare = Median(pairs.Select(p => p.Bare));
        var medianEngine = Median(pairs.Select(p => p.Engine));
        var medianAlone = Median(pairs.Select(p => p.Alone));
        var bareRate = edits / medianBare.Seconds;
        var engineRate = edits / medianEngine.Seconds;
        var share = medianBare.Seconds / medianEngine.Seconds;
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"medians of {rounds} rounds:"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  bare Hangfire, no-op jobs: {bareRate,7:N0} jobs/s,  {PerUnit(medianBare, edits)} per job, {CpuPer(medianBare, edits)}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  engine, edits:             {engineRate,7:N0} edits/s, {PerUnit(medianEngine, edits)} per edit, {CpuPer(medianEngine, edits)}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  provider path alone:       {edits / medianAlone.Seconds,7:N0} edits/s (no engine, no database), {CpuPer(medianAlone, edits)}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  ratio: edits/s ÷ no-op jobs/s = {share:P0}; edits/s ÷ the provider path alone's = {medianAlone.Seconds / medianEngine.Seconds:P0}"));
        Console.WriteLine($"  in bare Hangfire's median run: {Inside(medianBare, edits)}");
        Console.WriteLine($"  in the engine's median run: {Inside(medianEngine, edits)}");
        ByQuery("bare Hangfire statements per job", medianBare, edits);
        ByQuery("engine statements per edit", medianEngine, edits);

        Measurement? idleHangfire = null, idleWorker = null;
        if (idleSeconds > 0)
        {
            // The rounds left tens of thousands of dead rows: autovacuum, visiting this database once a minute, would work
            // through them in transactions of its own (counted in the database's commits) during the idle runs.
            await probe.ScalarAsync("VACUUM (ANALYZE) /* pg_stat: a probe */");
            var idle = BareHangfire.Create(database, IdleSchema);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"idle, {idleSeconds} s each, one after the other on the same database (statements over the window, {DatabaseProbe.IdleBase.TotalSeconds:0} s after the start; commits the difference between a run of {DatabaseProbe.IdleBase.TotalSeconds:0} s and one {idleSeconds} s longer, each from before its start to after its stop):"));
            Console.WriteLine($"  bare Hangfire: {BareHangfire.Describe(idle.Options)}");
            Console.WriteLine($"                 {BareHangfire.Describe(new BackgroundJobServerOptions())} (defaults); one daily recurring job");
            idleHangfire = await idle.IdleAsync(probe, TimeSpan.FromSeconds(idleSeconds));
            idleWorker = await IdleWorkerAsync(database, probe, TimeSpan.FromSeconds(idleSeconds));
            PrintIdle("bare Hangfire server", idleHangfire, "others");
            PrintIdle("engine's worker (qwenbatch worker, default settings)", idleWorker, "others, the worker process among them");
        }
        else
        {
            Console.WriteLine("idle: not measured (0 s asked)");
        }

        Console.WriteLine($"goals for the engine on Hangfire, against the figures above ({EngineUnderTest.Title}):");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  edits/s ≥ {GoalEditsPerSecond:0}: {engineRate:N0} → {Met(engineRate >= GoalEditsPerSecond)}"));
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"  edits/s ≥ {GoalShareOfHangfire:P0} of bare Hangfire's no-op jobs/s: {share:P0} → {Met(share >= GoalShareOfHangfire)}"));
        if (idleHangfire is not null && idleWorker is not null && probe.HasStatements)
        {
            var hangfirePerSecond = idleHangfire.StatementCount / idleHangfire.Seconds;
            var workerPerSecond = idleWorker.StatementCount / idleWorker.Seconds;
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"  idle statements/s ≤ the idle bare Hangfire server's ({hangfirePerSecond:0.00}): {workerPerSecond:0.00} → {Met(workerPerSecond <= hangfirePerSecond)}"));
        }

        return 0;
    }

    private const int QuietJit = 40;

    private const int MaxWarmUpRounds = 8;

    private static string Met(bool met) => met ? "met" : "NOT met";

    /// <summary>
    /// Runs warm-up rounds until one compiles fewer than <see cref="QuietJit"/> methods (at most <see cref="MaxWarmUpRounds"/>),
    /// and returns how many ran.
    /// </summary>
    private static async Task<int> WarmUpAsync(string what, Func<int, Task<Measurement>> round)
    {
        for (var n = 1; ; n++)
        {
            var measured = await round(n);
            Phase(string.Create(CultureInfo.InvariantCulture, $"{what} warm-up round {n}: JIT {measured.Runtime.JitMethods} methods in {measured.Runtime.JitTime.TotalMilliseconds:0} ms, {measured.Seconds:0.00} s"));
            if (measured.Runtime.JitMethods < QuietJit || n == MaxWarmUpRounds)
            {
                return n;
            }
        }
    }

    private static async Task<Measurement> EngineAsync(DatabaseProbe probe, SimulatorHost simulator, EngineRunSpec spec)
    {
        await using var engine = await EngineUnderTest.PrepareAsync(spec);
        var calls = simulator.GetStats();
        var measured = await probe.MeasureAsync(
            async () =>
            {
                var clock = Stopwatch.StartNew();
                Phase($"{spec.Name} start");
                await engine.RunAsync();
                Phase($"{spec.Name} end");
                return clock.Elapsed.TotalSeconds;
            },
            engine.ReleaseAsync);
        var after = simulator.GetStats();
        var succeeded = await engine.SucceededAsync();
        if (succeeded != spec.Edits)
        {
            throw new InvalidOperationException($"Only {succeeded} of {spec.Edits} edits succeeded with their output written.");
        }

        Phase(string.Create(CultureInfo.InvariantCulture,
            $"{spec.Name}: {(after.Submits - calls.Submits) / (double)spec.Edits:0.00} submits, {(after.StatusCalls + after.ResultCalls - calls.StatusCalls - calls.ResultCalls) / (double)spec.Edits:0.00} status/result calls per edit"));
        return measured;
    }

    /// <summary>
    /// A real worker process of the engine (the CLI, default settings, its maintenance loops included) with nothing to
    /// do: statements and commits it sends over <paramref name="window"/> (see <see cref="DatabaseProbe.MeasureIdleAsync"/>).
    /// </summary>
    private static async Task<Measurement?> IdleWorkerAsync(string database, DatabaseProbe probe, TimeSpan window)
    {
        if (!File.Exists(BenchProcesses.Cli()))
        {
            Console.WriteLine($"  engine's worker: not measured (build the CLI first: {BenchProcesses.Cli()})");
            return null;
        }

        return await probe.MeasureIdleAsync(window, async idle =>
        {
            var work = Directory.CreateTempSubdirectory("qwenbatch-idle-").FullName;
            var output = new List<string>();
            var worker = BenchProcesses.StartCli(work, EngineUnderTest.IdleWorkerEnvironment, EngineUnderTest.IdleWorkerArguments(database), output);

            // From its registration: what comes before it (the runtime's start, migrations) is the same in both runs.
            while (!await StartedAsync(probe, worker.Id))
            {
                if (worker.HasExited)
                {
                    throw new InvalidOperationException($"The idle worker exited with {worker.ExitCode}.");
                }

                await Task.Delay(100);
            }

            await idle();
            if (worker.HasExited)
            {
                // Seen once (a worker that removed its server row 45 s into its minute): its figures are short, and say so.
                lock (output)
                {
                    Console.WriteLine($"  WARNING: the idle worker exited by itself ({worker.ExitCode}) while it was measured; its figures below are short. Its last lines:");
                    output.TakeLast(10).ToList().ForEach(line => Console.WriteLine($"    {line}"));
                }
            }

            return async () =>
            {
                await StopAsync(worker);
                worker.Dispose();
                Directory.Delete(work, recursive: true);
            };
        });
    }

    /// <summary>
    /// SIGTERM, as a service manager stops a worker: it gives its leases back and removes its server row, so the next run
    /// starts from the same state (a killed worker's row would stay, and be cleaned up later by someone's rescue loop).
    /// </summary>
    private static async Task StopAsync(Process worker)
    {
        using (var kill = Process.Start("kill", ["-TERM", worker.Id.ToString(CultureInfo.InvariantCulture)]))
        {
            await kill.WaitForExitAsync();
        }

        using var patience = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        try
        {
            await worker.WaitForExitAsync(patience.Token);
        }
        catch (OperationCanceledException)
        {
            worker.Kill(entireProcessTree: true);
            await worker.WaitForExitAsync();
        }
    }

    private static async Task<bool> StartedAsync(DatabaseProbe probe, int pid)
    {
        try
        {
            return await probe.ScalarAsync(EngineUnderTest.IdleWorkerStartedSql(pid)) is true;
        }
        catch (PostgresException)
        {
            // Its tables are not there yet.
            return false;
        }
    }

    /// <param name="others">What the machine's CPU not used by this process or the server was.</param>
    private static void PrintIdle(string what, Measurement? idle, string others)
    {
        if (idle is null)
        {
            return;
        }

        var statements = idle.Statements is null ? "statements n/a" : string.Create(CultureInfo.InvariantCulture, $"{idle.StatementCount / idle.Seconds:0.00} statements/s");
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"  {what}: {statements}, {idle.Commits / idle.Seconds:0.00} commits/s (CPU {idle.Runtime.Stolen:P0} stolen, {idle.Runtime.Idle:P0} idle, {idle.Others ?? 0:P0} {others}{(idle.Settled ? "" : ", commits read unsettled")}){(idle.Statements is not null && idle.StatementCount == 0 ? "; NOTHING sent: too short a window, or the server starved or not started" : "")}"));
        foreach (var (query, calls) in (idle.Statements ?? []).OrderByDescending(kv => kv.Value).Take(8))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    {calls,5}  {Squeeze(query)}"));
        }
    }

    private static void ByQuery(string title, Measurement m, int count)
    {
        if (m.Statements is not { } statements)
        {
            return;
        }

        Console.WriteLine($"  {title}, by query:");
        foreach (var (query, calls) in statements.OrderByDescending(kv => kv.Value).Take(12))
        {
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture, $"    {calls / (double)count,6:0.00}  {Squeeze(query)}"));
        }
    }

    private static string Machine(Measurement m) => string.Create(CultureInfo.InvariantCulture,
        $"CPU {m.Runtime.Stolen:P0} stolen, {m.Runtime.Idle:P0} idle{(m.Others is { } others ? string.Create(CultureInfo.InvariantCulture, $", {others:P0} others") : "")}, JIT {m.Runtime.JitMethods} methods, {m.Runtime.Collections} GCs{(m.Settled ? "" : ", commits read unsettled")}");

    private static Measurement Median(IEnumerable<Measurement> runs)
    {
        var sorted = runs.OrderBy(m => m.Seconds).ToList();
        return sorted[sorted.Count / 2];
    }

    private static string PerUnit(Measurement m, int count) => string.Create(CultureInfo.InvariantCulture,
        $"{m.Commits / (double)count:0.00} commits, {(m.Statements is null ? "n/a" : (m.StatementCount / (double)count).ToString("0.00", CultureInfo.InvariantCulture))} statements");

    private static string CpuPer(Measurement m, int count) => string.Create(CultureInfo.InvariantCulture,
        $"CPU {m.Runtime.ProcessCpu.TotalMilliseconds / count:0.000} ms here + {(m.DatabaseCpu is { } db ? (db.TotalMilliseconds / count).ToString("0.000", CultureInfo.InvariantCulture) : "n/a")} ms PostgreSQL each");

    private static string Inside(Measurement m, int count) => string.Create(CultureInfo.InvariantCulture,
        $"{m.Runtime.KernelCpu.TotalMilliseconds / count:0.000} ms each of this process's CPU in the kernel, JIT {m.Runtime.JitMethods} methods in {m.Runtime.JitTime.TotalMilliseconds:0} ms, {m.Runtime.Collections} GCs pausing {m.Runtime.GcPause.TotalMilliseconds:0} ms, {m.Runtime.Stolen:P0} of the machine's CPU time stolen by its host, {m.Runtime.Idle:P0} idle");

    private static string Squeeze(string query)
    {
        var flat = string.Join(' ', query.Split((char[])['\n', '\r', ' '], StringSplitOptions.RemoveEmptyEntries));
        return flat.Length > 110 ? flat[..110] + "…" : flat;
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
    /// <c>perf record -k CLOCK_MONOTONIC</c> stamps samples with), so a profile can be cut to the measured run, and the
    /// warm-up rounds and the simulator's calls per edit.
    /// </summary>
    private static void Phase(string what)
    {
        if (Environment.GetEnvironmentVariable("QWENBATCH_BENCH_PHASES") is { Length: > 0 })
        {
            Console.Error.WriteLine(string.Create(CultureInfo.InvariantCulture, $"[phase] {what} {Stopwatch.GetTimestamp()}"));
        }
    }
}
