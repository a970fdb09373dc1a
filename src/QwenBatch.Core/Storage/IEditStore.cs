using QwenBatch.Edits;
using QwenBatch.Feeding;

namespace QwenBatch.Storage;

/// <summary>
/// The edits' progress: guarded moves with their history, the feeder's and the poller's claims, and which Hangfire job
/// runs each edit. Every method that changes an edit's state is called by <see cref="EditStateChanger"/> only.
/// </summary>
public interface IEditStore
{
    Task<EditRecord?> GetEditAsync(long editId, CancellationToken ct);

    /// <summary>The batch's edits in key order (for reports); staged edits are expanded first.</summary>
    Task<IReadOnlyList<EditRecord>> GetEditsAsync(long batchId, CancellationToken ct);

    Task<IReadOnlyList<EditHistoryEntry>> GetHistoryAsync(long editId, CancellationToken ct);

    /// <summary>
    /// Guarded writes of different edits in one transaction: each applies only while its edit is in one of its
    /// <see cref="EditTransition.From"/> states, or misses and changes nothing. The batches' money, the state counters,
    /// the spend per day and the history move in the same statement. Results are in the order given; if the store fails,
    /// none is applied.
    /// </summary>
    Task<IReadOnlyList<bool>> TransitionManyAsync(IReadOnlyList<EditTransition> transitions, CancellationToken ct);

    /// <summary>
    /// One round of the feeder, in one transaction: takes up to <see cref="FeedRequest.Limit"/> due pending edits (oldest
    /// due first, skipping edits another feeder is taking; within <see cref="FeedRequest.ProviderLimits"/>), locks their
    /// batches and providers, and lets <paramref name="policy"/> decide each against the budgets, the daily budgets and the
    /// providers' caps, which it sees as last committed. Queued edits get their reservation, held ones their reason; both
    /// are written with history and counters. Returns the queued edits, their <see cref="EditRecord.HangfireJob"/> as
    /// bound (a re-fed edit keeps its job). On PostgreSQL, staged chunks are turned into rows when too few are due.
    /// </summary>
    Task<IReadOnlyList<EditRecord>> FeedAsync(FeedRequest request, IFeedPolicy policy, CancellationToken ct);

    /// <summary>
    /// Takes up to <see cref="PollClaim.Limit"/> edits at the provider that are due (or have a cancel requested), oldest
    /// due first, skipping rows another poller is taking, and moves their due time to now + <see cref="PollClaim.Lease"/>,
    /// so no other poller takes them meanwhile and a poller that dies leaves them due again. Returns the edits as they were
    /// before (their <see cref="EditRecord.DueAt"/> is when the poll was due).
    /// </summary>
    Task<IReadOnlyList<EditRecord>> ClaimPollsAsync(PollClaim claim, CancellationToken ct);

    /// <summary>
    /// Makes the parked edits of a wave due when a completion says their tasks are done: edits of
    /// <see cref="WavePull.BatchId"/> at the provider, of its provider, n and size (exact: a batch's edits share one size
    /// or none), not polled yet, not flagged for cancel, and due later than <see cref="WavePull.DueAfter"/> after their
    /// submit, become due <see cref="WavePull.Within"/> after it. Like <see cref="ClaimPollsAsync"/> it moves only due
    /// times — no state, no history, no <see cref="EditRecord.UpdatedAt"/> — so the poller calls it, not
    /// <see cref="EditStateChanger"/>. Returns the earliest due time it set, or null when no edit moved.
    /// </summary>
    Task<DateTimeOffset?> PullWaveForwardAsync(WavePull pull, CancellationToken ct);

    /// <summary>
    /// Records which Hangfire job runs each edit: applied where the edit has no job, or has the one
    /// <see cref="JobBinding.Replacing"/> names. Returns how many were bound.
    /// </summary>
    Task<int> BindJobsAsync(IReadOnlyList<JobBinding> bindings, CancellationToken ct);

