using Hangfire;
using Hangfire.Server;
using Hangfire.States;
using Microsoft.Extensions.Logging;
using QwenBatch.Continuations;
using QwenBatch.Edits;
using QwenBatch.FlowControl;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Hangfire.Jobs;
using QwenBatch.Providers;
using QwenBatch.Retention;
using QwenBatch.Server;
using QwenBatch.Storage;

namespace QwenBatch.Hangfire.Housekeeping;

/// <summary>
/// The slow duties of every server, each on its own interval: edits that stood still get their job going again (a
/// feeder or poller that stopped between writing an edit and moving its job), held edits whose provider's daily budget
/// has room again go back to the backlog, settled batches' continuations are handed to a Hangfire job, what the process
/// learned of provider latencies is shared, finished batches expire, and a healthcheck file is touched.
/// </summary>
public sealed partial class Housekeeper(
    IEditStore edits,
    EditStateChanger changer,
    ProviderRegistry providers,
    EditJobClient jobs,
    ContinuationRunner continuations,
    IBackgroundJobClient client,
    LatencyMemory latencies,
    RetentionSweep retention,
    EngineScope scope,
    WorkerOptions worker,
    HangfireOptions hangfire,
    ContinuationOptions continuationOptions,
    Retention.RetentionOptions retentionOptions,
    TimeProvider time,
    ILogger<Housekeeper> logger) : IBackgroundProcessAsync
{
    /// <summary>How often stood-still edits and held edits get a look.</summary>
    public static readonly TimeSpan SweepInterval = TimeSpan.FromSeconds(30);

    /// <summary>An edit whose job should be running, unwritten for this long, gets a look at its job.</summary>
    public static readonly TimeSpan StillFor = TimeSpan.FromMinutes(1);

    private static readonly string[] Running = [EnqueuedState.StateName, ProcessingState.StateName, ScheduledState.StateName];

    private readonly Dictionary<string, DateTimeOffset> _last = [];

    /// <summary>
    /// One round. Hangfire runs a background process on a scheduler of its own with one thread; the round runs on the
    /// thread pool instead, so that no wait inside it (Hangfire's synchronous filters among them) can wait on that one
    /// thread for a continuation queued behind itself.
    /// </summary>
    public Task ExecuteAsync(BackgroundProcessContext context) => Task.Run(() => RoundAsync(context), CancellationToken.None);

    private async Task RoundAsync(BackgroundProcessContext context)
    {
        var ct = context.StoppingToken;
        await DueAsync("sweep", SweepInterval, () => SweepAsync(ct));
        await DueAsync("daily budgets", DailyBudgetInterval(), () => ReleaseHeldAsync(ct));
        await DueAsync("continuations", continuationOptions.PollInterval, () => ContinueAsync(ct));
        await DueAsync("latencies", worker.LatencySyncInterval, () => latencies.Unsaved() ? latencies.SyncAsync(ct) : Task.FromResult(true));
        if (scope.ServesFleet && retentionOptions.Enabled)
        {
            await DueAsync("retention", retentionOptions.Interval, () => retention.PurgeAsync(ct));
        }

        try
        {
            await Task.Delay(TimeSpan.FromSeconds(1), time, ct);
        }
        catch (OperationCanceledException)
        {
            // Stopping: what was learned of latencies is shared before the process goes.
            await latencies.SyncAsync(CancellationToken.None);
        }
    }

    /// <summary>Runs a duty when its interval has passed; a failed duty is logged and tried at its next interval.</summary>
    private async Task DueAsync(string duty, TimeSpan interval, Func<Task> run)
    {
        var now = time.GetUtcNow();
        if (_last.TryGetValue(duty, out var last) && now - last < interval)
        {
            return;
        }

        _last[duty] = now;
        try
        {
            await run();
            if (worker.HeartbeatFile is { Length: > 0 } file)
            {
                // For container healthchecks: a fresh file means the server runs and the store answered.
                await File.WriteAllTextAsync(file, now.ToString("O", System.Globalization.CultureInfo.InvariantCulture));
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogDutyFailed(ex, duty);
        }
    }

    /// <summary>
    /// Edits whose job should be running but that have not moved for a while: when their job is not enqueued, running or
    /// waiting for a retry (it was never created, is gone, or ended in a state that does not match), it is enqueued again.
    /// Its run reads the edit and does only what is left.
    /// </summary>
    private async Task SweepAsync(CancellationToken ct)
    {
        var still = await edits.FindStillAsync(new StillQuery(EditStates.NeedsWorker, time.GetUtcNow() - StillFor, 100, scope.BatchId), ct);
        var states = still.ToDictionary(e => e.Id, e => e.HangfireJob is { } job ? jobs.StateOf(job) : null);
        var stopped = still.Where(e => states[e.Id] is not { } state || !Running.Contains(state)).ToList();
        if (stopped.Count > 0)
        {
            LogResuming(stopped.Count);
            await jobs.EnqueueAsync(stopped, "resumed: the edit had stood still while its job was not running", ct);
        }

        // Enqueued for a minute while the feeder keeps the queue short: its queue entry was lost or is held invisible (a
        // worker fetched it as the database went down). Enqueued again, it gets a fresh entry; should the old one come back
        // too, the second run finds the edit moved on and does nothing.
        var stuck = still.Where(e => states[e.Id] == EnqueuedState.StateName).ToList();
        foreach (var edit in stuck)
        {
            jobs.Move(edit.HangfireJob!, new EnqueuedState(hangfire.Queue) { Reason = "enqueued again: the edit had stood still for a minute while its job waited in the queue" },
                EnqueuedState.StateName);
        }

        if (stuck.Count > 0)
        {
            LogRequeued(stuck.Count);
        }
    }

    private async Task ReleaseHeldAsync(CancellationToken ct)
    {
        foreach (var name in providers.Names)
        {
            var account = providers.Get(name);
            if (account.Options.DailyBudgetUsd is { } cap
                && await changer.ReleaseHeldAsync(new DailyBudgetRelease(account.Name, cap, account.Options.PricePerImage), ct) is > 0 and var released)
            {
                LogReleased(released, account.Name, cap);
            }
        }
    }

    /// <summary>The sweep interval, or less when 00:00 UTC comes sooner (a second after it), when daily budgets renew.</summary>
    private TimeSpan DailyBudgetInterval()
    {
        var utc = time.GetUtcNow().ToUniversalTime();
        var untilMidnight = new DateTimeOffset(utc.Date.AddDays(1), TimeSpan.Zero) + TimeSpan.FromSeconds(1) - utc;
        return untilMidnight < SweepInterval ? untilMidnight : SweepInterval;
    }

    /// <summary>Settled batches' continuations, claimed once fleet-wide, each fired by a Hangfire job.</summary>
    private async Task ContinueAsync(CancellationToken ct)
    {
        foreach (var claimed in await continuations.ClaimSettledAsync(scope.BatchId, ct))
        {
            client.Create(ContinuationJob.JobFor(claimed.BatchId, hangfire.Queue), new EnqueuedState(hangfire.Queue) { Reason = $"batch {claimed.BatchName} settled" });
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Housekeeping duty '{Duty}' failed; trying again at its next interval")]
    private partial void LogDutyFailed(Exception ex, string duty);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} edit(s) had stood still for a minute while their job waited in the queue; their jobs are enqueued again")]
    private partial void LogRequeued(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Count} edit(s) had stood still while their job was not running; their jobs are enqueued again")]
    private partial void LogResuming(int count);

    [LoggerMessage(Level = LogLevel.Information, Message = "Released {Count} held edit(s): the {Provider} daily budget of {Cap} USD has room")]
    private partial void LogReleased(int count, string provider, decimal cap);
}
