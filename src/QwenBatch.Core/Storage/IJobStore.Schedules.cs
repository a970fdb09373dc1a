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
    /// Claims one occurrence for <paramref name="owner"/> and moves the schedule's next occurrence to <paramref name="nextAt"/>
    /// in one transaction. True only for the one caller whose insert of (schedule, occurrence) went in.
    /// </summary>
    Task<bool> ClaimOccurrenceAsync(string name, DateTimeOffset occurrence, DateTimeOffset nextAt, string owner, CancellationToken ct);

    /// <summary>Moves the next occurrence from <paramref name="expected"/> to <paramref name="nextAt"/> without a run (catch-up skip).</summary>
    Task<bool> SkipOccurrencesAsync(string name, DateTimeOffset expected, DateTimeOffset nextAt, CancellationToken ct);

    /// <summary>Records what a claimed occurrence made: its batch, or the error that stopped it.</summary>
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

/// <summary>Batch continuations (migration 4): set at submit, claimed once when the batch settles.</summary>
public partial interface IJobStore
{
    Task SetContinuationAsync(long batchId, Continuations.Continuation then, CancellationToken ct);

    /// <summary>
    /// Claims up to <paramref name="limit"/> settled batches with an unfired continuation, with one guarded update
    /// (<c>then_claimed_at IS NULL</c>), so each continuation fires once however many workers look.
    /// </summary>
    Task<IReadOnlyList<Continuations.ClaimedContinuation>> ClaimContinuationsAsync(int limit, CancellationToken ct);

    /// <summary>Records what a fired continuation did (the batch it made, the webhook's answer, or the error).</summary>
    Task RecordContinuationAsync(long batchId, string result, CancellationToken ct);

    /// <summary>A batch's continuation and its result, if any.</summary>
    Task<(Continuations.Continuation Then, DateTimeOffset? ClaimedAt, string? Result)?> GetContinuationAsync(long batchId, CancellationToken ct);
}
