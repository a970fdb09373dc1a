using System.Diagnostics;
using System.Globalization;
using Npgsql;

namespace QwenBatch.Bench;

/// <summary>
/// What one run of the engine benchmark cost: its time, the statements (pg_stat_statements) and commits
/// (pg_stat_database) it sent to its database, the CPU of the PostgreSQL server processes, and what the process's
/// kernel time, JIT and GC took of it with the machine's steal and idle ticks.
/// </summary>
/// <param name="Statements">Calls per query text, or null without pg_stat_statements.</param>
/// <param name="Settled">Whether every connection of the run had closed before its commits were read (see <see cref="DatabaseProbe"/>).</param>
internal sealed record Measurement(
    double Seconds, long Commits, Dictionary<string, long>? Statements, TimeSpan? DatabaseCpu, RuntimeCost Runtime, bool Settled = true)
{
    public long StatementCount => Statements?.Values.Sum() ?? 0;

    /// <summary>This run's counts less a shorter run's of the same thing: what the extra <paramref name="seconds"/> cost.</summary>
    public Measurement Minus(Measurement shorter, double seconds) => new(
        seconds,
        Commits - shorter.Commits,
        Statements is { } longer && shorter.Statements is { } less
            ? longer.Keys.Union(less.Keys).ToDictionary(q => q, q => longer.GetValueOrDefault(q) - less.GetValueOrDefault(q))
            : null,
        DatabaseCpu - shorter.DatabaseCpu,
        Runtime.Since(shorter.Runtime),
        Settled && shorter.Settled);

    /// <summary>
    /// The share of the machine's CPU time that was busy but neither this process's nor the PostgreSQL server's: another
    /// build or test run on the same machine (null without the server's CPU).
    /// </summary>
    public double? Others => DatabaseCpu is { } db && Runtime.Ticks > 0
        ? Math.Max(0, ((Runtime.Ticks - Runtime.IdleTicks - Runtime.StolenTicks) * RuntimeCost.TickMilliseconds - Runtime.ProcessCpu.TotalMilliseconds - db.TotalMilliseconds)
            / (Runtime.Ticks * RuntimeCost.TickMilliseconds))
        : null;
}

/// <summary>
/// Reads a database's counters around a run, with probes that do not count themselves. Each probe opens its own
/// unpooled connection and runs one statement in it: two commits (a backend commits one transaction of its own while it
/// starts, reading the catalogs), and no DISCARD ALL when it closes; probe texts mention pg_stat, which the statement
/// counts leave out.
/// </summary>
/// <remarks>
/// Commits: a PostgreSQL 15 backend publishes its counters to pg_stat_database when it goes idle at most once a second,
/// and otherwise up to 10 s later (PGSTAT_MIN_INTERVAL, PGSTAT_IDLE_INTERVAL), but always when it exits. So after a run
/// every connection the run opened is closed (the <c>release</c> of <see cref="MeasureAsync"/>), and the read waits
/// until no other client backend is left on the database: only then are all of the run's commits counted. A probe's
/// own commit is published when its connection closes, so it lands in a later read; reads subtract the probes counted
/// before them.
/// </remarks>
internal sealed class DatabaseProbe : IAsyncDisposable
{
    private const string CommitsFunction = "bench_pg_stat_commits";

    /// <summary>What one probe commits: its backend's start-up transaction and its statement.</summary>
    private const long CommitsPerProbe = 2;
    private readonly NpgsqlDataSource _probes;
    private long _probeCommits;

    private DatabaseProbe(NpgsqlDataSource probes, bool statements)
    {
        _probes = probes;
        HasStatements = statements;
    }

    /// <summary>Whether pg_stat_statements is there (it needs shared_preload_libraries; the test cluster loads it).</summary>
    public bool HasStatements { get; }