    /// <summary>
    /// For a process whose Hangfire storage did not outlive the previous one (in memory): every unsettled edit (of one
    /// batch when given) forgets its Hangfire job; queued edits go back to pending with their reservation released, and
    /// edits caught submitting too, counting an uncertain submit (the provider may have accepted it). Returns how many
    /// edits changed.
    /// </summary>
    Task<int> ForgetJobsAsync(long? batchId, string by, CancellationToken ct);

    /// <summary>When the next pending edit (staged ones too) and the next edit at the provider are due, of one batch when given.</summary>
    Task<NextDue> NextDueAsync(long? batchId, CancellationToken ct);

    /// <summary>Edits in one of <see cref="StillQuery.States"/> not written since <see cref="StillQuery.Before"/>, oldest first.</summary>
    Task<IReadOnlyList<EditRecord>> FindStillAsync(StillQuery query, CancellationToken ct);

    /// <summary>
    /// Cancels a batch: edits waiting (pending, held, queued) end cancelled at once, their reservations released; edits
    /// being submitted or at the provider are flagged (and made due), so the poller sends the provider's cancel. Returns
    /// how many edits were cancelled or flagged.
    /// </summary>
    Task<int> RequestCancelAsync(long batchId, CancellationToken ct);

    /// <summary>Cancels the given edits as a batch cancel would.</summary>
    Task<int> CancelEditsAsync(IReadOnlyList<long> editIds, CancellationToken ct);

    /// <summary>
    /// Returns the batch's current edits in <paramref name="states"/> to pending, due now, with fresh attempts and no
    /// request id (an edit superseded by a changed manifest row stays as it is). Each keeps its Hangfire job, which the
    /// feeder enqueues again. Returns how many.
    /// </summary>
    Task<int> RequeueAsync(long batchId, IReadOnlyList<EditState> states, CancellationToken ct);

    /// <summary>Returns the given failed, cancelled or held edits to pending, as a batch requeue would.</summary>
    Task<int> RequeueEditsAsync(IReadOnlyList<long> editIds, CancellationToken ct);

    /// <summary>
    /// Returns held edits of <see cref="DailyBudgetRelease.Provider"/> to pending, due now, oldest first, as many as the
    /// account's daily budget has room for today (UTC) and whose batch budget has room for them. The feeder decides
    /// again, so an edit released too eagerly is only held again, never run over a budget. Returns how many.
    /// </summary>
    Task<int> ReleaseHeldWithinDailyBudgetAsync(DailyBudgetRelease release, CancellationToken ct);
}

/// <summary>One edit's Hangfire job.</summary>
/// <param name="Replacing">The job it replaces (one that no longer exists in Hangfire's storage), or null when it had none.</param>
public sealed record JobBinding(long EditId, string JobId, string? Replacing = null);

/// <summary>What the poller claims.</summary>
/// <param name="Lease">How long the claimed edits are not due to anyone else.</param>
/// <param name="BatchId">Only this batch's edits (the <c>run</c> command), or any.</param>
public sealed record PollClaim(int Limit, TimeSpan Lease, long? BatchId = null);

/// <summary>A lesson for a wave (see <see cref="IEditStore.PullWaveForwardAsync"/>).</summary>
/// <param name="Size">The spec's size as written, null for the provider's default.</param>
/// <param name="Within">The new due time, after each edit's submit.</param>
/// <param name="DueAfter">Only edits due later than this after their submit move.</param>
/// <param name="DueBefore">
/// Only edits due before this move: a poller's claim makes an edit due a lease later, and one claimed for its first poll
/// must not be made due again while its status call is on its way (another poller would poll it too).
/// </param>
public sealed record WavePull(long BatchId, string Provider, int N, string? Size, TimeSpan Within, TimeSpan DueAfter, DateTimeOffset? DueBefore = null);

/// <summary>When work comes due next: the earliest pending edit, and the earliest poll.</summary>
public sealed record NextDue(DateTimeOffset? Pending, DateTimeOffset? AtProvider);

/// <summary>Edits that have stood still: in one of <paramref name="States"/> and not written since <paramref name="Before"/>.</summary>
public sealed record StillQuery(IReadOnlyList<EditState> States, DateTimeOffset Before, int Limit, long? BatchId = null);
