using Hangfire.Common;
using Hangfire.States;
using Hangfire.Storage;
using Microsoft.Extensions.Logging;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Jobs;
using QwenBatch.Storage;

namespace QwenBatch.Hangfire.Filters;

/// <summary>
/// Makes Hangfire's own moves of an edit's job mean what a user thinks, whoever makes them (a worker, the dashboard's
/// buttons): a job that ends failed (its retries spent) fails its edit; a deleted job cancels its edit, at the provider
/// too; a failed or deleted job requeued retries its edit, which goes back to the backlog so the batch's budget and the
/// fleet's limits apply to it again. Applied inside Hangfire's state change; every move of the edit is guarded, so a
/// state Hangfire applies because QwenBatch asked for it (the edit already moved) changes nothing.
/// </summary>
public sealed partial class EditStateFilter(IEditStore edits, EditStateChanger changer, UnwrittenMoves unwritten, TimeProvider time, ILogger<EditStateFilter> logger)
    : JobFilterAttribute, IApplyStateFilter
{
    private static readonly string[] Final = [FailedState.StateName, DeletedState.StateName, SucceededState.StateName];

    public void OnStateApplied(ApplyStateContext context, IWriteOnlyTransaction transaction)
    {
        if (context.BackgroundJob.Job?.Type != typeof(EditJob) || context.BackgroundJob.Job.Args[0] is not long editId)
        {
            return;
        }

        var jobId = context.BackgroundJob.Id;
        switch (context.NewState)
        {
            case FailedState failed:
                Wait(() => FailAsync(editId, jobId, failed.Exception?.Message ?? failed.Reason ?? "failed"));
                break;
            case DeletedState when context.OldStateName != DeletedState.StateName:
                Wait(async () =>
                {
                    if (await BoundAsync(editId, jobId) is { } deleted && !deleted.State.IsTerminal())
                    {
                        LogCancelling(editId, jobId);
                        await changer.CancelAsync([editId], CancellationToken.None);
                    }
                });
                break;
            case EnqueuedState when Final.Contains(context.OldStateName, StringComparer.OrdinalIgnoreCase):
                Wait(async () =>
                {
                    if (await BoundAsync(editId, jobId) is { State: EditState.Failed or EditState.Cancelled })
                    {
                        LogRequeueing(editId, jobId);
                        await changer.RequeueAsync([editId], CancellationToken.None);
                    }
                });
                break;
        }
    }

    public void OnStateUnapplied(ApplyStateContext context, IWriteOnlyTransaction transaction)
    {
    }

    /// <summary>
    /// Hangfire's filters are synchronous. The store calls are short; they run on the thread pool and are waited for, so
    /// that a caller on a scheduler with one thread (a background process) is never waiting on itself.
    /// </summary>
    private static void Wait(Func<Task> work) => Task.Run(work).GetAwaiter().GetResult();

    /// <summary>The edit when this job is the one that runs it; a stray job's moves leave the edit alone.</summary>
    private async Task<EditRecord?> BoundAsync(long editId, string jobId) =>
        await edits.GetEditAsync(editId, CancellationToken.None) is { } edit && edit.HangfireJob == jobId ? edit : null;

    private async Task FailAsync(long editId, string jobId, string error)
    {
        // This process still holds what a submit of the edit learned (the store was away): that is written first, and the
        // edit is not failed over it.
        if (unwritten.Holds(editId) || await BoundAsync(editId, jobId) is not { State: EditState.Queued or EditState.Submitting or EditState.Downloading } edit)
        {
            return;
        }

        var uncertain = edit.State == EditState.Submitting;
        var reason = $"gave up after {edit.Attempt} attempt(s): {error}";
        LogFailing(editId, jobId, reason);
        await changer.MoveAsync(edit, edit with
        {
            State = EditState.Failed,
            Error = error,
            FinishedAt = time.GetUtcNow(),
            UncertainSubmits = edit.UncertainSubmits + (uncertain ? 1 : 0),
        }, $"hangfire-job:{jobId}", reason);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Edit {EditId}: its job {HangfireJob} failed; the edit fails: {Reason}")]
    private partial void LogFailing(long editId, string hangfireJob, string reason);

    [LoggerMessage(Level = LogLevel.Information, Message = "Edit {EditId}: its job {HangfireJob} was deleted; cancelling the edit")]
    private partial void LogCancelling(long editId, string hangfireJob);

    [LoggerMessage(Level = LogLevel.Information, Message = "Edit {EditId}: its job {HangfireJob} was requeued; the edit goes back to the backlog")]
    private partial void LogRequeueing(long editId, string hangfireJob);
}