    public static async Task<DatabaseProbe> CreateAsync(string database)
    {
        var probes = NpgsqlDataSource.Create(new NpgsqlConnectionStringBuilder(database) { Pooling = false }.ConnectionString);

        // Waits (up to 30 s: on a busy machine closed connections' backends take seconds to exit) until no other client
        // backend is connected to this database, then reads its commits; in one statement, so the probe costs one commit
        // however long it waits.
        await ExecuteAsync(probes, $"""
            CREATE OR REPLACE FUNCTION {CommitsFunction}(settle boolean, OUT commits bigint, OUT settled boolean) LANGUAGE plpgsql AS $$
            BEGIN
                settled := NOT settle;
                FOR i IN 1..600 LOOP
                    EXIT WHEN NOT settle;
                    PERFORM pg_stat_clear_snapshot();
                    settled := NOT EXISTS (SELECT 1 FROM pg_stat_activity
                        WHERE datname = current_database() AND pid <> pg_backend_pid() AND backend_type = 'client backend');
                    EXIT WHEN settled;
                    PERFORM pg_sleep(0.05);
                END LOOP;
                PERFORM pg_stat_clear_snapshot();
                commits := (SELECT xact_commit FROM pg_stat_database WHERE datname = current_database());
            END $$
            """);
        bool statements;
        try
        {
            await ExecuteAsync(probes, "CREATE EXTENSION IF NOT EXISTS pg_stat_statements");
            statements = true;
        }
        catch (PostgresException ex)
        {
            Console.WriteLine($"(no statement counts: {ex.MessageText})");
            statements = false;
        }

        var probe = new DatabaseProbe(probes, statements);
        if (statements)
        {
            await probe.StatementsAsync();
        }

        return probe;
    }

    /// <summary>
    /// Times <paramref name="run"/> (it returns its own seconds), then calls <paramref name="release"/>, which must close
    /// every connection the run opened; commits and statements are counted from before the run until after the release
    /// (a shutdown's statements are the run's), the server CPU and the process's figures over the run only.
    /// </summary>
    public async Task<Measurement> MeasureAsync(Func<Task<double>> run, Func<Task> release)
    {
        // The cluster is found first: its look-up is a probe, not the run's.
        var cluster = await DatabaseCpu.FindAsync(this);
        var (commits, probesBefore, _) = await CommitsAsync(settle: true);
        var before = HasStatements ? await StatementsAsync() : null;
        var databaseBefore = cluster?.Sample();
        var runtimeBefore = RuntimeCost.Now();
        double seconds;
        try
        {
            seconds = await run();
        }
        finally
        {
            await release();
        }

        var runtime = RuntimeCost.Now().Since(runtimeBefore);
        var databaseCpu = cluster?.Since(databaseBefore!);
        var after = before is null ? null : Delta(before, await StatementsAsync());
        var (committed, probesAfter, settled) = await CommitsAsync(settle: true);
        return new Measurement(seconds, committed - commits - (probesAfter - probesBefore), after, databaseCpu, runtime, settled);
    }

    /// <summary>The shorter of the two runs of <see cref="MeasureIdleAsync"/>: long enough for a start-up to be over.</summary>
    public static readonly TimeSpan IdleBase = TimeSpan.FromSeconds(10);

    /// <summary>
    /// What an idle server sends over <paramref name="window"/>. Its commits cannot be read whole while it runs (its
    /// backends publish them up to 10 s late, some only with a later flush), so it runs twice, each a settled
    /// <see cref="MeasureAsync"/> from before its start until after its stop: once for <see cref="IdleBase"/>, once for
    /// that and the window. The difference is the window's steady idling, start-up and shutdown taken out (they cost
    /// about the same in both runs). Statements are counted as they are sent, so they are read over the window itself,
    /// inside the longer run: exact, where the difference would carry the runs' few statements of variation.
    /// </summary>
    /// <param name="idleFor">Starts the server, waits until it is up, awaits the idling it is given, and returns how to stop it.</param>
    public async Task<Measurement> MeasureIdleAsync(TimeSpan window, Func<Func<Task>, Task<Func<Task>>> idleFor)
    {
        async Task<Measurement> RunAsync(TimeSpan seconds, Func<Task> idle)
        {
            Func<Task>? stop = null;
            return await MeasureAsync(
                async () =>
                {
                    stop = await idleFor(idle);
                    return seconds.TotalSeconds;
                },
                () => stop?.Invoke() ?? Task.CompletedTask);
        }

        var shorter = await RunAsync(IdleBase, () => Task.Delay(IdleBase));
        Dictionary<string, long>? sent = null;
        var longer = await RunAsync(IdleBase + window, async () =>
        {
            await Task.Delay(IdleBase);
            var before = HasStatements ? await StatementsAsync() : null;
            await Task.Delay(window);
            sent = before is null ? null : Delta(before, await StatementsAsync());
        });
        return longer.Minus(shorter, window.TotalSeconds) with { Statements = sent };
    }

