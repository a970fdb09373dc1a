using Microsoft.Extensions.Logging;
using QwenBatch.Secrets;
using QwenBatch.Server;
using QwenBatch.Storage;

namespace QwenBatch.Edits;

/// <summary>
/// The one owner of job state. Every move is checked against the documented transition table and written as a guarded
/// update ("from one of these states, while I hold the lease, to that state") with a history entry. Error texts and
/// reasons pass through the <see cref="SecretRedactor"/> on the way in: they come from providers and exceptions (a
/// provider's 401 may echo the key it was sent), and reports, errors.csv and the dashboard read them from the store.
/// </summary>
/// <param name="released">Told the due time of every job given back in a claimable state (the dispatcher's wake-ups).</param>
/// <param name="writers">Group commits written at once (see <see cref="GroupCommit"/>).</param>
/// <param name="slots">Told when a step waits only for the write that gives its job back, so its slot can be used meanwhile.</param>
public sealed partial class EditStateChanger(
    IJobStore store,
    ILogger<EditStateChanger> logger,
    SecretRedactor? redactor = null,
    Action<DateTimeOffset>? released = null,
    int writers = 1,
    StepSlots? slots = null)
{
    private readonly SecretRedactor _redactor = redactor ?? SecretRedactor.None;

    private static readonly Dictionary<EditState, EditState[]> Allowed = new()
    {
        [EditState.Pending] = [EditState.Submitting, EditState.Failed, EditState.Cancelled, EditState.Held],
        [EditState.Submitting] = [EditState.AtProvider, EditState.Pending, EditState.Failed, EditState.Cancelled],
        [EditState.AtProvider] = [EditState.AtProvider, EditState.Downloading, EditState.Pending, EditState.Failed, EditState.Cancelled],
        [EditState.Downloading] = [EditState.Downloading, EditState.Succeeded, EditState.AtProvider, EditState.Failed, EditState.Cancelled],
        [EditState.Held] = [EditState.Pending, EditState.Cancelled],
        [EditState.Failed] = [EditState.Pending],
        [EditState.Cancelled] = [EditState.Pending],
        [EditState.Succeeded] = [],
    };

    private readonly GroupCommit _commits = new(store, Math.Max(1, writers));

    public static bool IsAllowed(EditState from, EditState to) => Allowed[from].Contains(to);

    /// <summary>
    /// Moves <paramref name="current"/> to <paramref name="next"/>'s state and values. Returns the stored job, or null when the
    /// guard missed (the job was moved by someone else, our lease was taken by the rescuer, or a raised reservation does not
    /// fit the batch budget).
    /// </summary>
    /// <param name="unwritten">
    /// How <paramref name="current"/> got to its state without a write of its own (see <see cref="UnwrittenMove"/>): the write
    /// is guarded by the state stored before it, and history records both moves.
    /// </param>
    public async Task<EditRecord?> MoveAsync(EditRecord current, EditRecord next, string owner, string? reason, bool keepLease = false, UnwrittenMove? unwritten = null)
    {
        if (!IsAllowed(current.State, next.State))
        {
            throw new InvalidOperationException($"Job {current.Id}: {current.State} → {next.State} is not an allowed transition.");
        }

        // A job that stops (terminal or held) gives back what it had reserved against the budget.
        if (next.State.IsSettled() && next.ReservedUsd != 0)
        {
            next = next with { ReservedUsd = 0 };
        }

        if (next.Error is { } error)
        {
            next = next with { Error = _redactor.Redact(error) };
        }

        // Concurrent steps' writes share a transaction; each still waits for its own (never cancelled: a finished step's
        // result is already paid for).
        var transition = new EditTransition(next, [unwritten?.From ?? current.State], owner, keepLease, reason is null ? null : _redactor.Redact(reason));
        if (unwritten is not null)
        {
            transition = transition with { Via = current.State, ViaReason = unwritten.Reason is null ? null : _redactor.Redact(unwritten.Reason) };
        }

        var write = _commits.TransitionAsync(transition);
        bool moved;
        if (keepLease || slots is null)
        {
            moved = await write;
        }
        else
        {
            // Giving the job back is the last thing a step does: while it waits for the write, its slot may take the next
            // job. The job stays leased to us until the write is durable, so nobody else can take it meanwhile.
            slots.FinishingStarted();
            try
            {
                moved = await write;
            }
            finally
            {
                slots.FinishingEnded();
            }
        }

        if (!moved)
        {
            LogGuardMissed(current.Id, current.State, next.State, owner);
            return null;
        }

        if (keepLease)
        {
            return next;
        }

        if (EditStates.Claimable.Contains(next.State))
        {
            released?.Invoke(next.DueAt);
        }

        return next with { LeaseOwner = null, LeaseExpiresAt = null };
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} was moved by someone else, or its reservation does not fit the batch budget; {From} → {To} by {Owner} not applied")]
    private partial void LogGuardMissed(long jobId, EditState from, EditState to, string owner);
}

/// <summary>
/// A move a step decided but did not write, because the job's next step runs at once under the same lease (a poll that
/// sees the task completed, then its download): the job's next write carries it, guarded by <see cref="From"/>, the state
/// still stored. A worker that dies in between loses only the decision: the job comes back in <see cref="From"/> and its
/// step is run again (a completed task is polled again and its outputs downloaded again, to the same names).
/// </summary>
/// <param name="From">The job's stored state.</param>
/// <param name="Reason">The history reason of the move that was not written.</param>
public sealed record UnwrittenMove(EditState From, string? Reason);
