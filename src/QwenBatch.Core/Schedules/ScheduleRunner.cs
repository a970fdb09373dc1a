using System.Globalization;
using Microsoft.Extensions.Logging;
using QwenBatch.Batches;
using QwenBatch.Manifests;
using QwenBatch.Storage;

namespace QwenBatch.Schedules;

/// <summary>
/// Turns due occurrences into batches. Every worker runs it; the store's unique (schedule, occurrence) claim makes each
/// occurrence one batch. The manifest is read when the occurrence fires, through the one import path
/// (<see cref="ManifestImporter"/>); a missing or invalid manifest fails that occurrence visibly and the schedule goes on.
/// </summary>
public sealed partial class ScheduleRunner(IJobStore store, ScheduleOptions options, TimeProvider time, ILogger<ScheduleRunner> logger)
{
    /// <summary>Fires every due occurrence this caller wins; returns the outcomes of those it fired.</summary>
    public async Task<IReadOnlyList<ScheduleOutcome>> TickAsync(string owner, CancellationToken ct)
    {
        var fired = new List<ScheduleOutcome>();
        var now = time.GetUtcNow();
        foreach (var schedule in await store.GetSchedulesAsync(ct))
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

            if (await store.ClaimOccurrenceAsync(schedule.Name, latest, next, owner, ct))
            {
                fired.Add(await FireAsync(schedule.Definition, latest, cron, ct));
            }
        }

        return fired;
    }

    /// <summary>Runs the schedule now (<c>schedule trigger</c>), as an occurrence at the current minute.</summary>
    public async Task<ScheduleOutcome?> TriggerAsync(ScheduleRecord schedule, string owner, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        var occurrence = new DateTimeOffset(now.Ticks - now.Ticks % TimeSpan.TicksPerMinute, TimeSpan.Zero);
        var cron = CronSchedule.Parse(schedule.Definition.Cron, schedule.Definition.TimeZone);

        // The claim never moves next_at backwards, so passing the current value leaves the regular occurrences alone.
        return await store.ClaimOccurrenceAsync(schedule.Name, occurrence, schedule.NextAt, owner, ct)
            ? await FireAsync(schedule.Definition, occurrence, cron, ct)
            : null;
    }

    /// <summary>The batch name of an occurrence: <c>&lt;schedule&gt;-&lt;yyyyMMdd-HHmm&gt;</c> in the schedule's zone.</summary>
    public static string BatchName(string schedule, CronSchedule cron, DateTimeOffset occurrence) =>
        $"{schedule}-{cron.Local(occurrence).ToString("yyyyMMdd-HHmm", CultureInfo.InvariantCulture)}";

    private async Task<ScheduleOutcome> FireAsync(ScheduleDefinition schedule, DateTimeOffset occurrence, CronSchedule cron, CancellationToken ct)
    {
        var name = BatchName(schedule.Name, cron, occurrence);
        string? error;
        try
        {
            error = await ImportAsync(schedule, name, ct);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or ArgumentException)
        {
            error = ex.Message;
        }

        var outcome = new ScheduleOutcome(schedule.Name, occurrence, time.GetUtcNow(), error is null ? name : null, error);

        // The occurrence is claimed whatever happens next: its result must be recorded even when stopping.
        await store.RecordOccurrenceAsync(outcome, CancellationToken.None);
        if (error is null)
        {
            LogFired(schedule.Name, occurrence, name);
        }
        else
        {
            LogFailed(schedule.Name, occurrence, error);
        }

        return outcome;
    }

    /// <summary>Imports the manifest as read now; the error to record, or null when the batch was made.</summary>
    private async Task<string?> ImportAsync(ScheduleDefinition schedule, string name, CancellationToken ct)
    {
        if (!File.Exists(schedule.Manifest))
        {
            return $"Manifest '{schedule.Manifest}' does not exist.";
        }

        var manifestOptions = new ManifestOptions { Provider = schedule.Provider };
        var check = ManifestImporter.Check(schedule.Manifest, manifestOptions);
        if (check.Diagnostics.ErrorCount > 0)
        {
            var first = ManifestStream.Sorted(check.Diagnostics.Errors).Take(3).Select(e => e.ToString());
            return $"Manifest '{schedule.Manifest}' has {check.Diagnostics.ErrorCount} error(s); nothing was enqueued: {string.Join("; ", first)}";
        }

        var batch = BatchPlanner.Batch(check.Path, check.Name, schedule.Provider, schedule.StorageRoot, name) with { BudgetUsd = schedule.BudgetUsd };
        await store.ImportBatchAsync(batch, ManifestImporter.ValidJobs(schedule.Manifest, manifestOptions, schedule.Provider, skipInvalid: false, ct), ct);
        return null;
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Schedule {Schedule} fired its {Occurrence:O} occurrence as batch {Batch}")]
    private partial void LogFired(string schedule, DateTimeOffset occurrence, string batch);

    [LoggerMessage(Level = LogLevel.Error, Message = "Schedule {Schedule} failed its {Occurrence:O} occurrence: {Error}; the schedule carries on")]
    private partial void LogFailed(string schedule, DateTimeOffset occurrence, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Schedule {Schedule} missed its {Occurrence:O} occurrence (catch-up: skip); next at {Next:O}")]
    private partial void LogSkipped(string schedule, DateTimeOffset occurrence, DateTimeOffset next);
}
