using QwenBatch.Batches;
using QwenBatch.Edits;

namespace QwenBatch.Cli.Batches;

/// <summary>A batch with its progress, as <c>status</c> shows it (table or JSON).</summary>
internal sealed record BatchSummary(BatchRecord Batch, BatchProgress Progress, TimeSpan? Eta)
{
    /// <summary>Jobs that will not move without an operator (succeeded, failed, cancelled, held).</summary>
    public int Settled => Progress.Counts.Where(c => c.Key.IsSettled()).Sum(c => c.Value);

    /// <summary>Edits handed to Hangfire and not finished: queued, being submitted, at the provider or downloading.</summary>
    public int InFlight => Progress.InFlight;

    /// <summary>True when the batch has ended: every job is settled.</summary>
    public bool Done => Progress.IsSettled;

    /// <summary>"failed" is a batch that failed before it had jobs (a scheduled manifest missing or invalid).</summary>
    public string StateText =>
        Batch.Failure is not null ? "failed"
        : !Done ? (Batch.CancelRequestedAt is null ? "running" : "cancelling")
        : Progress.Count(EditState.Succeeded) == Progress.Total ? "succeeded"
        : Progress.Count(EditState.Held) > 0 ? "held"
        : "finished with failures";
}

/// <summary>
/// Estimates when a batch ends from its own pace so far: settled jobs per second since its first submit, applied to the
/// jobs still to go. Null until there is a pace to go by, or when nothing is left.
/// </summary>
internal static class BatchEta
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
