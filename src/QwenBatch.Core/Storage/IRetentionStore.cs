using QwenBatch.Retention;

namespace QwenBatch.Storage;

/// <summary>Retention of finished batches, a chunk at a time so no statement holds locks on many rows.</summary>
public interface IRetentionStore
{
    /// <summary>
    /// The oldest finished batch created before <paramref name="cutoff"/>: every edit in a terminal state (from the
    /// counters) and none written since the cutoff. Null when there is none.
    /// </summary>
    Task<long?> FindExpiredBatchAsync(DateTimeOffset cutoff, CancellationToken ct);

    /// <summary>
    /// One short step of retention on a batch <see cref="FindExpiredBatchAsync"/> found: deletes up to
    /// <paramref name="chunk"/> of its terminal edits last written before <paramref name="cutoff"/> (their history goes with
    /// them), or, once it has no edits left, the batch itself. Called until it deletes nothing; the per-row guard keeps
    /// edits added by a resume meanwhile.
    /// </summary>
    Task<RetentionStep> PurgeBatchChunkAsync(long batchId, DateTimeOffset cutoff, int chunk, CancellationToken ct);
}
