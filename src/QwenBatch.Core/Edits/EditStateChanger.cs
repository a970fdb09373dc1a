using Microsoft.Extensions.Logging;
using QwenBatch.Feeding;
using QwenBatch.Secrets;
using QwenBatch.Storage;

namespace QwenBatch.Edits;

/// <summary>
/// The one owner of edit state. Every move is checked against the documented transition table and written as a guarded
/// update ("from one of these states, to that state") with a history entry; bulk moves (feeding, cancelling, requeueing,
/// forgetting a lost Hangfire storage's jobs) go through here too, to store statements guarded the same way. Error texts
/// and reasons pass through the <see cref="SecretRedactor"/> on the way in: they come from providers and exceptions (a
/// provider's 401 may echo the key it was sent), and reports, errors.csv and the pages read them from the store.
/// </summary>
/// <param name="moved">Told of every move this process wrote (the feeder's and the <c>run</c> command's wake-ups).</param>
public sealed partial class EditStateChanger(IEditStore store, ILogger<EditStateChanger> logger, SecretRedactor? redactor = null, IEditMoves? moved = null)
{
    private readonly SecretRedactor _redactor = redactor ?? SecretRedactor.None;
    private readonly IEditMoves _moved = moved ?? IEditMoves.None;

    private static readonly Dictionary<EditState, EditState[]> Allowed = new()
    {
        [EditState.Pending] = [EditState.Queued, EditState.Held, EditState.Cancelled, EditState.Failed],
        // Back to pending: a throttle or an outage before anything was sent, or the process that fed it lost its Hangfire
        // storage. Failed: an input that cannot be sent, or retries spent.
        [EditState.Queued] = [EditState.Submitting, EditState.Pending, EditState.Failed, EditState.Cancelled],
        // Back to queued: a failed attempt that Hangfire retries. Back to pending: nothing was sent after all (a throttle).
        [EditState.Submitting] = [EditState.AtProvider, EditState.Queued, EditState.Pending, EditState.Failed, EditState.Cancelled],
        // Back to pending: the provider failed the task, which is submitted again.
        [EditState.AtProvider] = [EditState.AtProvider, EditState.Downloading, EditState.Pending, EditState.Failed, EditState.Cancelled],
        [EditState.Downloading] = [EditState.Downloading, EditState.Succeeded, EditState.Failed, EditState.Cancelled],
        [EditState.Held] = [EditState.Pending, EditState.Cancelled],
        [EditState.Failed] = [EditState.Pending],
        [EditState.Cancelled] = [EditState.Pending],
        [EditState.Succeeded] = [],
    };

    public static bool IsAllowed(EditState from, EditState to) => Allowed[from].Contains(to);

    /// <summary>
    /// Moves <paramref name="current"/> to <paramref name="next"/>'s state and values. Returns the stored edit, or null when
    /// the guard missed (someone else moved it first).
    /// </summary>
    public async Task<EditRecord?> MoveAsync(EditRecord current, EditRecord next, string by, string? reason) =>
        (await MoveManyAsync([new EditMove(current, next, reason)], by))[0];

    /// <summary>
    /// Several edits' moves in one store transaction (the poller's round): each applies or misses on its own guard.
    /// Results are in the order given.
    /// </summary>
    public async Task<IReadOnlyList<EditRecord?>> MoveManyAsync(IReadOnlyList<EditMove> moves, string by)
    {
        var transitions = new List<EditTransition>(moves.Count);
        foreach (var (current, proposed, reason) in moves)
        {
            if (!IsAllowed(current.State, proposed.State))
            {
                throw new InvalidOperationException($"Edit {current.Id}: {current.State} → {proposed.State} is not an allowed transition.");
            }

            var next = proposed;

            // An edit that stops (terminal or held) gives back what it had reserved against the budgets.
            if (next.State.IsSettled() && next.ReservedUsd != 0)
            {
                next = next with { ReservedUsd = 0 };
            }

            if (next.Error is { } error)
            {
                next = next with { Error = _redactor.Redact(error) };
            }

            transitions.Add(new EditTransition(next, [current.State], by, reason is null ? null : _redactor.Redact(reason)));
        }

        // A finished step's result is already paid for: recording it is not given up to a stopping token.
        var applied = await store.TransitionManyAsync(transitions, CancellationToken.None);
        var results = new EditRecord?[moves.Count];
        for (var i = 0; i < moves.Count; i++)
        {
            if (!applied[i])
            {
                LogGuardMissed(moves[i].Current.Id, moves[i].Current.State, transitions[i].Edit.State, by);
                continue;
            }

            results[i] = transitions[i].Edit;
            _moved.Moved(moves[i].Current.State, transitions[i].Edit);
        }

        return results;
    }

