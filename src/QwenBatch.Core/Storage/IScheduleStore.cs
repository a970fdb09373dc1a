using QwenBatch.Schedules;

namespace QwenBatch.Storage;

/// <summary>
/// Schedule definitions and what each occurrence made. Hangfire fires them (a recurring job per schedule, occurrences
/// computed by Cronos in the schedule's time zone); the definitions live here so that every server can register them in
/// its Hangfire storage, and a paused schedule keeps its definition.
/// </summary>
public interface IScheduleStore
{
    /// <summary>Adds a schedule; false when one of that name exists.</summary>
    Task<bool> AddScheduleAsync(ScheduleDefinition schedule, CancellationToken ct);

    /// <summary>Every schedule, by name, with what its last occurrence made.</summary>
    Task<IReadOnlyList<ScheduleRecord>> GetSchedulesAsync(CancellationToken ct);

    /// <summary>Removes the schedule and its occurrence records; false when there was none.</summary>
    Task<bool> RemoveScheduleAsync(string name, CancellationToken ct);

    /// <summary>Pauses or resumes; false when there is no such schedule.</summary>
    Task<bool> SetSchedulePausedAsync(string name, bool paused, CancellationToken ct);

    /// <summary>Records what one occurrence made (its batch, and the error that failed it, if any); the same occurrence again overwrites it.</summary>
    Task RecordOccurrenceAsync(ScheduleOutcome outcome, CancellationToken ct);

    /// <summary>The recorded occurrences of a schedule, newest first.</summary>
    Task<IReadOnlyList<ScheduleOutcome>> GetOccurrencesAsync(string name, CancellationToken ct);
}
