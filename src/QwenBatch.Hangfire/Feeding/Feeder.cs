using Hangfire.Server;
using Microsoft.Extensions.Logging;
using QwenBatch.Edits;
using QwenBatch.Feeding;
using QwenBatch.FlowControl;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Hangfire.Jobs;
using QwenBatch.Providers;
using QwenBatch.Server;
using QwenBatch.Storage;

namespace QwenBatch.Hangfire.Feeding;

/// <summary>
/// Hands edits from QwenBatch's backlog to Hangfire as the fleet's limits allow, so that no worker ever waits on a limiter
/// and a 100k-row manifest never becomes 100k idle Hangfire jobs. Each round takes due pending edits up to the room left
/// in a small window ahead of the fleet's workers (<c>Worker:QueuedPerWorker</c> per worker, counting every queued edit),
/// and no more of a rate-limited provider than its shared allowance has slots for soon; the feed policy reserves each
/// edit's cost against the budgets and holds what does not fit, in the same transaction. Each queued edit's request slot
/// is booked, and its job is enqueued when the slot comes, in this process, which wakes this process's workers at once.
/// </summary>
public sealed partial class Feeder(
    EditStateChanger changer,
    IReportReads counts,
    IFlowControlStore flow,
    IFeedPolicy policy,
    ProviderRegistry providers,
    EditJobClient jobs,
    BookedSlots booked,
    DueProbe probe,
    EngineSignals signals,
    FleetSize fleet,
    EngineScope scope,
    WorkerOptions options,
    TimeProvider time,
    ILogger<Feeder> logger) : IBackgroundProcessAsync
{
    /// <summary>How far ahead a rate-limited provider's slots are booked in one round.</summary>
    public static readonly TimeSpan Horizon = TimeSpan.FromSeconds(1);

    /// <summary>With the window full, how soon the feeder looks again for room freed by other processes' workers.</summary>
    private static readonly TimeSpan FullWindowLook = TimeSpan.FromMilliseconds(250);

    private const string QueuedReason = "queued: within the batch's budget and the fleet's limits";

    private readonly List<Task> _booked = [];
    private bool _woken = true;

    /// <summary>
    /// One round. Hangfire runs a background process on a scheduler of its own with one thread; the round runs on the
    /// thread pool instead, so that no wait inside it (Hangfire's synchronous filters among them) can wait on that one
    /// thread for a continuation queued behind itself.
    /// </summary>
    public Task ExecuteAsync(BackgroundProcessContext context) => Task.Run(() => RoundAsync(context), CancellationToken.None);

    private async Task RoundAsync(BackgroundProcessContext context)
    {
        var stopping = context.StoppingToken;
        var wake = signals.FeederWake;
        TimeSpan wait;
        try
        {
            wait = await FeedAsync(context.ServerId, fresh: _woken, stopping);
        }
        catch (OperationCanceledException) when (stopping.IsCancellationRequested)
        {
            await Task.WhenAll(_booked);
            return;
        }
        catch (Exception ex)
        {
            // The store is away (a restart, a failover): the backlog waits where it is, and the feeder looks again.
            LogFeedFailed(ex);
            wait = options.FallbackPollInterval;
        }

        _booked.RemoveAll(t => t.IsCompleted);
        if (wait > TimeSpan.Zero)
        {
            using var sleep = CancellationTokenSource.CreateLinkedTokenSource(stopping);
            _woken = await Task.WhenAny(Task.Delay(wait, time, sleep.Token), wake) == wake;
            await sleep.CancelAsync();
        }
        else
        {
            _woken = true;
        }

        if (stopping.IsCancellationRequested)
        {
            // Jobs whose slot had not come yet are enqueued now: nothing queued is left without its job.
            await Task.WhenAll(_booked);
        }
    }

    /// <summary>
    /// One round; returns how long to wait before the next (zero when more is due at once). An idle process costs the store
    /// one small statement per look: the round goes further only when a pending edit is due.
    /// </summary>
    private async Task<TimeSpan> FeedAsync(string serverId, bool fresh, CancellationToken ct)
    {
        var pending = (await probe.GetAsync(fresh ? TimeSpan.Zero : options.FallbackPollInterval / 2, ct)).Pending;
        if (pending is null || pending > time.GetUtcNow())
        {
            return UntilDue(pending);
        }

        var queuedNow = (await counts.GetStateCountsAsync(ct)).Where(c => c.State == EditState.Queued).Sum(c => c.Count);
        var room = (int)Math.Max(0, Math.Ceiling(fleet.Workers * options.QueuedPerWorker) - queuedNow);
        if (room == 0)
        {
            return FullWindowLook;
        }

        var limits = await AllowanceAsync(room, ct);
        var queued = await changer.FeedAsync(new FeedRequest(serverId, room, scope.BatchId, limits), policy, ct);
        if (queued.Count > 0)
        {
            LogFed(queued.Count, room);
            await EnqueueAsync(queued, ct);
        }

        if (queued.Count == room || limits.Values.Any(l => l == 0))
        {
            return queued.Count == room ? TimeSpan.Zero : Horizon;
        }

        // Nothing more is due now: sleep until the next pending edit is due, or the next look for other processes' work.
        return UntilDue((await probe.GetAsync(TimeSpan.Zero, ct)).Pending);
    }

    private TimeSpan UntilDue(DateTimeOffset? next)
    {
        var untilDue = next is { } due ? due - time.GetUtcNow() : options.FallbackPollInterval;
        return untilDue < TimeSpan.Zero ? TimeSpan.Zero : untilDue < options.FallbackPollInterval ? untilDue : options.FallbackPollInterval;
    }

    /// <summary>How many edits each rate-limited provider has request slots for within the horizon.</summary>
    private async Task<Dictionary<string, int>> AllowanceAsync(int room, CancellationToken ct)
    {
        var limits = new Dictionary<string, int>(StringComparer.OrdinalIgnoreCase);
        var now = time.GetUtcNow();
        foreach (var name in providers.Names)
        {
            var account = providers.Get(name).Options;
            if (account.RequestInterval is not { } interval)
            {
                continue;
            }

            var state = await flow.GetRateLimitAsync(name, ct);
            var spacing = interval / (state?.Factor ?? 1);
            var next = state is null ? now : Max(Max(state.NextSlot, now), state.PausedUntil ?? now);
            var first = Max(next - (interval * (account.Burst - 1)), now);
            var slots = first > now + Horizon ? 0 : (int)((now + Horizon - first) / spacing) + 1;
            limits[name] = Math.Min(room, slots);
        }

        return limits;
    }

    /// <summary>
    /// Enqueues the queued edits' jobs: at once where the provider has no rate limit, else each when the slot booked for
    /// its submit comes (the submit itself books nothing then).
    /// </summary>
    private async Task EnqueueAsync(IReadOnlyList<EditRecord> queued, CancellationToken ct)
    {
        var now = new List<EditRecord>();
        foreach (var group in queued.GroupBy(e => e.Provider, StringComparer.OrdinalIgnoreCase))
        {
            var account = providers.Get(group.Key);
            if (account.Options.RequestInterval is not { } interval)
            {
                now.AddRange(group);
                continue;
            }

            var edits = group.ToList();
            var slots = await flow.ReserveRequestsAsync(new RequestReservation(account.Name, interval, account.Options.Burst, Horizon), edits.Count, ct);
            var bookedAt = time.GetUtcNow();
            for (var i = 0; i < edits.Count; i++)
            {
                var wait = slots.Wait(i);
                booked.Book(edits[i].Id, bookedAt + wait);
                if (wait <= TimeSpan.FromMilliseconds(20))
                {
                    now.Add(edits[i]);
                }
                else
                {
                    _booked.Add(EnqueueLaterAsync(edits[i], wait, ct));
                }
            }
        }

        if (now.Count > 0)
        {
            await jobs.EnqueueAsync(now, QueuedReason, CancellationToken.None);
        }
    }

    private async Task EnqueueLaterAsync(EditRecord edit, TimeSpan wait, CancellationToken ct)
    {
        try
        {
            await Task.Delay(wait, time, ct);
        }
        catch (OperationCanceledException)
        {
            // Stopping: enqueued now rather than left queued without its job.
        }

        try
        {
            await jobs.EnqueueAsync([edit], QueuedReason, CancellationToken.None);
        }
        catch (Exception ex)
        {
            // Left queued; the housekeeper's sweep enqueues it once it has stood still a while.
            LogEnqueueFailed(ex, edit.Id);
        }
    }

    private static DateTimeOffset Max(DateTimeOffset a, DateTimeOffset b) => a > b ? a : b;

    [LoggerMessage(Level = LogLevel.Debug, Message = "Fed {Count} edit(s) to Hangfire (room for {Room})")]
    private partial void LogFed(int count, int room);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Feeding edits to Hangfire failed; looking again shortly")]
    private partial void LogFeedFailed(Exception ex);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Edit {EditId}: enqueuing its job failed; the sweep enqueues it later")]
    private partial void LogEnqueueFailed(Exception ex, long editId);
}
