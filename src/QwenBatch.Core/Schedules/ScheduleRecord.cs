namespace QwenBatch.Schedules;

/// <summary>What a missed occurrence does after downtime: run once (the latest one), or skip to the next.</summary>
public enum CatchUpPolicy
{
    Once,
    Skip,
}

/// <summary>A recurring batch: a manifest read afresh at each occurrence of a cron expression in a time zone.</summary>
/// <param name="StorageRoot">The output root; each occurrence's batch goes to <c>&lt;root&gt;/&lt;schedule&gt;-&lt;yyyyMMdd-HHmm&gt;</c>.</param>
public sealed record ScheduleDefinition(
    string Name, string Cron, string TimeZone, string Manifest, string Provider, string StorageRoot, decimal? BudgetUsd = null,
    CatchUpPolicy CatchUp = CatchUpPolicy.Once);

/// <summary>A stored schedule and what its last occurrence did.</summary>
public sealed record ScheduleRecord(
    ScheduleDefinition Definition, bool Paused, DateTimeOffset? LastRunAt, string? LastBatch, string? LastError)
{
    public string Name => Definition.Name;
}

/// <summary>
/// One claimed occurrence and its result: the batch it made, and why it failed when it did (a failed occurrence still has
/// its batch: one with no jobs, carrying the errors).
/// </summary>
public sealed record ScheduleOutcome(string Schedule, DateTimeOffset Occurrence, DateTimeOffset At, string? BatchName, string? Error);

/// <summary>Parses and prints <see cref="CatchUpPolicy"/> as the CLI and store spell it.</summary>
public static class CatchUpPolicies
{
    public static string ToDbName(this CatchUpPolicy policy) => policy == CatchUpPolicy.Skip ? "skip" : "once";

    public static CatchUpPolicy Parse(string text) => text switch
    {
        "once" => CatchUpPolicy.Once,
        "skip" => CatchUpPolicy.Skip,
        _ => throw new FormatException($"Catch-up policy '{text}' is not valid; expected once or skip."),
    };
}
