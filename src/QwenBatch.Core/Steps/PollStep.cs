using Microsoft.Extensions.Logging;
using QwenBatch.Jobs;
using QwenBatch.Providers;
using QwenBatch.Server;

namespace QwenBatch.Steps;

/// <summary>at_provider: one status check; reschedules itself, or moves the job on to downloading, a resubmit or failed.</summary>
public sealed partial class PollStep(
    JobStateChanger changer,
    ProviderRegistry providers,
    WorkerOptions options,
    TimeProvider time,
    Func<double> random,
    ILogger<PollStep> logger) : IJobStep
{
    public JobState Handles => JobState.AtProvider;

    public async Task RunAsync(StepContext context, CancellationToken ct)
    {
        var job = context.Current;
        var account = providers.Get(job.Provider);
        PollResult result;
        try
        {
            result = await account.Client.PollAsync(job.RequestId!, ct);
        }
        catch (ProviderException ex) when (ex.Kind == ProviderErrorKind.NotFound)
        {
            result = new PollResult(PollStatus.Failed, Error: "the provider no longer knows this request");
        }

        var now = time.GetUtcNow();
        switch (result.Status)
        {
            case PollStatus.Completed:
                var outputs = result.Outputs!;
                await changer.MoveAsync(job, job with
                {
                    State = JobState.Downloading,
                    Outputs = outputs,
                    CostUsd = job.CostUsd + (outputs.Count * account.Options.PricePerImage),
                    Attempt = 0,
                    Error = null,
                    DueAt = now,
                }, context.Owner, CompletedReason(result));
                break;

            case PollStatus.Failed when job.AcceptedSubmits <= options.MaxProviderResubmits:
                LogResubmitting(job.Id, job.RequestId!, result.Error ?? "unknown");
                await changer.MoveAsync(job, job with
                {
                    State = JobState.Pending,
                    RequestId = null,
                    Attempt = 0,
                    Polls = 0,
                    Error = result.Error,
                    DueAt = now,
                }, context.Owner, $"provider task {job.RequestId} failed: {result.Error}; submitting again");
                break;

            case PollStatus.Failed:
                await changer.MoveAsync(job, job with { State = JobState.Failed, Error = result.Error, FinishedAt = now },
                    context.Owner, $"provider task {job.RequestId} failed: {result.Error}");
                break;

            case PollStatus.Cancelled:
                await changer.MoveAsync(job, job with { State = JobState.Cancelled, Error = "cancelled at the provider", FinishedAt = now },
                    context.Owner, "cancelled at the provider");
                break;

            default:
                var polls = job.Polls + 1;
                await changer.MoveAsync(job, job with { Polls = polls, Attempt = 0, DueAt = now + NextPollDelay(polls) }, context.Owner, reason: null);
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

    /// <summary>Grows by half each poll from the first delay, capped, with ±20% jitter so polls of a batch spread out.</summary>
    internal TimeSpan NextPollDelay(int polls)
    {
        var grown = options.FirstPollDelay.TotalMilliseconds * Math.Pow(1.5, Math.Min(polls, 40));
        var capped = Math.Min(grown, options.MaxPollInterval.TotalMilliseconds);
        return TimeSpan.FromMilliseconds(capped * (0.8 + (0.4 * random())));
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Job {JobId}: provider task {RequestId} failed ({Error}); submitting again")]
    private partial void LogResubmitting(long jobId, string requestId, string error);
}
