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

    /// <summary>
    /// How long a claimed occurrence is its claimer's alone. A claimer that dies before its batch is recorded leaves the
    /// occurrence to another scheduler after this; longer than the slowest manifest import, or a slow import is redone
    /// (harmlessly: the batch name is fixed, so the second import resumes the first batch).
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:10", "1.00:00:00")]
    public TimeSpan ClaimLease { get; set; } = TimeSpan.FromMinutes(10);
}
