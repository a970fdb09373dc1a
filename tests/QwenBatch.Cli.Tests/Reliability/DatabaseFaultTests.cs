using System.Diagnostics;
using System.Globalization;
using Npgsql;
using QwenBatch.Edits;
using Xunit.Abstractions;

namespace QwenBatch.Cli.Tests.Reliability;

/// <summary>The database misbehaves under running workers: their sessions are terminated, their statements time out.</summary>
public sealed class DatabaseFaultTests(ITestOutputHelper output) : IDisposable
{
    private readonly Support.Workspace _workspace = new();

    public void Dispose() => _workspace.Dispose();

    [Fact]
    public async Task TwoWorkers_SessionsTerminatedAndStatementsTimedOutMidBatch_EveryJobSucceedsOnce()
    {
        const int jobs = 60;
        var lockHeld = TimeSpan.FromSeconds(3);
        await using var rig = await ChaosRig.StartAsync(_workspace, new ChaosSetup("dbfaults", jobs, "0.3-0.8", ["--max-concurrent", "200"])
        {
            // Every statement of the workers gives up after a second, as a managed database's statement_timeout would.
            WorkerConnectionOptions = "-c statement_timeout=1000",
        });
        rig.StartWorker();
        rig.StartWorker();
        await rig.WaitForAsync("a sixth done", j => ChaosRig.Count(j, EditState.Succeeded) >= jobs / 6, TimeSpan.FromSeconds(90));

        // Dropped connections: every session of both workers (pools and LISTEN) terminated, five times a second apart.
        var sinceFirstFault = Stopwatch.StartNew();
        var terminated = 0;
        for (var i = 0; i < 5; i++)
        {
            terminated += await rig.TerminateWorkerSessionsAsync();
            await Task.Delay(1000);
        }

        terminated.ShouldBeGreaterThan(0, "no worker session was found to terminate");

        // Statement timeouts: a lock on the hot counter table, held three times as long as the workers' timeout, twice.
        for (var i = 0; i < 2; i++)
        {
            await using var connection = new NpgsqlConnection(rig.Database);
            await connection.OpenAsync();
            await using var transaction = await connection.BeginTransactionAsync();
            await using (var lockTable = new NpgsqlCommand("LOCK TABLE batch_state_counts IN EXCLUSIVE MODE", connection, transaction))
            {
                await lockTable.ExecuteNonQueryAsync();
            }

            await Task.Delay(lockHeld);
            await transaction.CommitAsync();
            await Task.Delay(500);
        }

        var settledAfter = await rig.WaitSettledAsync(TimeSpan.FromSeconds(90));
        var recovered = sinceFirstFault.Elapsed;
        var timeouts = rig.Workers.Sum(w => CountOf(w.Stderr, "canceling statement due to statement timeout"));
        await rig.StopWorkersAsync();
        var figures = await BatchAudit.CheckAsync(rig, new AuditRules());
        timeouts.ShouldBeGreaterThan(0, "no statement of the workers timed out: the lock did not hit them");

        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{figures.Line} sessions_terminated={terminated} statement_timeouts_logged={timeouts} first_fault_to_settled={recovered.TotalSeconds:0.0}s "
            + $"last_fault_to_settled={settledAfter.TotalSeconds:0.0}s total={rig.Elapsed.TotalSeconds:0.0}s"));
    }

    private static int CountOf(string text, string what)
    {
        var count = 0;
        for (var at = text.IndexOf(what, StringComparison.Ordinal); at >= 0; at = text.IndexOf(what, at + what.Length, StringComparison.Ordinal))
        {
            count++;
        }

        return count;
    }
}
