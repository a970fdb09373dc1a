using QwenBatch.Continuations;

namespace QwenBatch.Storage;

/// <summary>Batch continuations: set at submit or run, claimed once when the batch settles, fired as a Hangfire job.</summary>
public interface IContinuationStore
{
    Task SetContinuationAsync(long batchId, Continuation then, CancellationToken ct);

    /// <summary>
    /// Claims up to <see cref="ContinuationClaim.Limit"/> settled batches (one batch when <see cref="ContinuationClaim.BatchId"/>
    /// is set) whose continuation has not fired, with one guarded update, so each continuation is claimed by one caller
    /// however many processes look. A claim whose result was never recorded (the claimer died) can be claimed again once
    /// its lease expired.
    /// </summary>
    Task<IReadOnlyList<ClaimedContinuation>> ClaimContinuationsAsync(ContinuationClaim claim, CancellationToken ct);

    /// <summary>Records what a fired continuation did (the batch it made, the webhook's answer, or the error); it is then done.</summary>
    Task RecordContinuationAsync(long batchId, string result, CancellationToken ct);

    /// <summary>A batch's continuation and its result, if any.</summary>
    Task<(Continuation Then, DateTimeOffset? ClaimedAt, string? Result)?> GetContinuationAsync(long batchId, CancellationToken ct);
}
