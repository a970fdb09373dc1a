using System.Diagnostics;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.Logging.Abstractions;
using Npgsql;
using QwenBatch.Batches;
using QwenBatch.Cli.Tests.Support;
using QwenBatch.Jobs;
using QwenBatch.Storage.PostgreSql;
using QwenBatch.Testing.Postgres;
using Xunit.Abstractions;

namespace QwenBatch.Cli.Tests.Reliability;

/// <summary>
/// The issue's headline scenario, short enough for CI: two worker processes on a real PostgreSQL against a faulty
/// provider; one worker is killed with SIGKILL and PostgreSQL is restarted mid-batch; a replacement worker finishes.
/// Nothing may be lost, paid for twice beyond the crash windows hit, or worked on by two servers at once.
/// </summary>
public sealed class ChaosTests(ITestOutputHelper output) : IDisposable
{
    private const int Jobs = 120;
    private const decimal PricePerImage = 0.02m;
    private static readonly byte[] PngSignature = [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];
    private readonly Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task TwoWorkers_OneKilledAndPostgresRestartedMidBatch_EveryJobSucceedsOnceWithWholeOutputs()
    {
        var clock = Stopwatch.StartNew();
        await using var postgres = await PostgresServer.StartDedicatedAsync();
        var database = await postgres.CreateDatabaseAsync("chaos");
        await using var simulator = await SimulatorProcess.StartAsync(_workspace.Root, "0.5-1.5",
            "--error-rate", "0.05", "--truncate-rate", "0.05", "--max-concurrent", "200");
        var manifest = Path.Combine(_workspace.Root, "chaos.csv");
        await File.WriteAllLinesAsync(manifest,
            ["id,prompt,images", .. Enumerable.Range(1, Jobs).Select(i => $"job-{i:000},white background,https://images.example/{i}.png")]);
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

        var submit = await CliProcess.RunAsync(_workspace.Root, environment, "submit", "chaos.csv", "--provider", "odirouter", "--json");
        submit.ExitCode.ShouldBe(0, submit.Output);
        JsonDocument.Parse(submit.Stdout).RootElement.GetProperty("jobs").GetInt32().ShouldBe(Jobs);

        await using var store = new PostgresJobStore(database, TimeProvider.System, NullLogger<PostgresJobStore>.Instance);
        var batch = (await store.FindBatchAsync("chaos", CancellationToken.None)).ShouldNotBeNull();

        var victim = CliProcess.Start(_workspace.Root, environment, "worker");
        await using var survivor = CliProcess.Start(_workspace.Root, environment, "worker");

        // Mid-batch: some jobs done, most not, and the victim holding leases.
        var victimId = $":{victim.Id.ToString(CultureInfo.InvariantCulture)}:";
        var heldByVictim = 0;
        for (var i = 0; i < 600; i++)
        {
            var jobs = await TryAsync(() => store.GetJobsAsync(batch.Id, CancellationToken.None));
            heldByVictim = jobs?.Count(j => j.LeaseOwner?.Contains(victimId, StringComparison.Ordinal) == true) ?? 0;
            if (jobs is not null && jobs.Count(j => j.State == JobState.Succeeded) >= Jobs / 6 && heldByVictim > 0)
            {
                break;
            }

            await Task.Delay(100);
        }

        heldByVictim.ShouldBeGreaterThan(0, "the victim never held a job mid-batch");
        await victim.DisposeAsync(); // Process.Kill: SIGKILL, no shutdown hooks, leases left behind.
        var killedAt = TimeProvider.System.GetUtcNow();
        var sinceKill = Stopwatch.StartNew();

        await postgres.RestartAsync();
        var restartedAfter = sinceKill.Elapsed;
        await using var replacement = CliProcess.Start(_workspace.Root, environment, "worker");

        var settled = false;
        for (var i = 0; i < 900 && !settled; i++)
        {
            settled = (await TryAsync(() => store.GetProgressAsync(batch.Id, CancellationToken.None)))?.IsSettled == true;
            if (!settled)
            {
                await Task.Delay(100);
            }
        }

        var recovered = sinceKill.Elapsed;
        if (!settled)
        {
            var states = (await store.GetJobsAsync(batch.Id, CancellationToken.None)).GroupBy(j => $"{j.State}/{j.LeaseOwner}").Select(g => $"{g.Key}={g.Count()}");
            settled.ShouldBeTrue($"the batch did not settle: {string.Join(", ", states)}\nsurvivor:\n{Tail(survivor.Stderr)}\nreplacement:\n{Tail(replacement.Stderr)}");
        }
        survivor.Terminate();
        replacement.Terminate();
        // The survivor lived through the restart: losing the database for a moment is not a reason for a worker to exit.
        var survived = await survivor.WaitAsync();
        survived.ExitCode.ShouldBe(0, Tail(survived.Output));
        var replaced = await replacement.WaitAsync();
        replaced.ExitCode.ShouldBe(0, Tail(replaced.Output));

        // Every job terminal and succeeded (no --fail-rate: nothing the provider does here is a reason to give up).
        var final = await store.GetJobsAsync(batch.Id, CancellationToken.None);
        final.Count.ShouldBe(Jobs);
        final.Where(j => j.State != JobState.Succeeded).Select(j => $"{j.Key}: {j.State} {j.Error}").ShouldBeEmpty();

        // Every output on disk, a whole PNG, with the SHA-256 and length the store recorded.
        foreach (var job in final)
        {
            job.Files.ShouldNotBeEmpty(job.Key);
            foreach (var file in job.Files)
            {
                var bytes = await File.ReadAllBytesAsync(Path.Combine(batch.StorageDir, file.Path));
                bytes.AsSpan(0, PngSignature.Length).SequenceEqual(PngSignature).ShouldBeTrue(file.Path);
                bytes.LongLength.ShouldBe(file.Bytes, file.Path);
                Convert.ToHexStringLower(SHA256.HashData(bytes)).ShouldBe(file.Sha256.ToLowerInvariant(), file.Path);
            }
        }

        Directory.GetFiles(batch.StorageDir, "*.part", SearchOption.AllDirectories).ShouldBeEmpty();

        // Paid submits: one per job, plus at most one per crash window actually hit (a submit the dead worker may have sent).
        var stats = await simulator.StatsAsync();
        var submits = stats.GetProperty("submits").GetInt64();
        var accepted = final.Sum(j => j.AcceptedSubmits);
        var uncertain = final.Sum(j => j.UncertainSubmits);
        submits.ShouldBeLessThanOrEqualTo(Jobs + uncertain);
        uncertain.ShouldBeLessThanOrEqualTo(1, "the headline scenario allows at most one extra paid submit");

        // The report charges what the provider charged; a task orphaned in a crash window is the only difference.
        var report = await CliProcess.RunAsync(_workspace.Root, environment, "report", batch.Name, "--database", database);
        report.ExitCode.ShouldBe(0, report.Output);
        var rows = ReportFiles.ReadCsv(Path.Combine(batch.StorageDir, "report.csv"));
        rows.Count.ShouldBe(Jobs);
        var charged = stats.GetProperty("charged_usd").GetDecimal();
        var orphaned = (submits - accepted) * PricePerImage;
        rows.Sum(r => ReportFiles.Money(r["cost_usd"])).ShouldBe(charged - orphaned);

        // No job ever had two steps running at once, read from each job's history.
        var rescued = 0;
        foreach (var job in final)
        {
            var history = await store.GetHistoryAsync(job.Id, CancellationToken.None);
            HistoryViolations(history, victimId, killedAt).ShouldBeEmpty(job.Key);
            rescued += history.Count(h => h.Reason?.StartsWith("lease expired", StringComparison.Ordinal) == true);
        }

        rescued.ShouldBeGreaterThanOrEqualTo(1, "the victim's leases were never rescued");
        var faults = stats.TryGetProperty("faults", out var f) && f.ValueKind == JsonValueKind.Object
            ? string.Join(", ", f.EnumerateObject().Select(p => $"{p.Name}={p.Value}"))
            : "none";
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"jobs={Jobs} succeeded={final.Count(j => j.State == JobState.Succeeded)} lost=0 held_by_victim_at_kill={heldByVictim} rescued={rescued} "
            + $"submits={submits} accepted={accepted} uncertain={uncertain} extra_paid={submits - Jobs} charged_usd={charged} faults=[{faults}] "
            + $"postgres_restart={restartedAfter.TotalSeconds:0.0}s kill_to_settled={recovered.TotalSeconds:0.0}s total={clock.Elapsed.TotalSeconds:0.0}s"));
    }

    /// <summary>
    /// What the history forbids. Each entry must leave the state the previous one entered (a second, concurrent step would
    /// move the job from a state it had already left). A job is in 'submitting' only under the lease of the server that
    /// put it there: only that server, or the rescuer returning its lease, may move it on. And a killed server writes
    /// nothing after its death except the rescuer's entries returning its leases.
    /// </summary>
    private static List<string> HistoryViolations(IReadOnlyList<JobHistoryEntry> history, string victimId, DateTimeOffset killedAt)
    {
        var violations = new List<string>();
        for (var i = 0; i < history.Count; i++)
        {
            var entry = history[i];
            var returned = entry.Reason?.StartsWith("lease expired", StringComparison.Ordinal) == true
                || entry.Reason?.StartsWith("released on shutdown", StringComparison.Ordinal) == true;
            if (i > 0 && entry.From != history[i - 1].To)
            {
                violations.Add($"#{i}: {entry.From}→{entry.To} by {entry.ServerId}, but the job was {history[i - 1].To}");
            }

            if (i > 0 && entry.From == JobState.Submitting && !returned && entry.ServerId != history[i - 1].ServerId)
            {
                violations.Add($"#{i}: {entry.ServerId} moved out of submitting while {history[i - 1].ServerId} held it");
            }

            if (entry.ServerId?.Contains(victimId, StringComparison.Ordinal) == true && entry.At > killedAt && !returned)
            {
                violations.Add($"#{i}: the killed server wrote {entry.From}→{entry.To} after it died");
            }
        }

        return violations;
    }

    /// <summary>Reads the store, treating the moments PostgreSQL is down or restarting as "not yet".</summary>
    private static async Task<T?> TryAsync<T>(Func<Task<T>> read)
        where T : class
    {
        try
        {
            return await read();
        }
        catch (NpgsqlException)
        {
            return null;
        }
    }

    private static async Task<BatchProgress?> TryAsync(Func<Task<BatchProgress>> read)
    {
        try
        {
            return await read();
        }
        catch (NpgsqlException)
        {
            return null;
        }
    }

    private static string Tail(string text) => text.Length <= 4000 ? text : text[^4000..];
}
