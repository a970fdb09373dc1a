using QwenBatch.Retention;
using QwenBatch.Schedules;

namespace QwenBatch.Storage;

/// <summary>
/// Recurring schedules and retention (migration 4). Each occurrence of a schedule is claimed once, by a unique key on
/// (schedule, occurrence), so every worker can run the scheduler and still make one batch per occurrence.
/// </summary>
public partial interface IJobStore
{
    /// <summary>Adds a schedule due first at <paramref name="nextAt"/>; false when one of that name exists.</summary>
    Task<bool> AddScheduleAsync(ScheduleDefinition schedule, DateTimeOffset nextAt, CancellationToken ct);

    /// <summary>Every schedule, by name.</summary>
    Task<IReadOnlyList<ScheduleRecord>> GetSchedulesAsync(CancellationToken ct);

    /// <summary>Removes the schedule and its run records; false when there was none.</summary>
    Task<bool> RemoveScheduleAsync(string name, CancellationToken ct);

    /// <summary>Pauses or resumes; a resume sets the next occurrence (so the paused time is not caught up). False when missing.</summary>
    Task<bool> SetSchedulePausedAsync(string name, bool paused, DateTimeOffset nextAt, CancellationToken ct);

    /// <summary>
    /// Claims one occurrence for <see cref="OccurrenceClaim.Owner"/> under a lease and moves the schedule's next occurrence to
    /// <see cref="OccurrenceClaim.NextAt"/> in one transaction. True only for the one caller whose insert of
    /// (schedule, occurrence) went in. The claim stays open until <see cref="RecordOccurrenceAsync"/> finishes it; if the
    /// claimer dies first, <see cref="ReclaimOccurrencesAsync"/> hands it to another scheduler once the lease expires.
    /// </summary>
    Task<bool> ClaimOccurrenceAsync(OccurrenceClaim claim, CancellationToken ct);

    /// <summary>
    /// Takes over up to <paramref name="limit"/> claimed occurrences that were never finished and whose lease expired (the
    /// claimer crashed or stopped between the claim and its batch), with one guarded update: each goes to one caller, under
    /// a fresh lease. The caller fires them again; the batch name of an occurrence is fixed, so a batch the dead claimer
    /// already committed is resumed, never doubled.
    /// </summary>
    Task<IReadOnlyList<AbandonedOccurrence>> ReclaimOccurrencesAsync(string owner, TimeSpan lease, int limit, CancellationToken ct);

    /// <summary>Moves the next occurrence from <paramref name="expected"/> to <paramref name="nextAt"/> without a run (catch-up skip).</summary>
    Task<bool> SkipOccurrencesAsync(string name, DateTimeOffset expected, DateTimeOffset nextAt, CancellationToken ct);

    /// <summary>Finishes a claimed occurrence with what it made: its batch, and the error that failed it, if any.</summary>
    Task RecordOccurrenceAsync(ScheduleOutcome outcome, CancellationToken ct);

    /// <summary>The claimed occurrences of a schedule, newest first.</summary>
    Task<IReadOnlyList<ScheduleOutcome>> GetOccurrencesAsync(string name, CancellationToken ct);

    /// <summary>
    /// The oldest finished batch created before <paramref name="cutoff"/>: every job in a terminal state (from the
    /// counters) and none updated since the cutoff. Null when there is none.
    /// </summary>
    Task<long?> FindExpiredBatchAsync(DateTimeOffset cutoff, CancellationToken ct);

    /// <summary>
    /// One short step of retention on a batch <see cref="FindExpiredBatchAsync"/> found: deletes up to
    /// <paramref name="chunk"/> of its terminal jobs last updated before <paramref name="cutoff"/> (their history goes with
    /// them), or, once it has no jobs left, the batch itself. Called until it deletes nothing, so no statement holds locks
    /// on many rows; the per-row guard keeps jobs added by a resume meanwhile.
    /// </summary>
    Task<RetentionStep> PurgeBatchChunkAsync(long batchId, DateTimeOffset cutoff, int chunk, CancellationToken ct);
}

/// <summary>Batch continuations (migrations 4 and 6): set at submit or run, claimed once when the batch settles.</summary>
public partial interface IJobStore
{
    Task SetContinuationAsync(long batchId, Continuations.Continuation then, CancellationToken ct);

    /// <summary>
    /// Claims up to <see cref="Continuations.ContinuationClaim.Limit"/> settled batches (one batch when
    /// <see cref="Continuations.ContinuationClaim.BatchId"/> is set) whose continuation has not fired, with one guarded
    /// update, so each continuation is claimed by one caller however many workers look. A claim whose result was never
    /// recorded (the claimer died) can be claimed again once its lease expired.
    /// </summary>
    Task<IReadOnlyList<Continuations.ClaimedContinuation>> ClaimContinuationsAsync(Continuations.ContinuationClaim claim, CancellationToken ct);

    /// <summary>Records what a fired continuation did (the batch it made, the webhook's answer, or the error); it is then done.</summary>
    Task RecordContinuationAsync(long batchId, string result, CancellationToken ct);

    /// <summary>A batch's continuation and its result, if any.</summary>
    Task<(Continuations.Continuation Then, DateTimeOffset? ClaimedAt, string? Result)?> GetContinuationAsync(long batchId, CancellationToken ct);
}
