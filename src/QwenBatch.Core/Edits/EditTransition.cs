namespace QwenBatch.Edits;

/// <summary>
/// A guarded write of a job: succeeds only while the job is in one of <see cref="From"/> and still leased by
/// <see cref="Owner"/>. <see cref="Job"/> carries the new values of every mutable column.
/// </summary>
/// <param name="Job">The job as it should be after the transition (its <see cref="EditRecord.State"/> is the target).</param>
/// <param name="From">States the job must be in; a miss means someone else moved it (a rescuer, a cancel).</param>
/// <param name="Owner">The lease holder doing the write.</param>
/// <param name="KeepLease">True while the same worker goes on with the job (for example, submitting → POST).</param>
/// <param name="Reason">Recorded in history; history is written when the state changes or a reason is given.</param>
public sealed record EditTransition(EditRecord Job, IReadOnlyList<EditState> From, string Owner, bool KeepLease, string? Reason)
{
    /// <summary>
    /// A state the job passed through under this lease without it being written on its own (a completion seen by a poll,
    /// whose download ran at once): history records the move into it (<see cref="ViaReason"/>) before this one.
    /// </summary>
    public EditState? Via { get; init; }

    /// <summary>The history reason of the move into <see cref="Via"/>.</summary>
    public string? ViaReason { get; init; }
}
