namespace QwenBatch.Edits;

/// <summary>
/// A guarded write of an edit: applies only while the edit is in one of <see cref="From"/>; a miss means someone else
/// moved it (a cancel, another run of its Hangfire job). <see cref="Edit"/> carries the new values of every column a
/// step may change (never <see cref="EditRecord.HangfireJob"/>, which only the binding writes).
/// </summary>
/// <param name="Edit">The edit as it should be after the transition (its <see cref="EditRecord.State"/> is the target).</param>
/// <param name="From">States the edit must be in.</param>
/// <param name="By">Who moves it (a Hangfire server id, or the process), recorded in history.</param>
/// <param name="Reason">Recorded in history; history is written when the state changes or a reason is given.</param>
public sealed record EditTransition(EditRecord Edit, IReadOnlyList<EditState> From, string By, string? Reason);
