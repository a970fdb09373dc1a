using Microsoft.Extensions.Logging;
using QwenBatch.Edits;
using QwenBatch.Providers;

namespace QwenBatch.Steps;

/// <summary>
/// at_provider with a cancel requested: sends the provider's cancel and ends the job cancelled. A task the provider had
/// already finished is paid for, so it is fetched as usual instead.
/// </summary>
public sealed partial class CancelStep(EditStateChanger changer, ProviderRegistry providers, PollStep poll, TimeProvider time, ILogger<CancelStep> logger) : IJobStep
{
    public bool CanRun(EditRecord job) => job is { State: EditState.AtProvider, CancelRequested: true };

    public static string Describe(CancelOutcome outcome) => outcome switch
    {
        CancelOutcome.Requested => "the provider accepted the cancel",
        CancelOutcome.AlreadyCompleted => "the provider had already finished the task",
        CancelOutcome.NotFound => "the provider did not know the task",
        _ => "the provider has no cancel: tracking stopped, and the provider may still charge for the task",
    };

    public async Task RunAsync(StepContext context, CancellationToken ct)
    {
        var job = context.Current;
        var outcome = await providers.Get(job.Provider).Client.CancelAsync(job.RequestId!, ct);
        LogCancelled(job.Id, job.RequestId!, outcome);
        if (outcome == CancelOutcome.AlreadyCompleted)
        {
            // The same context, so a completion seen here hands the download on to the runner like any poll's.
            context.Current = job with { CancelRequested = false };
            await poll.RunAsync(context, ct);
            return;
        }

        var why = $"cancelled by an operator; {Describe(outcome)}";
        await changer.MoveAsync(job, job with { State = EditState.Cancelled, Error = why, FinishedAt = time.GetUtcNow() }, context.Owner, why);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Job {JobId}: cancel of {RequestId} answered {Outcome}")]
    private partial void LogCancelled(long jobId, string requestId, CancelOutcome outcome);
}
