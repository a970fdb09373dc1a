using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;
using QwenBatch.Hangfire.Hosting;

namespace QwenBatch.Hangfire.Filters;

/// <summary>
/// How long finished jobs (succeeded, deleted) stay in Hangfire's tables: <c>Hangfire:SucceededJobExpiration</c>. A
/// million edits make two million state rows and more; QwenBatch's own tables keep what the reports need.
/// </summary>
public sealed class JobExpiration(HangfireOptions options) : JobFilterAttribute, IApplyStateFilter
{
    public void OnStateApplied(ApplyStateContext context, IWriteOnlyTransaction transaction) =>
        context.JobExpirationTimeout = options.SucceededJobExpiration;

    public void OnStateUnapplied(ApplyStateContext context, IWriteOnlyTransaction transaction)
    {
    }
}
