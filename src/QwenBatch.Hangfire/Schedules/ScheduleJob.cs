using System.ComponentModel;
using Hangfire.Common;
using Hangfire.Server;
using Hangfire.States;
using QwenBatch.Hangfire.Jobs;
using QwenBatch.Schedules;

namespace QwenBatch.Hangfire.Schedules;

/// <summary>
/// Fires one occurrence of a schedule: the manifest as read now becomes the occurrence's batch. A failed occurrence (the
/// manifest missing or invalid) leaves a failed batch with the errors, and the job shows it failed; the schedule carries on.
/// </summary>
public sealed class ScheduleJob(ScheduleRunner runner, NextState next, TimeProvider time)
{
    /// <summary>How late Hangfire's scheduler may fire an occurrence and still have it named after that occurrence.</summary>
    public static readonly TimeSpan Tolerance = TimeSpan.FromMinutes(2);

    public static Job JobFor(string name, string queue) => Job.FromExpression<ScheduleJob>(job => job.FireAsync(name, null, CancellationToken.None), queue);

    [DisplayName("Schedule {0}")]
    public async Task<string?> FireAsync(string name, PerformContext? context, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        var fired = context.GetJobParameter<long?>("Time") is { } seconds ? DateTimeOffset.FromUnixTimeSeconds(seconds) : time.GetUtcNow();
        var occurrence = await runner.FireAsync(name, fired, Occurrence, ct);
        if (occurrence is { Error: { } error })
        {
            next.Set(context, new FailedState(new ScheduleFailedException(error)) { Reason = $"the occurrence's manifest failed: batch {occurrence.BatchName} carries the errors" });
        }

        return occurrence?.BatchName;
    }

    /// <summary>
    /// The occurrence a firing stands for: the schedule's latest occurrence up to when Hangfire fired it, when that was
    /// within <see cref="Tolerance"/>; otherwise (a catch-up after downtime, a trigger from the dashboard) the minute it fired.
    /// </summary>
    public static DateTimeOffset Occurrence(ScheduleDefinition schedule, DateTimeOffset fired)
    {
        var (cron, zone) = RecurringSchedules.Parse(schedule.Cron, schedule.TimeZone);
        var latest = cron.GetOccurrences(fired - Tolerance, fired, zone, fromInclusive: true, toInclusive: true).LastOrDefault();
        return latest != default ? latest : new DateTimeOffset(fired.Ticks - (fired.Ticks % TimeSpan.TicksPerMinute), TimeSpan.Zero);
    }
}

/// <summary>A schedule's occurrence could not make its batch (the manifest is missing or invalid): not retried.</summary>
public sealed class ScheduleFailedException : Exception
{
    public ScheduleFailedException()
    {
    }

    public ScheduleFailedException(string message)
        : base(message)
    {
    }

    public ScheduleFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
