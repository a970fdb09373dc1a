using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using QwenBatch.Batches;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Edits;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Cli.Tests.Reliability;

/// <summary>What a chaos run is made of: the batch, the simulator's faults, and settings for the worker processes.</summary>
/// <param name="Name">Batch (and manifest) name.</param>
/// <param name="Jobs">One-image jobs over URL images.</param>
/// <param name="Latency">The simulator's <c>--latency</c>.</param>
/// <param name="SimulatorOptions">Further <c>qwenbatch simulate</c> options (faults, rate limit).</param>
internal sealed record ChaosSetup(string Name, int Jobs, string Latency, IReadOnlyList<string> SimulatorOptions)
{
    /// <summary>Settings over the defaults every process gets (short leases, quick polls and retries).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>PostgreSQL <c>Options</c> for the workers' connections, e.g. <c>-c statement_timeout=1000</c>.</summary>
    public string? WorkerConnectionOptions { get; init; }

    /// <summary><c>--storage</c> given to <c>submit</c>; default the workspace's <c>output</c>.</summary>
    public string? Storage { get; init; }
}

/// <summary>
/// One batch under chaos, with the real thing around it: a dedicated PostgreSQL cluster (so restarting or disturbing it
/// touches no other test class), a <c>qwenbatch simulate</c> process, the batch enqueued by <c>qwenbatch submit</c>, and
/// <c>qwenbatch worker</c> processes. It records which workers were killed and when, for <see cref="BatchAudit"/>.
/// </summary>
internal sealed class ChaosRig : IAsyncDisposable
{
    public const decimal PricePerImage = 0.02m;

    /// <summary>The workers' connections carry this application name, so a test can find (and terminate) their sessions.</summary>
    public const string WorkerApplication = "qwenbatch-chaos-worker";

    private readonly List<CliProcess> _workers = [];
    private readonly List<CliProcess> _stopped = [];
    private readonly List<KilledWorker> _killed = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();

    private readonly Dictionary<string, string> _workerEnvironment;

    private ChaosRig(ChaosSetup setup, Workspace workspace, PostgresServer postgres, string database, SimulatorProcess simulator,
        Dictionary<string, string> environment, Dictionary<string, string> workerEnvironment, PostgresJobStore store, BatchRecord batch)
    {
        _workerEnvironment = workerEnvironment;
        Setup = setup;
        Workspace = workspace;
        Postgres = postgres;
        Database = database;
        Simulator = simulator;
        Environment = environment;
        Store = store;
        Batch = batch;
    }

    public ChaosSetup Setup { get; }

    public Workspace Workspace { get; }

    public PostgresServer Postgres { get; }

    /// <summary>The test's own connection string (no worker options).</summary>
    public string Database { get; }

    public SimulatorProcess Simulator { get; }

    /// <summary>
    /// The environment of the run's qwenbatch processes (the fake key, the store, the worker settings). Workers get the same
    /// with their own connection string (application name, <see cref="ChaosSetup.WorkerConnectionOptions"/>).
    /// </summary>
    public IReadOnlyDictionary<string, string> Environment { get; }

    public PostgresJobStore Store { get; }

    public BatchRecord Batch { get; }

    public IReadOnlyList<KilledWorker> Killed => _killed;

    /// <summary>Every worker started and not killed, running or stopped (for their output).</summary>
    public IReadOnlyList<CliProcess> Workers => [.. _stopped, .. _workers];

    public TimeSpan Elapsed => _clock.Elapsed;

    public static async Task<ChaosRig> StartAsync(Workspace workspace, ChaosSetup setup)
    {
        var postgres = await PostgresServer.StartDedicatedAsync();
        SimulatorProcess? simulator = null;
        try
        {
            var database = await postgres.CreateDatabaseAsync(setup.Name);
            simulator = await SimulatorProcess.StartAsync(workspace.Root, setup.Latency, [.. setup.SimulatorOptions]);
            await File.WriteAllLinesAsync(Path.Combine(workspace.Root, setup.Name + ".csv"),
                ["id,prompt,images", .. Enumerable.Range(1, setup.Jobs).Select(i => $"job-{i:000},white background,https://images.example/{i}.png")]);

            var workerDatabase = new NpgsqlConnectionStringBuilder(database) { ApplicationName = WorkerApplication, Options = setup.WorkerConnectionOptions };
            var environment = new Dictionary<string, string>
            {
                ["Providers__Odirouter__BaseUrl"] = simulator.BaseUrl.ToString(),
                ["ODIROUTER_API_KEY"] = "odr-chaos-key-5d19",
                ["ConnectionStrings__Postgres"] = database,
                ["Worker__LeaseDuration"] = "00:00:05",
                ["Worker__HeartbeatInterval"] = "00:00:01",
                ["Worker__RescueInterval"] = "00:00:01",
                ["Worker__FirstPollDelay"] = "00:00:00.300",
                ["Worker__MaxPollInterval"] = "00:00:01",
                ["Worker__FallbackPollInterval"] = "00:00:00.500",
                ["Worker__RetryBaseDelay"] = "00:00:00.200",
                ["Worker__RetryMaxDelay"] = "00:00:02",
            };
            foreach (var (key, value) in setup.Environment)
            {
                environment[key] = value;
            }

            var workerEnvironment = new Dictionary<string, string>(environment) { ["ConnectionStrings__Postgres"] = workerDatabase.ConnectionString };
            string[] storage = setup.Storage is null ? [] : ["--storage", setup.Storage];
            var submit = await CliProcess.RunAsync(workspace.Root, environment, ["submit", setup.Name + ".csv", "--provider", "odirouter", "--json", .. storage]);
            submit.ExitCode.ShouldBe(0, submit.Output);
            JsonDocument.Parse(submit.Stdout).RootElement.GetProperty("jobs").GetInt32().ShouldBe(setup.Jobs);

            var store = new PostgresJobStore(database, TimeProvider.System, NullLogger<PostgresJobStore>.Instance);
            var batch = (await store.FindBatchAsync(setup.Name, CancellationToken.None)).ShouldNotBeNull();
            return new ChaosRig(setup, workspace, postgres, database, simulator, environment, workerEnvironment, store, batch);
        }
        catch
        {
            if (simulator is not null)
            {
                await simulator.DisposeAsync();
            }

            await postgres.DisposeAsync();
            throw;
        }
    }

