using System.Globalization;
using Microsoft.Extensions.Logging;
using QwenBatch.Batches;
using QwenBatch.Storage;

namespace QwenBatch.Schedules;

/// <summary>
/// Turns due occurrences into batches, exactly once each. Every worker runs it; the store's unique (schedule, occurrence)
/// key makes one scheduler the claimer, under a lease. The claimer imports the manifest as read now, through the one import
/// path, and records the batch; if it dies in between, another scheduler takes the open claim over when the lease expires
/// and fires the occurrence again under the same batch name (a batch already committed is resumed, not doubled). A missing
/// or invalid manifest makes a failed batch carrying the errors, and the schedule goes on.
/// </summary>
public sealed partial class ScheduleRunner(IJobStore store, ScheduleOptions options, TimeProvider time, ILogger<ScheduleRunner> logger)
{
    /// <summary>Fires every due occurrence this caller wins, and every abandoned one it takes over; returns their outcomes.</summary>
    public async Task<IReadOnlyList<ScheduleOutcome>> TickAsync(string owner, CancellationToken ct)
    {
        var fired = new List<ScheduleOutcome>();
        var schedules = await store.GetSchedulesAsync(ct);
        foreach (var abandoned in await store.ReclaimOccurrencesAsync(owner, options.ClaimLease, 10, ct))
        {
            if (schedules.FirstOrDefault(s => s.Name == abandoned.Schedule) is { } schedule)
            {
                LogTakenOver(abandoned.Schedule, abandoned.Occurrence);
                var cron = CronSchedule.Parse(schedule.Definition.Cron, schedule.Definition.TimeZone);
                fired.Add(await FireAsync(schedule.Definition, abandoned.Occurrence, cron, ct));
            }
        }

        var now = time.GetUtcNow();
        foreach (var schedule in schedules)
        {
            if (schedule.Paused || schedule.NextAt > now)
            {
                continue;
            }

            var cron = CronSchedule.Parse(schedule.Definition.Cron, schedule.Definition.TimeZone);
            var next = cron.NextAfter(now) ?? DateTimeOffset.MaxValue;

            // After downtime several occurrences may be due: only the latest one is a candidate (catch-up runs once).
            var latest = schedule.NextAt;
            for (var o = cron.NextAfter(latest); o is { } later && later <= now; o = cron.NextAfter(later))
            {
                latest = later;
            }

            if (schedule.Definition.CatchUp == CatchUpPolicy.Skip && now - latest > options.MisfireTolerance)
            {
                if (await store.SkipOccurrencesAsync(schedule.Name, schedule.NextAt, next, ct))
                {
                    LogSkipped(schedule.Name, latest, next);
                }

                continue;
            }

            if (await store.ClaimOccurrenceAsync(new OccurrenceClaim(schedule.Name, latest, next, owner, options.ClaimLease), ct))
            {
                fired.Add(await FireAsync(schedule.Definition, latest, cron, ct));
            }
        }

        return fired;
    }

    /// <summary>Runs the schedule now (<c>schedule trigger</c>, the dashboard's button), as an occurrence at the current minute.</summary>
    public async Task<ScheduleOutcome?> TriggerAsync(ScheduleRecord schedule, string owner, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var occurrence = new DateTimeOffset(now.Ticks - now.Ticks % TimeSpan.TicksPerMinute, TimeSpan.Zero);
        var cron = CronSchedule.Parse(schedule.Definition.Cron, schedule.Definition.TimeZone);

        // The claim never moves next_at backwards, so passing the current value leaves the regular occurrences alone.
        return await store.ClaimOccurrenceAsync(new OccurrenceClaim(schedule.Name, occurrence, schedule.NextAt, owner, options.ClaimLease), ct)
            ? await FireAsync(schedule.Definition, occurrence, cron, ct)
            : null;
    }

    /// <summary>The batch name of an occurrence: <c>&lt;schedule&gt;-&lt;yyyyMMdd-HHmm&gt;</c> in the schedule's zone.</summary>
    public static string BatchName(string schedule, CronSchedule cron, DateTimeOffset occurrence) =>
        $"{schedule}-{cron.Local(occurrence).ToString("yyyyMMdd-HHmm", CultureInfo.InvariantCulture)}";

    private async Task<ScheduleOutcome> FireAsync(ScheduleDefinition schedule, DateTimeOffset occurrence, CronSchedule cron, CancellationToken ct)
    {
        var name = BatchName(schedule.Name, cron, occurrence);
        var batch = BatchPlanner.Batch(Path.GetFullPath(schedule.Manifest), null, schedule.Provider, schedule.StorageRoot, name) with { BudgetUsd = schedule.BudgetUsd };

        // Until the outcome is recorded the claim stays open: if this process dies or the store fails here, another
        // scheduler finishes the occurrence after the lease (at least once), and the fixed batch name makes it once.
        var result = await UnattendedImport.ImportAsync(store, schedule.Manifest, batch, time, ct);
        var outcome = new ScheduleOutcome(schedule.Name, occurrence, time.GetUtcNow(), result.Batch.Name, result.Error);

        // The batch exists now: its occurrence must be recorded even when stopping.
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

    [LoggerMessage(Level = LogLevel.Warning, Message = "Schedule {Schedule} missed its {Occurrence:O} occurrence (catch-up: skip); next at {Next:O}")]
    private partial void LogSkipped(string schedule, DateTimeOffset occurrence, DateTimeOffset next);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Schedule {Schedule}: its {Occurrence:O} occurrence was claimed but never recorded (the claimer stopped); firing it here")]
    private partial void LogTakenOver(string schedule, DateTimeOffset occurrence);
}
