using Microsoft.Extensions.Logging;
using QwenBatch.FlowControl;
using QwenBatch.Edits;
using QwenBatch.Providers;
using QwenBatch.Server;

namespace QwenBatch.Steps;

/// <summary>at_provider: one status check; reschedules itself, or moves the job on to downloading, a resubmit or failed.</summary>
public sealed partial class PollStep(
    EditStateChanger changer,
    ProviderRegistry providers,
    WorkerOptions options,
    PollSchedule schedule,
    LatencyModel latency,
    TimeProvider time,
    ILogger<PollStep> logger) : IJobStep
{
    public bool CanRun(EditRecord job) => job is { State: EditState.AtProvider, CancelRequested: false };

    public async Task RunAsync(StepContext context, CancellationToken ct)
    {
        var job = context.Current;
        var account = providers.Get(job.Provider);
        var now = time.GetUtcNow();
        var elapsed = now - (job.SubmittedAt ?? now);
        if (elapsed > options.JobTimeout)
        {
            await TimeOutAsync(context, account, elapsed, ct);
            return;
        }

        PollResult result;
        try
        {
            result = await account.Client.PollAsync(job.RequestId!, ct);
        }
        catch (ProviderException ex) when (ex.Kind == ProviderErrorKind.NotFound)
        {
            result = new PollResult(PollStatus.Failed, Error: "the provider no longer knows this request");
        }

        now = time.GetUtcNow();
        var key = LatencyModel.Key(job.Provider, job.Spec.N, job.Spec.Size);
        switch (result.Status)
        {
            case PollStatus.Completed:
                var outputs = result.Outputs!;
                var due = job.DueAt - job.SubmittedAt!.Value;
                if (schedule.RanOnTime(due, now - job.DueAt))
                {
                    latency.ObserveCompletion(key, due, job.Polls, schedule.GapBefore(due, job.Polls, latency.Expected(key)));
                }


                // Settle: the reservation becomes the actual charge for the images the provider made. The download is due
                // at once, so it runs next under this same lease, and this move goes with the download's first write (one
                // write fewer per job; the charge is written once, with it). Lost with the worker, it is only a poll to
                // do again: the job is still at_provider in the store, and the task still completed at the provider.
                await context.MoveOnUnwrittenAsync(changer, job with
                {
                    State = EditState.Downloading,
                    Outputs = outputs,
                    CostUsd = job.CostUsd + (outputs.Count * account.Options.PricePerImage),
                    ReservedUsd = 0,
                    StartedAt = job.StartedAt ?? now,
                    Attempt = 0,
                    Error = null,
                    DueAt = now,
                }, CompletedReason(result), now);
                break;

            case PollStatus.Failed when job.AcceptedSubmits <= options.MaxProviderResubmits:
                LogResubmitting(job.Id, job.RequestId!, result.Error ?? "unknown");
                await context.MoveOnAsync(changer, job with
                {
                    State = EditState.Pending,
                    RequestId = null,
                    ReservedUsd = 0,
                    Attempt = 0,
                    Polls = 0,
                    Error = result.Error,
                    DueAt = now,
                }, $"provider task {job.RequestId} failed: {result.Error}; submitting again", now);
                break;

            case PollStatus.Failed:
                await changer.MoveAsync(job, job with { State = EditState.Failed, Error = result.Error, FinishedAt = now },
                    context.Owner, $"provider task {job.RequestId} failed: {result.Error}");
                break;

            case PollStatus.Cancelled:
                await changer.MoveAsync(job, job with { State = EditState.Cancelled, Error = "cancelled at the provider", FinishedAt = now },
                    context.Owner, "cancelled at the provider");
                break;

            default:
                var polls = job.Polls + 1;
                var started = result.Status == PollStatus.Running ? job.StartedAt ?? now : job.StartedAt;
                await changer.MoveAsync(job, job with
                {
                    Polls = polls,
                    Attempt = 0,
                    StartedAt = started,
                    DueAt = now + schedule.Next(now - job.SubmittedAt!.Value, polls, latency.Expected(key)),
                }, context.Owner, reason: null);
                break;
        }
    }

    /// <summary>What the history keeps of a completion: outputs, NSFW flags and the provider's inference time when reported.</summary>
    internal static string CompletedReason(PollResult result)
    {
        var outputs = result.Outputs!;
        var reason = $"completed with {outputs.Count} output(s)";
        var flagged = outputs.Count(o => o.HasNsfw == true);
        if (flagged > 0)
        {
            reason += $", {flagged} flagged NSFW by the provider";
        }

        return result.Inference is { } inference ? $"{reason}, inference {inference.TotalMilliseconds:0} ms" : reason;
    }

    private async Task TimeOutAsync(StepContext context, ProviderAccount account, TimeSpan elapsed, CancellationToken ct)
    {
        var job = context.Current;
        var outcome = await account.Client.CancelAsync(job.RequestId!, ct);
        var why = $"timed out: still at the provider after the {options.JobTimeout} Worker:JobTimeout; cancel sent: {CancelStep.Describe(outcome)}";
        LogTimedOut(job.Id, why);
        await changer.MoveAsync(job, job with { State = EditState.Failed, Error = why, FinishedAt = time.GetUtcNow() }, context.Owner, why);
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: provider task {RequestId} failed ({Error}); submitting again")]
    private partial void LogResubmitting(long jobId, string requestId, string error);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId} {Reason}")]
    private partial void LogTimedOut(long jobId, string reason);
}
