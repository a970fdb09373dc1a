using Microsoft.Extensions.Logging;
using QwenBatch.FlowControl;
using QwenBatch.Edits;
using QwenBatch.Providers;
using QwenBatch.Steps;
using QwenBatch.Storage;

namespace QwenBatch.Server;

/// <summary>What a server works on: every batch (a worker), or one batch until it settles (the <c>run</c> command).</summary>
public sealed record ServerScope(long? BatchId = null, bool StopWhenSettled = false)
{
    public static ServerScope Everything { get; } = new();
}

/// <summary>
/// A worker process's engine: claims due jobs in small batches (some ahead of its free slots, so a slot does not wait for a
/// claim's round trip), runs their steps concurrently under a lease, renews the leases with a heartbeat, rescues expired
/// leases of crashed workers, and sleeps until a notification, the next due job or the slow fallback poll. Stopping lets
/// in-flight steps record their results, then gives back every lease.
/// </summary>
public sealed partial class JobServer(IJobStore store, JobStepRunner runner, ProviderRegistry providers, WorkerOptions options, TimeProvider time, ILogger<JobServer> logger,
    IEnumerable<IServerLoop>? maintenance = null, DueTimes? due = null, LatencyMemory? latencies = null, StepSlots? slots = null)
{
    private readonly DueTimes _due = due ?? new DueTimes();
    private readonly StepSlots _slots = slots ?? new StepSlots();

    /// <summary>When every slot is busy, the dispatcher claims again once this share (1/n) of the slots is free.</summary>
    internal const int ClaimShare = 4;

    public string Id { get; } = $"{Environment.MachineName}:{Environment.ProcessId}:{Guid.NewGuid().ToString("N")[..8]}";

    public async Task RunAsync(ServerScope scope, CancellationToken stopping)
    {
        var startedAt = time.GetUtcNow();
        try
        {
            await store.RegisterServerAsync(new ServerInfo(Id, Environment.MachineName, Environment.ProcessId, options.Concurrency, startedAt, startedAt), stopping);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Stopped before it started (found by the chaos tests: a worker given SIGTERM here exited 1): nothing was taken.
            return;
        }

        LogStarted(Id, options.Concurrency);

        // Start warm: what the fleet learned about task latencies decides the first polls.
        if (latencies is not null)
        {
            try
            {
                await latencies.SyncAsync(stopping);
            }
            catch (OperationCanceledException) when (stopping.IsCancellationRequested)
            {
                // Told to stop while loading: the loop below stops at once and gives everything back.
            }
        }

        var signal = new WorkSignal();
        using var background = new CancellationTokenSource();
        using var steps = new CancellationTokenSource();
        Task[] loops =
        [
            ListenAsync(signal, background.Token),
            HeartbeatLoopAsync(background.Token),
            RescueLoopAsync(signal, background.Token),
            latencies?.RunAsync(background.Token) ?? Task.CompletedTask,

            // Schedules and retention belong to workers serving every batch, not to a 'run' of one batch.
            .. scope.BatchId is null ? (maintenance ?? []).Select(loop => loop.RunAsync(Id, background.Token)) : [],
        ];
        var work = new Dispatch();
        try
        {
            await DispatchAsync(scope, signal, work, steps.Token, stopping);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            // Asked to stop while looking for work: nothing was started, so there is nothing to record.
        }
        finally
        {
            await StopAsync(work, steps, background, loops);
        }
    }

    private async Task DispatchAsync(ServerScope scope, WorkSignal signal, Dispatch work, CancellationToken stepToken, CancellationToken stopping)
    {
        var stopped = Task.Delay(Timeout.Infinite, stopping);
        var storeFailures = 0;
        while (!stopping.IsCancellationRequested)
        {
            try
            {
                if (await DispatchOnceAsync(scope, signal, work, stopped, stepToken, stopping))
                {
                    return;
                }

                storeFailures = 0;
            }
            catch (Exception ex) when (!stopping.IsCancellationRequested)
            {
                // The store is away (a database restart, a failover, a dropped connection): this process keeps its steps
                // running and looks again (backing off up to the fallback poll interval), rather than exiting and leaving its
                // leases to expire. Steps retry on their own.
                storeFailures++;
                var backoff = Backoff.Delay(storeFailures, options.RetryBaseDelay, options.FallbackPollInterval, Random.Shared.NextDouble());
                LogDispatchFailed(ex, backoff);
                using var sleep = CancellationTokenSource.CreateLinkedTokenSource(stopping);
                await Task.WhenAny(Task.Delay(backoff, time, sleep.Token), stopped);
                await sleep.CancelAsync();
                Fill(work, stepToken);
            }
        }
    }

    /// <summary>One look for work and one wait; true when a settled batch ends the run.</summary>
    private async Task<bool> DispatchOnceAsync(
        ServerScope scope, WorkSignal signal, Dispatch work, Task stopped, CancellationToken stepToken, CancellationToken stopping)
    {
        // Take the pulse before looking, so work announced while we look still wakes us.
        var wake = signal.Next;
        Fill(work, stepToken);
        var caps = providers.MaxInFlight;
        var ahead = Ahead(caps);
        var want = Math.Max(1, options.Concurrency / ClaimShare);
        var free = _slots.Free(options.Concurrency, work.InFlight.Count);
        var room = Room(work, ahead);
        var asked = room >= want || (free > 0 && room > 0) ? room : 0;
        var claimed = asked > 0 ? await ClaimAsync(scope, work, asked, caps, stepToken, stopping) : 0;
        if (asked == 0 || claimed == asked)
        {
            // Every slot is busy (or was before this look) and more may be due: wait until a share of the slots (less the
            // jobs claimed ahead) is free, so the next claim takes several jobs in one statement instead of one per
            // finished step. Jobs claimed ahead start meanwhile, as slots free up.
            while (!stopping.IsCancellationRequested)
            {
                var freed = _slots.Freed;
                Fill(work, stepToken);
                if (Room(work, ahead) >= want)
                {
                    break;
                }

                await Task.WhenAny(freed, stopped);
            }

            return false;
        }

        if (claimed == 0 && work.IsEmpty && scope is { StopWhenSettled: true, BatchId: { } batchId }
            && (await store.GetProgressAsync(batchId, stopping)).IsSettled)
        {
            LogSettled(batchId);
            return true;
        }

        // Everything due when we claimed was taken (by us or another worker). Our own steps tell us when the jobs they
        // give back come due; only when none is running does the store get asked, which also finds other processes' work.
        var looked = work.IsEmpty;
        DateTimeOffset? stored = looked ? await store.NextDueAtAsync(scope.BatchId, stopping) : null;
        while (true)
        {
            // Take the pulse before reading what our steps told us, so a step ending in between still wakes us.
            var freed = _slots.Freed;
            Fill(work, stepToken);
            if (!looked && work.IsEmpty)
            {
                // Our last step ended since we looked: the full look, with the store's next due time.
                return false;
            }

            var next = _due.Earliest;
            if (stored is { } s && (next is null || s < next))
            {
                next = s;
            }

            var wait = options.FallbackPollInterval;
            if (next is { } due)
            {
                var untilDue = due - time.GetUtcNow();
                wait = untilDue < TimeSpan.Zero ? TimeSpan.Zero : untilDue < wait ? untilDue : wait;
            }

            using var sleep = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            var timer = Task.Delay(wait, time, sleep.Token);
            var slot = work.InFlight.Count > 0 ? freed : Task.Delay(Timeout.Infinite, sleep.Token);
            var woken = await Task.WhenAny(slot, wake, timer, stopped);
            await sleep.CancelAsync();
            Fill(work, stepToken);

            // A finished step alone is no reason to claim: nothing else was due at the claim. Look again when a job it gave
            // back is due already, or when nothing is left running (the full look, with the store's next due time). With a
            // provider's MaxInFlight, a finished task may have freed a place for a due job the cap held back: look then too.
            if (woken != slot || work.IsEmpty || caps.Count > 0 || _due.Earliest is { } mine && mine <= time.GetUtcNow())
            {
                return false;
            }
        }
    }

    /// <summary>
    /// How many jobs a claim takes beyond the free slots, to start as slots free up while the next claim is on its way (its
    /// round trip is the dispatcher's serial part: without them, a slot that frees during a claim waits for it). Half the
    /// slots: the next claim goes out when half of those are started, so a claim's round trip is covered. None under a
    /// provider's MaxInFlight, whose count includes leased pending jobs: a job claimed ahead would hold a place of the cap.
    /// </summary>
    private int Ahead(IReadOnlyDictionary<string, int> caps) => caps.Count > 0 ? 0 : options.Concurrency / 2;

    /// <summary>How many jobs the next claim may take: the free slots and the places ahead, less the jobs already in line.</summary>
    private int Room(Dispatch work, int ahead) => _slots.Free(options.Concurrency, work.InFlight.Count) + ahead - work.Ready.Count;

    /// <summary>
    /// Claims up to <paramref name="limit"/> due jobs, starting jobs claimed ahead in slots that free up while the claim is
    /// on its way; its jobs start in the free slots and the rest wait in line. Returns how many it took.
    /// </summary>
    private async Task<int> ClaimAsync(
        ServerScope scope, Dispatch work, int limit, IReadOnlyDictionary<string, int> caps, CancellationToken stepToken, CancellationToken stopping)
    {
        _due.ClaimingAt(time.GetUtcNow());
        var claim = store.ClaimAsync(new ClaimRequest(Id, limit, options.LeaseDuration, scope.BatchId, caps), stopping);
        while (!claim.IsCompleted && work.Ready.Count > 0)
        {
            var freed = _slots.Freed;
            Fill(work, stepToken);
            await Task.WhenAny(claim, freed);
        }

        var claimed = await claim;
        foreach (var job in claimed)
        {
            work.Ready.Enqueue(job);
        }

        Fill(work, stepToken);
        return claimed.Count;
    }

    /// <summary>Starts jobs claimed ahead in the free slots, in the order they were claimed (due order).</summary>
    private void Fill(Dispatch work, CancellationToken stepToken)
    {
        work.InFlight.RemoveWhere(t => t.IsCompleted);
        var free = _slots.Free(options.Concurrency, work.InFlight.Count);
        while (free-- > 0 && work.Ready.TryDequeue(out var job))
        {
            work.InFlight.Add(RunStepAsync(job, stepToken));
        }
    }

    /// <summary>One claimed job's steps; its end frees a slot (the runner never throws for a failed step).</summary>
    private async Task RunStepAsync(EditRecord job, CancellationToken ct)
    {
        try
        {
            await runner.RunAsync(job, Id, ct);
        }
        finally
        {
            _slots.Ended();
        }
    }

    private async Task StopAsync(Dispatch work, CancellationTokenSource steps, CancellationTokenSource background, Task[] loops)
    {
        // Jobs claimed ahead and not started are given back with every other lease below (a claim is always over by now:
        // the dispatcher waits for its own, which the stop cancels).
        var inFlight = work.InFlight;
        inFlight.RemoveWhere(t => t.IsCompleted);
        if (inFlight.Count > 0)
        {
            // Stopping is not losing: steps already under way get the grace period to record what they did.
            LogDraining(inFlight.Count, options.ShutdownGracePeriod);
            using var grace = new CancellationTokenSource();
            await Task.WhenAny(Task.WhenAll(inFlight), Task.Delay(options.ShutdownGracePeriod, time, grace.Token));
            await grace.CancelAsync();
            await steps.CancelAsync();
            await Task.WhenAll(inFlight);
        }

        if (latencies is not null)
        {
            await latencies.SyncAsync(CancellationToken.None);
        }

        try
        {
            var released = await store.ReleaseLeasesAsync(Id, CancellationToken.None);
            await store.RemoveServerAsync(Id, CancellationToken.None);
            LogStopped(Id, released);
        }
        catch (Exception ex)
        {
            // The leases expire on their own and the rescuer returns the jobs; nothing is lost.
            LogStopFailed(ex, Id);
        }
        finally
        {
            await background.CancelAsync();
            await Task.WhenAll(loops);
        }
    }

    private async Task ListenAsync(WorkSignal signal, CancellationToken ct)
    {
        try
        {
            await store.ListenAsync(signal, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
    }

    private async Task HeartbeatLoopAsync(CancellationToken ct)
    {
        while (await DelayAsync(options.HeartbeatInterval, ct))
        {
            try
            {
                await store.HeartbeatAsync(Id, options.LeaseDuration, ct);
                if (options.HeartbeatFile is { Length: > 0 } file)
                {
                    // For container healthchecks: a fresh file means the loop runs and the store answered.
                    await File.WriteAllTextAsync(file, time.GetUtcNow().ToString("O", System.Globalization.CultureInfo.InvariantCulture), ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogHeartbeatFailed(ex);
            }
        }
    }

    private async Task RescueLoopAsync(WorkSignal signal, CancellationToken ct)
    {
        do
        {
            try
            {
                var rescued = await store.RescueExpiredLeasesAsync(1000, ct);
                if (rescued > 0)
                {
                    LogRescued(rescued);
                    signal.Pulse();
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogRescueFailed(ex);
            }
        }
        while (await DelayAsync(options.RescueInterval, ct));
    }

    private async Task<bool> DelayAsync(TimeSpan delay, CancellationToken ct)
    {
        try
        {
            await Task.Delay(delay, time, ct);
            return true;
        }
        catch (OperationCanceledException)
        {
            return false;
        }
    }

    /// <summary>What the dispatcher holds between looks: the steps running and the jobs claimed ahead of a slot.</summary>
    private sealed class Dispatch
    {
        public HashSet<Task> InFlight { get; } = [];

        public Queue<EditRecord> Ready { get; } = new();

        /// <summary>Nothing of ours is running or waiting for a slot.</summary>
        public bool IsEmpty => InFlight.Count == 0 && Ready.Count == 0;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Server {ServerId} started with {Concurrency} step slots")]
    private partial void LogStarted(string serverId, int concurrency);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Looking for work failed; trying again in {Backoff}")]
    private partial void LogDispatchFailed(Exception ex, TimeSpan backoff);

    [LoggerMessage(Level = LogLevel.Information, Message = "Batch {BatchId} has settled")]
    private partial void LogSettled(long batchId);

    [LoggerMessage(Level = LogLevel.Information, Message = "Stopping: waiting up to {Grace} for {Count} step(s) in flight")]
    private partial void LogDraining(int count, TimeSpan grace);

    [LoggerMessage(Level = LogLevel.Information, Message = "Server {ServerId} stopped and released {Released} lease(s)")]
    private partial void LogStopped(string serverId, int released);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Server {ServerId} could not release its leases; they will expire and be rescued")]
    private partial void LogStopFailed(Exception ex, string serverId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Heartbeat failed; leases are renewed at the next one")]
    private partial void LogHeartbeatFailed(Exception ex);

    [LoggerMessage(Level = LogLevel.Information, Message = "Rescued {Count} job(s) whose lease expired")]
    private partial void LogRescued(int count);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Rescuing expired leases failed; trying again at the next interval")]
    private partial void LogRescueFailed(Exception ex);
}
