using QwenBatch.Edits;

namespace QwenBatch.Hangfire.Hosting;

/// <summary>
/// Wake-ups within one process: what this process's own moves tell its feeder and poller, so they act at once instead of
/// at their next look, and what the <c>run</c> command waits for. Never a source of truth: a wake-up lost only delays
/// work until the next look at the store.
/// </summary>
public sealed class EngineSignals : IEditMoves
{
    private readonly object _lock = new();
    private TaskCompletionSource _feeder = New();
    private TaskCompletionSource _poller = New();
    private TaskCompletionSource _settled = New();
    private DateTimeOffset? _nextPoll;

    /// <summary>Completes when the feeder may have room or work: an edit left the queue or the provider, a batch was imported, an edit came back to the backlog.</summary>
    public Task FeederWake => Volatile.Read(ref _feeder).Task;

    /// <summary>Completes when this process made a poll due sooner than the poller knew.</summary>
    public Task PollerWake => Volatile.Read(ref _poller).Task;

    /// <summary>Completes when an edit of this process settled (the <c>run</c> command looks at its batch then).</summary>
    public Task SettledWake => Volatile.Read(ref _settled).Task;

    /// <summary>The earliest poll this process's submits made due since the poller last took it.</summary>
    public DateTimeOffset? TakeNextPoll()
    {
        lock (_lock)
        {
            var next = _nextPoll;
            _nextPoll = null;
            return next;
        }
    }

    public void Moved(EditState from, EditRecord edit)
    {
        // Room for the feeder: a place in the queue window (an edit left queued), a place under a provider's MaxInFlight
        // (an edit left the states counted in flight: its task finished at the provider), or work back in the backlog.
        if (from == EditState.Queued || edit.State == EditState.Pending
            || (EditStates.InFlight.Contains(from) && !EditStates.InFlight.Contains(edit.State)))
        {
            Pulse(ref _feeder);
        }

        if (edit.State == EditState.AtProvider && from != EditState.AtProvider)
        {
            lock (_lock)
            {
                _nextPoll = _nextPoll is { } known && known < edit.DueAt ? known : edit.DueAt;
            }

            Pulse(ref _poller);
        }

        if (edit.State.IsSettled())
        {
            Pulse(ref _settled);
        }
    }

    public void Settled(long batchId) => Pulse(ref _settled);

    /// <summary>New work in this process's store (an import, a retry): the feeder looks now.</summary>
    public void WorkAdded() => Pulse(ref _feeder);

    private static void Pulse(ref TaskCompletionSource signal) => Interlocked.Exchange(ref signal, New()).TrySetResult();

    private static TaskCompletionSource New() => new(TaskCreationOptions.RunContinuationsAsynchronously);
}
