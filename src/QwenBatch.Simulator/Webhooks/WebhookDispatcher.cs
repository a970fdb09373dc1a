using System.Collections.Concurrent;
using Microsoft.Extensions.Logging;
using QwenBatch.Simulator.Faults;
using QwenBatch.Simulator.Stats;
using QwenBatch.Simulator.Tasks;

namespace QwenBatch.Simulator.Webhooks;

/// <summary>
/// Sends each webhook a submit asked for when the task model says the task ends (its done time, plus the injected
/// delay), whether or not anyone polls, and retries a failed attempt on <see cref="WebhookSchedule"/>. Every wait is a
/// timer of the injected clock, so nothing is parked per pending delivery and a fake clock moves deliveries in step: its
/// Advance runs the due callbacks in line, so the decisions and counts of an attempt are made before Advance returns.
/// A cancelled task sends nothing: WaveSpeed documents webhooks for completed and failed tasks only, and a cancel is
/// the caller's own act. Disposing cancels pending timers and attempts under way.
/// </summary>
internal sealed class WebhookDispatcher(
    SimulatorOptions options,
    TaskBoard board,
    WebhookSender sender,
    CallCounters counters,
    FaultDice dice,
    TimeProvider time,
    ILogger<WebhookDispatcher> logger) : IAsyncDisposable
{
    private readonly Lock _gate = new();
    private readonly HashSet<PendingTimer> _timers = [];
    private readonly ConcurrentDictionary<Task, byte> _sending = new();
    private readonly CancellationTokenSource _stopping = new();
    private bool _stopped;

    public void Schedule(WebhookOrder order)
    {
        var delay = dice.Between(options.WebhookDelayMin, options.WebhookDelayMax);
        At(DateTimeOffset.FromUnixTimeMilliseconds(order.Ticket.DoneMs) + delay, () => Fire(order));
    }

    public async ValueTask DisposeAsync()
    {
        PendingTimer[] timers;
        lock (_gate)
        {
            if (_stopped)
                return;
            _stopped = true;
            timers = [.. _timers];
            _timers.Clear();
        }

        await _stopping.CancelAsync();
        foreach (var timer in timers)
            timer.Timer?.Dispose();
        // Attempts under way end at once on the cancelled token; none throws (see SendAsync).
        await Task.WhenAll(_sending.Keys);
        sender.Dispose();
    }

    private void Fire(WebhookOrder order)
    {
        var state = board.Observe(order.Ticket).State;
        if (state == SimTaskState.Canceled)
        {
            logger.WebhookCanceled(order.RequestId);
            return;
        }

        if (!state.IsTerminal())
        {
            // The system clock's timers may fire a hair before the wall clock reaches the done time.
            At(DateTimeOffset.FromUnixTimeMilliseconds(order.Ticket.DoneMs), () => Fire(order));
            return;
        }

        if (dice.Roll(options.WebhookDropRate))
        {
            counters.CountWebhookDropped();
            logger.WebhookDropped(order.RequestId);
            return;
        }

        var webhook = new WebhookEvent(Guid.NewGuid().ToString("N"), order.RequestId, order.Target, order.BodyAtEnd(), dice.Roll(options.WebhookBadSignatureRate));
        if (webhook.BadSignature)
            counters.CountFault("webhook_bad_signature");
        Attempt(webhook, 1);
        if (dice.Roll(options.WebhookDuplicateRate))
        {
            counters.CountFault("webhook_duplicated");
            Attempt(webhook, 1);
        }
    }

    private void Attempt(WebhookEvent webhook, int attempt)
    {
        if (_stopping.IsCancellationRequested)
            return;
        var sending = SendAsync(webhook, attempt);
        _sending.TryAdd(sending, 0);
        _ = sending.ContinueWith(done => _sending.TryRemove(done, out _), CancellationToken.None, TaskContinuationOptions.ExecuteSynchronously, TaskScheduler.Default);
    }

    private async Task SendAsync(WebhookEvent webhook, int attempt)
    {
        // Counted before the first await, so a fake clock's Advance that started the attempt has counted it.
        counters.CountWebhookAttempt();
        WebhookAttempt outcome;
        try
        {
            outcome = await sender.SendAsync(webhook, _stopping.Token);
        }
        catch (Exception ex) when ((ex is OperationCanceledException or ObjectDisposedException) && _stopping.IsCancellationRequested)
        {
            // Stopped mid-attempt: neither delivered nor failed.
            return;
        }

        var target = WebhookTarget.ForLog(webhook.Target);
        if (outcome.Delivered)
        {
            counters.CountWebhookDelivered();
            logger.WebhookDelivered(webhook.Id, webhook.RequestId, target, attempt, outcome.Detail);
            return;
        }

        if (attempt < WebhookSchedule.MaxAttempts)
        {
            var backoff = WebhookSchedule.BackoffAfter(attempt);
            logger.WebhookRetrying(webhook.Id, webhook.RequestId, attempt, target, outcome.Detail, backoff);
            At(time.GetUtcNow() + backoff, () => Attempt(webhook, attempt + 1));
        }
        else
        {
            logger.WebhookGaveUp(webhook.Id, webhook.RequestId, target, attempt, outcome.Detail);
        }

        // Counted after the retry is scheduled: whoever sees the count may move a fake clock past the backoff at once.
        counters.CountWebhookFailed();
    }

    /// <summary>Runs <paramref name="action"/> on a timer of the injected clock at <paramref name="due"/>, unless stopped first.</summary>
    private void At(DateTimeOffset due, Action action)
    {
        var pending = new PendingTimer(action);
        lock (_gate)
        {
            if (_stopped)
                return;
            _timers.Add(pending);
        }

        // Registered before the timer exists: a fake clock runs a timer already due inside CreateTimer.
        var dueIn = due - time.GetUtcNow();
        pending.Timer = time.CreateTimer(_ => Run(pending), null, dueIn > TimeSpan.Zero ? dueIn : TimeSpan.Zero, Timeout.InfiniteTimeSpan);
    }

    private void Run(PendingTimer pending)
    {
        lock (_gate)
        {
            if (_stopped || !_timers.Remove(pending))
                return;
        }

        pending.Action();
    }

    private sealed class PendingTimer(Action action)
    {
        public Action Action { get; } = action;
        public ITimer? Timer { get; set; }
    }
}
