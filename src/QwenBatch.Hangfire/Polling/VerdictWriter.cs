using Hangfire.States;
using QwenBatch.Edits;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Hangfire.Jobs;
using QwenBatch.Hangfire.States;
using QwenBatch.Steps;

namespace QwenBatch.Hangfire.Polling;

/// <summary>
/// Writes what the provider said of parked edits — the poller's answers and the webhook receiver's deliveries alike —
/// in one transaction through the state owner, then moves each moved edit's Hangfire job on: to its download when the
/// provider finished, back to the backlog when the task is submitted again, to failed or deleted when it ended so. An
/// answer whose edit moved meanwhile (another poller, a delivery) misses and changes nothing.
/// </summary>
public sealed class VerdictWriter(EditStateChanger changer, EditJobClient jobs, EngineSignals signals)
{
    private const string DownloadReason = "download: the provider finished";

    /// <summary>The edits as written, in the order given; null where the edit had moved on.</summary>
    public async Task<IReadOnlyList<EditRecord?>> WriteAsync(IReadOnlyList<PollVerdict> verdicts, string by)
    {
        var moved = await changer.MoveManyAsync(verdicts.Select(v => v.Move).ToList(), by);
        var downloads = new List<EditRecord>();
        for (var i = 0; i < verdicts.Count; i++)
        {
            if (moved[i] is not { } edit)
            {
                continue;
            }

            switch (verdicts[i].Outcome)
            {
                case StepOutcome.Downloadable:
                    downloads.Add(edit);
                    break;
                case StepOutcome.Backlog o when edit.HangfireJob is { } job:
                    jobs.Move(job, new WaitingState(o.Reason, o.DueAt), AtProviderState.StateName);
                    signals.WorkAdded();
                    break;
                case StepOutcome.Failed o when edit.HangfireJob is { } job:
                    jobs.Move(job, new FailedState(new EditFailedException(o.Reason)) { Reason = o.Reason }, AtProviderState.StateName, WaitingState.StateName, ScheduledState.StateName);
                    break;
                case StepOutcome.Cancelled o when edit.HangfireJob is { } job:
                    jobs.Move(job, new DeletedState { Reason = o.Reason }, AtProviderState.StateName, WaitingState.StateName, ScheduledState.StateName);
                    break;
            }
        }

        if (downloads.Count > 0)
        {
            await jobs.EnqueueAsync(downloads, DownloadReason, CancellationToken.None);
        }

        return moved;
    }
}
