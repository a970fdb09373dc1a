using Cronos;
using Hangfire;
using Hangfire.Common;
using Hangfire.Storage;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Schedules;

namespace QwenBatch.Hangfire.Schedules;

/// <summary>
/// A schedule as a Hangfire recurring job (<c>schedule:&lt;name&gt;</c>): Hangfire computes its occurrences with Cronos in
/// the schedule's time zone (a time skipped by spring-forward runs at the transition, a repeated one once), fires each
/// once per fleet, and, after downtime, runs the missed occurrence once (catch-up <c>once</c>) or not at all (<c>skip</c>).
/// </summary>
public sealed class RecurringSchedules(JobStorage storage, IJobFilterProvider filters, HangfireOptions options)
{
    public const string Prefix = "schedule:";

    /// <summary>Parses a 5-field cron expression and an IANA (or Windows) time zone, as Hangfire will; throws <see cref="FormatException"/> with what was expected.</summary>
    public static (CronExpression Cron, TimeZoneInfo Zone) Parse(string cron, string timeZone)
    {
        CronExpression expression;
        try
        {
            expression = CronExpression.Parse(cron, CronFormat.Standard);
        }
        catch (CronFormatException ex)
        {
            throw new FormatException($"--cron '{cron}' is not a 5-field cron expression (minute hour day-of-month month day-of-week): {ex.Message}", ex);
        }

        try
        {
            return (expression, TimeZoneInfo.FindSystemTimeZoneById(timeZone));
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            throw new FormatException($"--tz '{timeZone}' is not a known time zone; expected an IANA name such as Europe/Berlin or UTC.", ex);
        }
    }

    /// <summary>The next occurrence after <paramref name="now"/>, as Hangfire will compute it.</summary>
    public static DateTimeOffset? Next(ScheduleDefinition schedule, DateTimeOffset now)
    {
        var (cron, zone) = Parse(schedule.Cron, schedule.TimeZone);
        return cron.GetNextOccurrence(now, zone);
    }

    /// <summary>Creates or updates the schedule's recurring job.</summary>
    public void Register(ScheduleDefinition schedule)
    {
        var (_, zone) = Parse(schedule.Cron, schedule.TimeZone);
        Manager().AddOrUpdate(Prefix + schedule.Name, ScheduleJob.JobFor(schedule.Name, options.Queue), schedule.Cron, new RecurringJobOptions
        {
            TimeZone = zone,
            MisfireHandling = schedule.CatchUp == CatchUpPolicy.Skip ? MisfireHandlingMode.Ignorable : MisfireHandlingMode.Relaxed,
        });
    }

    /// <summary>Removes the schedule's recurring job (paused or removed); nothing when it has none.</summary>
    public void Unregister(string name) => Manager().RemoveIfExists(Prefix + name);

    /// <summary>The names of the schedules that have a recurring job in the storage.</summary>
    public IReadOnlyList<string> Registered()
    {
        using var connection = storage.GetConnection();
        return connection.GetRecurringJobs().Where(j => j.Id.StartsWith(Prefix, StringComparison.Ordinal)).Select(j => j.Id[Prefix.Length..]).ToList();
    }

    private RecurringJobManager Manager() => new(storage, filters, new DefaultTimeZoneResolver());
}
