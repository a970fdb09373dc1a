using QwenBatch.Edits;

namespace QwenBatch.Batches;

/// <summary>
/// Estimates when a batch ends from its own pace so far: settled jobs per second since its first submit, applied to the
/// jobs still to go. Null until there is a pace to go by, or when nothing is left.
/// </summary>
public static class BatchEta
{
    /// <summary>From the counters and the first submit: <c>status</c> reads no job for it, however large the batch.</summary>
    public static TimeSpan? Estimate(BatchProgress progress, DateTimeOffset? firstSubmit, DateTimeOffset now)
    {
        var finished = progress.Counts.Where(c => c.Key.IsTerminal()).Sum(c => c.Value);
        var remaining = progress.Counts.Where(c => !c.Key.IsSettled()).Sum(c => c.Value);
        return Estimate(finished, remaining, firstSubmit is { } started ? now - started : null);
    }

    public static TimeSpan? Estimate(int finished, int remaining, TimeSpan? elapsed)
    {
        if (remaining == 0 || finished == 0 || elapsed is not { } took || took <= TimeSpan.Zero)
        {
            return remaining == 0 ? TimeSpan.Zero : null;
        }

        return TimeSpan.FromSeconds(Math.Ceiling(took.TotalSeconds / finished * remaining));
    }

    public static string Format(TimeSpan? eta) => eta switch
    {
        null => "–",
        { TotalSeconds: < 1 } => "0s",
        { TotalHours: >= 1 } e => $"{(int)e.TotalHours}h{e.Minutes:00}m",
        { TotalMinutes: >= 1 } e => $"{e.Minutes}m{e.Seconds:00}s",
        var e => $"{e.Value.Seconds}s",
    };
}
