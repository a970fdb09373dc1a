using System.ComponentModel.DataAnnotations;

namespace QwenBatch.Schedules;

/// <summary>How workers run schedules; the <c>Schedules</c> configuration section.</summary>
public sealed class ScheduleOptions
{
    public const string SectionName = "Schedules";

    /// <summary>How often every worker looks for due occurrences; an occurrence fires at most this late.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>With catch-up <c>skip</c>, an occurrence later than this is a missed one and is skipped.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "1.00:00:00")]
    public TimeSpan MisfireTolerance { get; set; } = TimeSpan.FromMinutes(1);
}