    /// <summary>A probe of one statement; its text must mention pg_stat or the statement counts will include it.</summary>
    public async Task<object?> ScalarAsync(string sql)
    {
        Interlocked.Add(ref _probeCommits, CommitsPerProbe);
        await using var command = _probes.CreateCommand(sql);
        return await command.ExecuteScalarAsync();
    }

    public ValueTask DisposeAsync() => _probes.DisposeAsync();

    /// <summary>
    /// The database's commits so far, the probes counted before this read (all published by then when settled), and
    /// whether the read waited until the database had no other client.
    /// </summary>
    private async Task<(long Commits, long Probes, bool Settled)> CommitsAsync(bool settle)
    {
        var probes = Interlocked.Add(ref _probeCommits, CommitsPerProbe) - CommitsPerProbe;
        await using var command = _probes.CreateCommand($"SELECT commits, settled FROM {CommitsFunction}($1)");
        command.Parameters.AddWithValue(settle);
        await using var reader = await command.ExecuteReaderAsync();
        await reader.ReadAsync();
        return (reader.GetInt64(0), probes, reader.GetBoolean(1));
    }

    /// <summary>Top-level statements run in this database so far, per query text (pg_stat_statements), without the probes.</summary>
    private async Task<Dictionary<string, long>> StatementsAsync()
    {
        Interlocked.Add(ref _probeCommits, CommitsPerProbe);
        await using var command = _probes.CreateCommand(
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

    private static async Task ExecuteAsync(NpgsqlDataSource source, string sql)
    {
        await using var command = source.CreateCommand(sql);
        await command.ExecuteNonQueryAsync();
    }
}

/// <summary>
/// The process's CPU (all threads) and its kernel share, the methods the JIT compiled and its time, GC collections and
/// pauses, and the machine's steal and idle ticks, over a run.
/// </summary>
/// <param name="StolenTicks">The machine's CPU ticks stolen by its hypervisor (/proc/stat), of <paramref name="Ticks"/> in all.</param>
/// <param name="IdleTicks">The machine's idle (and I/O wait) ticks: what a loop that is not CPU-bound leaves unused.</param>
internal sealed record RuntimeCost(
    TimeSpan ProcessCpu, TimeSpan KernelCpu, long JitMethods, TimeSpan JitTime, int Collections, TimeSpan GcPause, long StolenTicks, long IdleTicks, long Ticks)
{
    /// <summary>A clock tick of /proc (USER_HZ: 100 on every Linux this runs on).</summary>
    public const double TickMilliseconds = 10;

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

/// <summary>
/// CPU time of the PostgreSQL server processes (the postmaster's children) from /proc: on a shared 2-core machine the
/// CPU a job costs is steadier than jobs/s, which moves with whatever else runs. Processes that exit during the run
/// take their time with them (the pools keep their connections until the run is over, so few do).
/// </summary>
internal sealed class DatabaseCpu(int postmaster)
{
    public static async Task<DatabaseCpu?> FindAsync(DatabaseProbe probe)
    {
        if (!OperatingSystem.IsLinux())
        {
            return null;
        }

        var backend = Convert.ToInt32(await probe.ScalarAsync("SELECT pg_backend_pid() /* pg_stat: a probe */"), CultureInfo.InvariantCulture);
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
        return TimeSpan.FromMilliseconds(ticks * RuntimeCost.TickMilliseconds);
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
