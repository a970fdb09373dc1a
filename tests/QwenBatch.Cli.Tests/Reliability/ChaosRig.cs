using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using Hangfire.PostgreSql;
using Hangfire.PostgreSql.Factories;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using QwenBatch.Batches;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;

namespace QwenBatch.Cli.Tests.Reliability;

/// <summary>What a chaos run is made of: the batch, the simulator's faults, and settings for the worker processes.</summary>
/// <param name="Name">Batch (and manifest) name.</param>
/// <param name="Jobs">One-image edits over URL images.</param>
/// <param name="Latency">The simulator's <c>--latency</c>.</param>
/// <param name="SimulatorOptions">Further <c>qwenbatch simulate</c> options (faults, rate limit).</param>
internal sealed record ChaosSetup(string Name, int Jobs, string Latency, IReadOnlyList<string> SimulatorOptions)
{
    /// <summary>Settings over the defaults every process gets (quick polls and retries; see <see cref="AsShipped"/>).</summary>
    public IReadOnlyDictionary<string, string> Environment { get; init; } = new Dictionary<string, string>();

    /// <summary>PostgreSQL <c>Options</c> for the workers' connections, e.g. <c>-c statement_timeout=1000</c>.</summary>
    public string? WorkerConnectionOptions { get; init; }

    /// <summary><c>--storage</c> given to <c>submit</c>; default the workspace's <c>output</c>.</summary>
    public string? Storage { get; init; }

    /// <summary>
    /// Hangfire and worker settings as appsettings.json ships them (a user's fleet), instead of the rig's quick ones (a
    /// 15 s invisibility timeout, 1 s heartbeats and queue polls): how long recovery takes is then what a user would see.
    /// </summary>
    public bool AsShipped { get; init; }

    /// <summary>
    /// Submits go through a <see cref="SubmitRecorder"/>, each worker with an API key of its own, so the test sees what
    /// the provider accepted per edit and how many POSTs each process had on their way at once.
    /// </summary>
    public bool RecordSubmits { get; init; }
}

/// <summary>
/// One batch under chaos, with the real thing around it: a dedicated PostgreSQL cluster (so stopping or disturbing it
/// touches no other test class), a <c>qwenbatch simulate</c> process, the batch enqueued by <c>qwenbatch submit</c>, and
/// <c>qwenbatch worker</c> processes, each a Hangfire server. It records which workers were killed, when, and which
/// Hangfire jobs they were running then, for <see cref="BatchAudit"/>.
/// </summary>
internal sealed class ChaosRig : IAsyncDisposable
{
    public const decimal PricePerImage = 0.02m;

    /// <summary>The workers' connections carry this application name, so a test can find (and terminate) their sessions.</summary>
    public const string WorkerApplication = "qwenbatch-chaos-worker";

    /// <summary>How recently an edit must have been moved by a server for the server to count as working on it.</summary>
    private static readonly TimeSpan Recently = TimeSpan.FromSeconds(2);

    private const string ApiKey = "odr-chaos-key-5d19";

    private readonly List<CliProcess> _workers = [];
    private readonly List<CliProcess> _stopped = [];
    private readonly List<KilledWorker> _killed = [];
    private readonly Dictionary<int, string> _keys = [];
    private readonly Stopwatch _clock = Stopwatch.StartNew();
    private readonly Dictionary<string, string> _workerEnvironment;
    private PostgreSqlStorage? _hangfire;