    /// <summary>The part of a server id that names a worker process (server ids carry the process id).</summary>
    public static string ServerTag(CliProcess worker) => $":{worker.Id.ToString(CultureInfo.InvariantCulture)}:";

    public CliProcess StartWorker()
    {
        var worker = CliProcess.Start(Workspace.Root, _workerEnvironment, "worker");
        _workers.Add(worker);
        return worker;
    }

    /// <summary>SIGKILL (<c>Process.Kill</c>: no shutdown hooks, leases left behind); returns how many jobs it held.</summary>
    public async Task<int> KillAsync(CliProcess worker)
    {
        var tag = ServerTag(worker);
        var held = (await TryJobsAsync())?.Count(j => HeldBy(j, tag)) ?? 0;
        await worker.DisposeAsync();
        _killed.Add(new KilledWorker(tag, TimeProvider.System.GetUtcNow(), held));
        _workers.Remove(worker);
        return held;
    }

    public static bool HeldBy(EditRecord job, string serverTag) => job.LeaseOwner?.Contains(serverTag, StringComparison.Ordinal) == true;

    /// <summary>The batch's jobs, or null while PostgreSQL is down or restarting.</summary>
    public async Task<IReadOnlyList<EditRecord>?> TryJobsAsync()
    {
        try
        {
            return await Store.GetJobsAsync(Batch.Id, CancellationToken.None);
        }
        catch (NpgsqlException)
        {
            return null;
        }
    }

    /// <summary>Waits (bounded) until the jobs meet <paramref name="condition"/>; fails naming <paramref name="what"/> otherwise.</summary>
    public async Task<IReadOnlyList<EditRecord>> WaitForAsync(string what, Func<IReadOnlyList<EditRecord>, bool> condition, TimeSpan max)
    {
        var waited = Stopwatch.StartNew();
        IReadOnlyList<EditRecord>? jobs = null;
        while (waited.Elapsed < max)
        {
            jobs = await TryJobsAsync();
            if (jobs is not null && condition(jobs))
            {
                return jobs;
            }

            await Task.Delay(100);
        }

        throw new ShouldAssertException($"waited {max} for {what}: {Describe(jobs)}\n{WorkerTails()}");
    }

    public static int Count(IReadOnlyList<EditRecord> jobs, EditState state) => jobs.Count(j => j.State == state);

    /// <summary>Waits (bounded) until no job of the batch can move without an operator; returns how long that took.</summary>
    public async Task<TimeSpan> WaitSettledAsync(TimeSpan max)
    {
        var waited = Stopwatch.StartNew();
        await WaitForAsync("the batch to settle", jobs => jobs.All(j => j.State.IsSettled()), max);
        return waited.Elapsed;
    }

    /// <summary>Every live worker gets SIGTERM and must exit 0: nothing in a chaos run is a reason for a worker to die.</summary>
    public async Task StopWorkersAsync()
    {
        // A process given SIGTERM before .NET has even installed its handler dies of the signal (143): wait until each
        // worker has started its server (its handler is installed well before), on a loaded machine that takes seconds.
        foreach (var worker in _workers)
        {
            var waited = Stopwatch.StartNew();
            while (!worker.Stderr.Contains(" started with ", StringComparison.Ordinal) && waited.Elapsed < TimeSpan.FromSeconds(60))
            {
                await Task.Delay(100);
            }
        }

        foreach (var worker in _workers)
        {
            worker.Terminate();
        }

        foreach (var worker in _workers)
        {
            var result = await worker.WaitAsync();
            result.ExitCode.ShouldBe(0, Tail(result.Output));
        }

        _stopped.AddRange(_workers);
        _workers.Clear();
    }

    /// <summary>pg_terminate_backend on every session of the workers (their pools and their LISTEN connection).</summary>
    public async Task<int> TerminateWorkerSessionsAsync()
    {
        await using var connection = new NpgsqlConnection(Postgres.AdminConnectionString);
        await connection.OpenAsync();
        await using var command = new NpgsqlCommand(
            "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid)) FROM pg_stat_activity WHERE application_name = @name", connection);
        command.Parameters.AddWithValue("name", WorkerApplication);
        return Convert.ToInt32(await command.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    public string WorkerTails() => string.Join("\n", Workers.Select(w => $"--- worker {w.Id} ---\n{Tail(w.Stderr)}"));

    public static string Tail(string text) => text.Length <= 4000 ? text : text[^4000..];

    public async ValueTask DisposeAsync()
    {
        foreach (var worker in Workers)
        {
            await worker.DisposeAsync();
        }

        await Store.DisposeAsync();
        await Simulator.DisposeAsync();
        await Postgres.DisposeAsync();
    }

    private static string Describe(IReadOnlyList<EditRecord>? jobs) =>
        jobs is null ? "the store did not answer" : string.Join(", ", jobs.GroupBy(j => $"{j.State}/{j.LeaseOwner}").Select(g => $"{g.Key}={g.Count()}"));
}

/// <summary>A worker the test killed: the tag in its server id, when, and how many jobs it held then.</summary>
internal sealed record KilledWorker(string ServerTag, DateTimeOffset At, int HeldJobs);
