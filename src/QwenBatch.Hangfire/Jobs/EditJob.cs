using System.ComponentModel;
using Hangfire;
using Hangfire.Server;
using Hangfire.States;
using Microsoft.Extensions.Logging;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Hangfire.States;
using QwenBatch.Steps;
using QwenBatch.Storage;

namespace QwenBatch.Hangfire.Jobs;

/// <summary>
/// The Hangfire job of one edit. Each run does the edit's next step as QwenBatch's tables tell it — submit a queued edit,
/// download a finished one — and then parks the job in the state that tells the edit's story (at the provider, waiting
/// in the backlog) instead of holding a worker. Hangfire runs a job at least once (a re-fetch after the invisibility
/// timeout, a crash, a retry, a requeue from the dashboard), so every run reads the edit's state first and never does a
/// step twice: a queued edit is submitted once (the move to submitting is guarded), one caught submitting is submitted
/// again only when whoever sent it is gone, and the count of such submits is kept for the report.
/// </summary>
public sealed partial class EditJob(
    IEditStore edits,
    EditStateChanger changer,
    SubmitStep submit,
    DownloadStep download,
    UnwrittenMoves unwritten,
    Submitters submitters,
    NextState next,
    EditJobClient jobs,
    HangfireOptions options,
    ILogger<EditJob> logger)
{
    /// <summary>Runs the edit's next step; <paramref name="context"/> and <paramref name="ct"/> are Hangfire's.</summary>
    [DisplayName("Edit {0}")]
    public async Task RunAsync(long editId, PerformContext? context, CancellationToken ct)
    {
        ArgumentNullException.ThrowIfNull(context);
        var jobId = context.BackgroundJob.Id;
        var by = context.ServerId;
        using var scope = logger.BeginScope(new Dictionary<string, object> { ["EditId"] = editId, ["HangfireJob"] = jobId });

        // What this process learned of the edit and could not write yet comes first: the row may be stale without it.
        if (!await unwritten.FlushAsync(editId))
        {
            throw new EditStepException($"The store is away; what a submit of edit {editId} learned waits in this process to be written.");
        }

        // Twice at most: a step that finds the edit moved by someone else meanwhile decides again from the fresh row.
        for (var pass = 0; pass < 2; pass++)
        {
            var edit = await edits.GetEditAsync(editId, ct);
            if (edit is null)
            {
                next.Set(context, new DeletedState { Reason = $"edit {editId} no longer exists (retention removed its batch)" });
                return;
            }

            if (edit.HangfireJob is { } bound && bound != jobId)
            {
                next.Set(context, new DeletedState { Reason = $"edit {editId} is run by job {bound}; this job is a stray" });
                return;
            }

            if (edit.HangfireJob is null)
            {
                // Created by a feeder that stopped before it recorded the job: this job takes the edit.
                await edits.BindJobsAsync([new JobBinding(editId, jobId)], ct);
            }

            using var batch = logger.BeginScope(new Dictionary<string, object> { ["BatchId"] = edit.BatchId });
            if (edit.State == EditState.Submitting && await submitters.StillSendingAsync(edit, ct) is { } busy)
            {
                next.Set(context, new ScheduledState(Submitters.LookAgain) { Reason = busy });
                return;
            }

            var outcome = edit.State switch
            {
                EditState.Queued => await submit.RunAsync(edit, by, ct),
                EditState.Submitting => await ResumeSubmitAsync(edit, by, ct),
                EditState.Downloading => await download.RunAsync(edit, by, ct),
                _ => Parked(edit),
            };

            if (outcome is StepOutcome.Moved)
            {
                continue;
            }

            if (Parking(outcome) is { } parked)
            {
                next.Apply(context, parked);
                await WakeIfMovedOnAsync(context, editId);
                NextState.End();
            }

            Show(context, outcome);
            return;
        }

        LogMovedTwice(editId);
    }

    /// <summary>
    /// The edit was caught submitting, and the run that sent its POST is gone (its process was killed, or lost the store
    /// for longer than Hangfire's invisibility timeout): the provider may or may not have the task, so the submit is
    /// counted uncertain and sent again. (While that run may still be waiting for the answer, the job looks again later.)
    /// </summary>
    private async Task<StepOutcome> ResumeSubmitAsync(EditRecord edit, string by, CancellationToken ct)
    {
        const string why = "its submit was cut off (the process sending it stopped); the provider may have accepted it; submitting again";
        LogResubmitting(edit.Id);
        var queued = await changer.MoveAsync(edit, edit with
        {
            State = EditState.Queued,
            UncertainSubmits = edit.UncertainSubmits + 1,
            Error = why,
        }, by, why);
        return queued is null ? StepOutcome.Moved.Instance : await submit.RunAsync(queued, by, ct);
    }

    /// <summary>
    /// The job has just parked itself (at the provider, in the backlog), but the edit may have moved on while this run
    /// decided: the poller found its task done and moved it to downloading, or the feeder queued it again. Whoever moved it
    /// tried to enqueue the job and could not (it was still Processing here), leaving it to this run — which had already read
    /// the edit. So the edit is read again after parking: of the two writes (the edit's move, then the job's move; the job's
    /// park, then this read), the second sees the first, and the job is never left parked under an edit that needs it.
    /// </summary>
    private async Task WakeIfMovedOnAsync(PerformContext context, long editId)
    {
        if (await edits.GetEditAsync(editId, CancellationToken.None) is { } now && EditStates.NeedsWorker.Contains(now.State))
        {
            LogMovedOnWhileParking(editId, now.State);
            jobs.Move(context.BackgroundJob.Id, new EnqueuedState(options.Queue) { Reason = $"the edit moved on to {now.State.ToDbName()} while its job parked" },
                AtProviderState.StateName, WaitingState.StateName);
        }
    }

    /// <summary>What a run shows for an edit whose step is not this job's to run (a requeued or duplicate run).</summary>
    private static StepOutcome Parked(EditRecord edit) => edit.State switch
    {
        EditState.AtProvider => new StepOutcome.AtProvider(edit.RequestId!, edit.Provider, edit.SubmittedAt ?? edit.UpdatedAt, edit.DueAt),
        EditState.Pending or EditState.Held => new StepOutcome.Backlog(edit.Error ?? "in QwenBatch's backlog: the feeder hands it to Hangfire as the batch's limits allow", edit.DueAt),
        EditState.Succeeded => new StepOutcome.Succeeded(edit.Files.Count),
        EditState.Failed => new StepOutcome.Failed(edit.Error ?? "failed"),
        EditState.Cancelled => new StepOutcome.Cancelled(edit.Error ?? "cancelled"),
        _ => throw new InvalidOperationException($"Edit {edit.Id} in state {edit.State} has no parked state."),
    };

    /// <summary>The state a job parks in for this outcome (at the provider, in the backlog), or null when it does not park.</summary>
    private static IState? Parking(StepOutcome outcome) => outcome switch
    {
        StepOutcome.AtProvider o => new AtProviderState(o.RequestId, o.Provider, o.SubmittedAt, o.PollAt),
        StepOutcome.Backlog o => new WaitingState(o.Reason, o.DueAt),
        _ => null,
    };

    /// <summary>Shows the outcome as the job's next Hangfire state; a failed attempt throws, so Hangfire's retry filter decides.</summary>
    private void Show(PerformContext context, StepOutcome outcome)
    {
        switch (outcome)
        {
            case StepOutcome.Retry o:
                throw new EditStepException(o.Error.Message, o.Error);
            case StepOutcome.Failed o:
                next.Set(context, new FailedState(new EditFailedException(o.Reason)) { Reason = o.Reason });
                break;
            case StepOutcome.Cancelled o:
                next.Set(context, new DeletedState { Reason = o.Reason });
                break;
            case StepOutcome.Succeeded:
                break;
            default:
                throw new InvalidOperationException($"A job cannot show the outcome {outcome}.");
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Edit {EditId} was caught submitting by a run that is gone; the submit is counted uncertain and sent again")]
    private partial void LogResubmitting(long editId);

    [LoggerMessage(Level = LogLevel.Debug, Message = "Edit {EditId} moved on to {State} while its job parked; the job is enqueued again")]
    private partial void LogMovedOnWhileParking(long editId, EditState state);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Edit {EditId} kept moving under its job; the job leaves it as it is")]
    private partial void LogMovedTwice(long editId);
}
