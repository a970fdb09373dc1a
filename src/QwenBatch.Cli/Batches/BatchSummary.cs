using QwenBatch.Batches;
using QwenBatch.Edits;

namespace QwenBatch.Cli.Batches;

/// <summary>A batch with its progress, as <c>status</c> shows it (table or JSON).</summary>
internal sealed record BatchSummary(BatchRecord Batch, BatchProgress Progress, TimeSpan? Eta)
{
    /// <summary>Jobs that will not move without an operator (succeeded, failed, cancelled, held).</summary>
    public int Settled => Progress.Settled;

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