    /// <summary>
    /// One feeder round: due pending edits become queued (their cost reserved) or held, as <paramref name="policy"/>
    /// decides inside the store's transaction. Returns the queued edits.
    /// </summary>
    public async Task<IReadOnlyList<EditRecord>> FeedAsync(FeedRequest request, IFeedPolicy policy, CancellationToken ct)
    {
        var queued = await store.FeedAsync(request, policy, ct);
        foreach (var edit in queued)
        {
            _moved.Moved(EditState.Pending, edit);
        }

        return queued;
    }

    /// <summary>Cancels a batch: waiting edits at once, the ones being submitted or at the provider flagged for the poller.</summary>
    public async Task<int> CancelBatchAsync(long batchId, CancellationToken ct)
    {
        var count = await store.RequestCancelAsync(batchId, ct);
        _moved.Settled(batchId);
        return count;
    }

    /// <summary>Cancels the given edits as a batch cancel would (a Hangfire job deleted in the dashboard).</summary>
    public Task<int> CancelAsync(IReadOnlyList<long> editIds, CancellationToken ct) => store.CancelEditsAsync(editIds, ct);

    /// <summary>Returns the batch's current edits in <paramref name="states"/> (failed, cancelled, held) to pending.</summary>
    public Task<int> RequeueBatchAsync(long batchId, IReadOnlyList<EditState> states, CancellationToken ct)
    {
        foreach (var state in states)
        {
            AssertAllowed(state, EditState.Pending);
        }

        return store.RequeueAsync(batchId, states, ct);
    }

    /// <summary>Returns the given failed, cancelled or held edits to pending (a failed job requeued in the dashboard).</summary>
    public Task<int> RequeueAsync(IReadOnlyList<long> editIds, CancellationToken ct) => store.RequeueEditsAsync(editIds, ct);

    /// <summary>Held edits of a provider whose daily budget has room today go back to pending.</summary>
    public Task<int> ReleaseHeldAsync(DailyBudgetRelease release, CancellationToken ct) => store.ReleaseHeldWithinDailyBudgetAsync(release, ct);

    /// <summary>
    /// After the previous process's Hangfire storage is gone (it lived in memory): every unsettled edit forgets its job;
    /// queued ones, and ones caught submitting (counted as uncertain), go back to pending.
    /// </summary>
    public Task<int> ForgetJobsAsync(long? batchId, string by, CancellationToken ct)
    {
        AssertAllowed(EditState.Queued, EditState.Pending);
        AssertAllowed(EditState.Submitting, EditState.Pending);
        return store.ForgetJobsAsync(batchId, by, ct);
    }

    private static void AssertAllowed(EditState from, EditState to)
    {
        if (!IsAllowed(from, to))
        {
            throw new InvalidOperationException($"{from} → {to} is not an allowed transition.");
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Edit {EditId} was moved by someone else first; {From} → {To} by {By} not applied")]
    private partial void LogGuardMissed(long editId, EditState from, EditState to, string by);
}

/// <summary>One edit's move: where it stands, where it goes, and the history's reason.</summary>
public sealed record EditMove(EditRecord Current, EditRecord Next, string? Reason);

/// <summary>What a process wants to hear about the moves it wrote: wake-ups, never a second source of truth.</summary>
public interface IEditMoves
{
    public static IEditMoves None { get; } = new Nothing();

    /// <summary>An edit moved from <paramref name="from"/> to <paramref name="edit"/>'s state.</summary>
    void Moved(EditState from, EditRecord edit);

    /// <summary>A batch may have settled (a cancel).</summary>
    void Settled(long batchId);

    /// <summary>Each move told to every one of <paramref name="observers"/>, in order.</summary>
    public static IEditMoves All(params IEditMoves[] observers) => new Every(observers);

    private sealed class Every(IEditMoves[] observers) : IEditMoves
    {
        public void Moved(EditState from, EditRecord edit)
        {
            foreach (var observer in observers)
            {
                observer.Moved(from, edit);
            }
        }

        public void Settled(long batchId)
        {
            foreach (var observer in observers)
            {
                observer.Settled(batchId);
            }
        }
    }

    private sealed class Nothing : IEditMoves
    {
        public void Moved(EditState from, EditRecord edit)
        {
        }

        public void Settled(long batchId)
        {
        }
    }
}
