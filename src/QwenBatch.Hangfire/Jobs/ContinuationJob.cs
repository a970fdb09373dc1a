using System.ComponentModel;
using Hangfire.Common;
using QwenBatch.Continuations;

namespace QwenBatch.Hangfire.Jobs;

/// <summary>
/// Fires a settled batch's continuation (the next manifest, the signed webhook). Hangfire batches are a paid feature and not
/// on PostgreSQL, so QwenBatch claims each settled batch once and hands its continuation to this job; a second run of the
/// job finds the result recorded and fires nothing again.
/// </summary>
public sealed class ContinuationJob(ContinuationRunner runner)
{
    public static Job JobFor(long batchId, string queue) => Job.FromExpression<ContinuationJob>(job => job.FireAsync(batchId, CancellationToken.None), queue);

    [DisplayName("Continuation of batch {0}")]
    public async Task<string?> FireAsync(long batchId, CancellationToken ct) => await runner.FireAsync(batchId, ct);
}
