using System.Globalization;
using Microsoft.Extensions.Logging;
using QwenBatch.Batches;
using QwenBatch.Storage;

namespace QwenBatch.Schedules;

/// <summary>
/// Turns an occurrence of a schedule into its batch. Hangfire decides when (a recurring job per schedule, its occurrences
/// computed by Cronos in the schedule's time zone, once per fleet); this imports the manifest as read now, through the one
/// import path, and records what it made. The batch name is fixed by the occurrence, so a second run of the same
/// occurrence (a retried job) resumes its batch instead of making another. A missing or invalid manifest makes a failed
/// batch carrying the errors, and the schedule goes on.
/// </summary>
public sealed partial class ScheduleRunner(IStore store, TimeProvider time, ILogger<ScheduleRunner> logger)
{
    /// <summary>
    /// Fires the named schedule's occurrence that <paramref name="occurrenceOf"/> makes of the time it fired; null when there
    /// is no such schedule (removed meanwhile).
    /// </summary>
    public async Task<ScheduleOutcome?> FireAsync(
        string name, DateTimeOffset fired, Func<ScheduleDefinition, DateTimeOffset, DateTimeOffset> occurrenceOf, CancellationToken ct)
    {
        var schedule = (await store.GetSchedulesAsync(ct)).FirstOrDefault(s => s.Name == name);
        return schedule is null ? null : await FireAsync(schedule.Definition, occurrenceOf(schedule.Definition, fired), ct);
    }

    /// <summary>Runs the schedule now (<c>schedule trigger</c>), as an occurrence at the current minute.</summary>
    public Task<ScheduleOutcome> TriggerAsync(ScheduleDefinition schedule, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        return FireAsync(schedule, new DateTimeOffset(now.Ticks - (now.Ticks % TimeSpan.TicksPerMinute), TimeSpan.Zero), ct);
    }

    /// <summary>The batch name of an occurrence: <c>&lt;schedule&gt;-&lt;yyyyMMdd-HHmm&gt;</c> in the schedule's zone.</summary>
    public static string BatchName(ScheduleDefinition schedule, DateTimeOffset occurrence) =>
        $"{schedule.Name}-{TimeZoneInfo.ConvertTime(occurrence, TimeZoneInfo.FindSystemTimeZoneById(schedule.TimeZone)).ToString("yyyyMMdd-HHmm", CultureInfo.InvariantCulture)}";

    private async Task<ScheduleOutcome> FireAsync(ScheduleDefinition schedule, DateTimeOffset occurrence, CancellationToken ct)
    {
        var name = BatchName(schedule, occurrence);
        var batch = BatchPlanner.Batch(Path.GetFullPath(schedule.Manifest), null, schedule.Provider, schedule.StorageRoot, name) with { BudgetUsd = schedule.BudgetUsd };
        var result = await UnattendedImport.ImportAsync(store, schedule.Manifest, batch, time, ct);
        var outcome = new ScheduleOutcome(schedule.Name, occurrence, time.GetUtcNow(), result.Batch.Name, result.Error);

        // The batch exists now: its occurrence is recorded even when stopping.
        await store.RecordOccurrenceAsync(outcome, CancellationToken.None);
        if (result.Error is null)
        {
            LogFired(schedule.Name, occurrence, name);
        }
        else
        {
            LogFailed(schedule.Name, occurrence, name, result.Error);
        }

        return outcome;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Schedule {Schedule} fired its {Occurrence:O} occurrence as batch {Batch}")]
    private partial void LogFired(string schedule, DateTimeOffset occurrence, string batch);

    [LoggerMessage(Level = LogLevel.Error, Message = "Schedule {Schedule} failed its {Occurrence:O} occurrence (failed batch {Batch}): {Error}; the schedule carries on")]
    private partial void LogFailed(string schedule, DateTimeOffset occurrence, string batch, string error);
}