    private ChaosRig(ChaosSetup setup, Workspace workspace, PostgresServer postgres, string database, SimulatorProcess simulator, SubmitRecorder? recorder,
        Dictionary<string, string> environment, Dictionary<string, string> workerEnvironment, PostgresStore store, BatchRecord batch)
    {
        _workerEnvironment = workerEnvironment;
        Setup = setup;
        Workspace = workspace;
        Postgres = postgres;
        Database = database;
        Simulator = simulator;
        Recorder = recorder;
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

    /// <summary>The submits the provider saw, when <see cref="ChaosSetup.RecordSubmits"/>.</summary>
    public SubmitRecorder? Recorder { get; }

    /// <summary>
    /// The environment of the run's qwenbatch processes (the fake key, the store, the worker settings). Workers get the same
    /// with their own connection string (application name, <see cref="ChaosSetup.WorkerConnectionOptions"/>).
    /// </summary>
    public IReadOnlyDictionary<string, string> Environment { get; }

    public PostgresStore Store { get; }

    public BatchRecord Batch { get; }

    public IReadOnlyList<KilledWorker> Killed => _killed;

    /// <summary>Every worker started and not killed, running or stopped (for their output).</summary>
    public IReadOnlyList<CliProcess> Workers => [.. _stopped, .. _workers];

    public TimeSpan Elapsed => _clock.Elapsed;

    /// <summary>Hangfire's workers per process, as the workers run with.</summary>
    public int WorkerCount => int.Parse(_workerEnvironment.GetValueOrDefault("Hangfire__WorkerCount", "8"), CultureInfo.InvariantCulture);

    public static async Task<ChaosRig> StartAsync(Workspace workspace, ChaosSetup setup)
    {
        var postgres = await PostgresServer.StartDedicatedAsync();
        SimulatorProcess? simulator = null;
        SubmitRecorder? recorder = null;
        try
        {
            var database = await postgres.CreateDatabaseAsync(setup.Name);
            simulator = await SimulatorProcess.StartAsync(workspace.Root, setup.Latency, [.. setup.SimulatorOptions]);
            recorder = setup.RecordSubmits ? SubmitRecorder.Start(simulator.BaseUrl) : null;
            await File.WriteAllLinesAsync(Path.Combine(workspace.Root, setup.Name + ".csv"),
                ["id,prompt,images", .. Enumerable.Range(1, setup.Jobs).Select(i => $"job-{i:000},white background,https://images.example/{i}.png")]);

            var workerDatabase = new NpgsqlConnectionStringBuilder(database) { ApplicationName = WorkerApplication, Options = setup.WorkerConnectionOptions };
            var environment = new Dictionary<string, string>
            {
                ["Providers__Odirouter__BaseUrl"] = recorder?.BaseUrl ?? simulator.BaseUrl.ToString(),
                ["ODIROUTER_API_KEY"] = ApiKey,
                ["ConnectionStrings__Postgres"] = database,
            };
            if (!setup.AsShipped)
            {
                // A killed worker's jobs come back after the invisibility timeout (15 s is the least Hangfire:InvisibilityTimeout
                // takes), and are fetched at the next queue poll; a silent submitter is taken for gone after 3 heartbeats.
                environment["Hangfire__InvisibilityTimeout"] = "00:00:15";
                environment["Hangfire__QueuePollInterval"] = "00:00:01";
                environment["Hangfire__HeartbeatInterval"] = "00:00:01";
                environment["Hangfire__ServerTimeout"] = "00:00:10";
                environment["Hangfire__SchedulePollingInterval"] = "00:00:01";
                environment["Hangfire__DistributedLockTimeout"] = "00:00:10";
                environment["Worker__FirstPollDelay"] = "00:00:00.300";
                environment["Worker__MaxPollInterval"] = "00:00:01";
                environment["Worker__FallbackPollInterval"] = "00:00:00.500";
                environment["Worker__RetryBaseDelay"] = "00:00:00.200";
                environment["Worker__RetryMaxDelay"] = "00:00:02";
            }

            foreach (var (key, value) in setup.Environment)
            {
                environment[key] = value;
            }

            var workerEnvironment = new Dictionary<string, string>(environment) { ["ConnectionStrings__Postgres"] = workerDatabase.ConnectionString };
            string[] storage = setup.Storage is null ? [] : ["--storage", setup.Storage];
            var submit = await CliProcess.RunAsync(workspace.Root, environment, ["submit", setup.Name + ".csv", "--provider", "odirouter", "--json", .. storage]);
            submit.ExitCode.ShouldBe(0, submit.Output);
            JsonDocument.Parse(submit.Stdout).RootElement.GetProperty("jobs").GetInt32().ShouldBe(setup.Jobs);

            var store = new PostgresStore(database, TimeProvider.System, NullLogger<PostgresStore>.Instance);
            var batch = (await store.FindBatchAsync(setup.Name, CancellationToken.None)).ShouldNotBeNull();
            return new ChaosRig(setup, workspace, postgres, database, simulator, recorder, environment, workerEnvironment, store, batch);
        }
        catch
        {
            if (recorder is not null)
            {
                await recorder.DisposeAsync();
            }

            if (simulator is not null)
            {
                await simulator.DisposeAsync();
            }

            await postgres.DisposeAsync();
            throw;
        }
    }

    /// <summary>The part of a Hangfire server id that names a worker process (<c>host:pid:guid</c>).</summary>
    public static string ServerTag(CliProcess worker) => $":{worker.Id.ToString(CultureInfo.InvariantCulture)}:";

    /// <summary>The API key a worker sends (its own when submits are recorded).</summary>
    public string KeyOf(CliProcess worker) => _keys[worker.Id];

    public CliProcess StartWorker()
    {
        var environment = _workerEnvironment;
        var key = ApiKey;
        if (Setup.RecordSubmits)
        {
            key = $"{ApiKey}-w{_workers.Count + _stopped.Count + _killed.Count + 1}";
            environment = new Dictionary<string, string>(_workerEnvironment) { ["ODIROUTER_API_KEY"] = key };
        }

        var worker = CliProcess.Start(Workspace.Root, environment, "worker");
        _keys[worker.Id] = key;
        _workers.Add(worker);
        return worker;
    }

    /// <summary>
    /// SIGKILL (<c>Process.Kill</c>: no shutdown hooks; its Hangfire jobs stay Processing until their invisibility timeout
    /// passes); returns what it was working on.
    /// </summary>
    public async Task<KilledWorker> KillAsync(CliProcess worker)
    {
        var tag = ServerTag(worker);
        var held = await TryHeldByAsync(tag);
        await worker.DisposeAsync();
        var killed = new KilledWorker(tag, _keys[worker.Id], TimeProvider.System.GetUtcNow(), held?.Jobs ?? [], held?.Edits ?? []);
        _killed.Add(killed);
        _workers.Remove(worker);
        return killed;
    }

    /// <summary>
    /// What the server of <paramref name="serverTag"/> works on, read through Hangfire and the edits' history: the Hangfire
    /// jobs it has Processing, and the unsettled edits it moved last within the last two seconds (a submit or download on its
    /// way, a poll answer just written). Null while PostgreSQL (or Hangfire's schema) is not there.
    /// </summary>
    public async Task<WorkHeld?> TryHeldByAsync(string serverTag)
    {
        try
        {
            var monitoring = Hangfire().GetMonitoringApi();
            var jobs = monitoring.ProcessingJobs(0, 10_000)
                .Where(j => j.Value?.ServerId?.Contains(serverTag, StringComparison.Ordinal) == true)
                .Select(j => j.Key)
                .ToList();
            var edits = new List<long>();
            var now = TimeProvider.System.GetUtcNow();
            foreach (var edit in await Store.GetEditsAsync(Batch.Id, CancellationToken.None))
            {
                if (edit.State.IsSettled() || now - edit.UpdatedAt > Recently)
                {
                    continue;
                }

                var history = await Store.GetHistoryAsync(edit.Id, CancellationToken.None);
                if (history.Count > 0 && history[^1].ServerId?.Contains(serverTag, StringComparison.Ordinal) == true)
                {
                    edits.Add(edit.Id);
                }
            }

            return new WorkHeld(jobs, edits);
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
        {
            return null;
        }
    }

    /// <summary>Hangfire's storage of the fleet, read-only for the test (it never installs or changes the schema).</summary>
    public PostgreSqlStorage Hangfire()
    {
        if (_hangfire is null)
        {
            var options = JobStorages.Options(new HangfireOptions());
            options.PrepareSchemaIfNecessary = false;
            _hangfire = new PostgreSqlStorage(new NpgsqlConnectionFactory(Database, options), options);
        }

        return _hangfire;
    }

    /// <summary>The batch's edits, or null while PostgreSQL is down or restarting.</summary>
    public async Task<IReadOnlyList<EditRecord>?> TryEditsAsync()
    {
        try
        {
            return await Store.GetEditsAsync(Batch.Id, CancellationToken.None);
        }
        catch (NpgsqlException)
        {
            return null;
        }
    }

    /// <summary>Waits (bounded) until the edits meet <paramref name="condition"/>; fails naming <paramref name="what"/> otherwise.</summary>
    public async Task<IReadOnlyList<EditRecord>> WaitForAsync(string what, Func<IReadOnlyList<EditRecord>, bool> condition, TimeSpan max) =>
        await WaitForAsync(what, edits => Task.FromResult(condition(edits)), max);

    /// <summary>Waits (bounded) until the edits meet <paramref name="condition"/>; fails naming <paramref name="what"/> otherwise.</summary>
    public async Task<IReadOnlyList<EditRecord>> WaitForAsync(string what, Func<IReadOnlyList<EditRecord>, Task<bool>> condition, TimeSpan max)
    {
        var waited = Stopwatch.StartNew();
        IReadOnlyList<EditRecord>? edits = null;
        while (waited.Elapsed < max)
        {
            edits = await TryEditsAsync();
            if (edits is not null && await condition(edits))
            {
                return edits;
            }

            await Task.Delay(100);
        }

        throw new ShouldAssertException($"waited {max} for {what}: {Describe(edits)}\n{await UnsettledAsync(edits)}\n{WorkerTails()}");
    }

    /// <summary>Waits (bounded) for something the test sees without the store (the recorder's POSTs), looking every few milliseconds.</summary>
    public static async Task WaitUntilAsync(string what, Func<bool> condition, TimeSpan max)
    {
        var waited = Stopwatch.StartNew();
        while (!condition())
        {
            if (waited.Elapsed > max)
            {
                throw new ShouldAssertException($"waited {max} for {what}");
            }

            await Task.Delay(5);
        }
    }

    public static int Count(IReadOnlyList<EditRecord> edits, EditState state) => edits.Count(j => j.State == state);

    /// <summary>Waits (bounded) until no edit of the batch can move without an operator; returns how long that took.</summary>
    public async Task<TimeSpan> WaitSettledAsync(TimeSpan max)
    {
        var waited = Stopwatch.StartNew();
        await WaitForAsync("the batch to settle", edits => edits.All(j => j.State.IsSettled()), max);
        return waited.Elapsed;
    }

    /// <summary>Every live worker gets SIGTERM and must exit 0: nothing in a chaos run is a reason for a worker to die.</summary>
    public async Task StopWorkersAsync()
    {
        // A process given SIGTERM before .NET has even installed its handler dies of the signal (143): wait until each
        // worker's Hangfire server has announced itself (its handler is installed well before); on a loaded machine that
        // takes seconds.
        foreach (var worker in _workers)
        {
            var waited = Stopwatch.StartNew();
            while (!await AnnouncedAsync(worker) && waited.Elapsed < TimeSpan.FromSeconds(60))
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

    /// <summary>Whether the worker's Hangfire server is in Hangfire's servers list.</summary>
    public Task<bool> AnnouncedAsync(CliProcess worker)
    {
        try
        {
            var tag = ServerTag(worker);
            return Task.FromResult(Hangfire().GetMonitoringApi().Servers().Any(s => s.Name.Contains(tag, StringComparison.Ordinal)));
        }
        catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
        {
            return Task.FromResult(false);
        }
    }

    /// <summary>pg_terminate_backend on every session of the workers (QwenBatch's pool and Hangfire's connections).</summary>
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
        if (Recorder is not null)
        {
            await Recorder.DisposeAsync();
        }

        await Simulator.DisposeAsync();
        await Postgres.DisposeAsync();
    }

    /// <summary>The story of up to five unsettled edits: their history, and their Hangfire job's states.</summary>
    private async Task<string> UnsettledAsync(IReadOnlyList<EditRecord>? edits)
    {
        var lines = new List<string>();
        foreach (var edit in (edits ?? []).Where(e => !e.State.IsSettled()).Take(5))
        {
            lines.Add(string.Create(CultureInfo.InvariantCulture,
                $"edit {edit.Id} {edit.Key} {edit.State} job={edit.HangfireJob} updated={edit.UpdatedAt:HH:mm:ss.fff} due={edit.DueAt:HH:mm:ss.fff} attempt={edit.Attempt} error={edit.Error}"));
            try
            {
                foreach (var h in await Store.GetHistoryAsync(edit.Id, CancellationToken.None))
                {
                    lines.Add(string.Create(CultureInfo.InvariantCulture, $"    {h.At:HH:mm:ss.fff} {h.From}→{h.To} by {h.ServerId}: {h.Reason}"));
                }

                if (edit.HangfireJob is { } job && Hangfire().GetMonitoringApi().JobDetails(job) is { } details)
                {
                    foreach (var state in details.History.OrderBy(h => h.CreatedAt))
                    {
                        lines.Add(string.Create(CultureInfo.InvariantCulture,
                            $"    job {job} {state.CreatedAt:HH:mm:ss.fff} {state.StateName}: {state.Reason} {string.Join(' ', state.Data.Where(d => d.Key is "ServerId" or "Queue" or "EnqueueAt" or "ExceptionMessage").Select(d => $"{d.Key}={d.Value}"))}"));
                    }
                }
            }
            catch (Exception ex) when (ex is NpgsqlException or InvalidOperationException)
            {
                lines.Add($"    ({ex.GetType().Name}: {ex.Message})");
            }

            var named = string.Create(CultureInfo.InvariantCulture, $"dit {edit.Id} ");
            foreach (var worker in Workers)
            {
                lines.AddRange(worker.Stderr.Split('\n').Where(l => l.Contains(named, StringComparison.Ordinal)).Take(10).Select(l => $"    worker {worker.Id}: {l.TrimEnd()}"));
            }
        }

        return string.Join("\n", lines);
    }

    private static string Describe(IReadOnlyList<EditRecord>? edits) =>
        edits is null ? "the store did not answer" : string.Join(", ", edits.GroupBy(j => j.State).Select(g => $"{g.Key}={g.Count()}"));
}

/// <summary>What a server works on: the Hangfire jobs it has Processing, and the edits it moved last, just now.</summary>
internal sealed record WorkHeld(IReadOnlyList<string> Jobs, IReadOnlyList<long> Edits)
{
    public bool Any => Jobs.Count > 0 || Edits.Count > 0;
}

/// <summary>A worker the test killed: the tag in its server id, its API key, when, and what it was working on then.</summary>
internal sealed record KilledWorker(string ServerTag, string Key, DateTimeOffset At, IReadOnlyList<string> Jobs, IReadOnlyList<long> Edits)
{
    public int Held => Jobs.Count + Edits.Count;
}
