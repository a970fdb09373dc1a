using Microsoft.Extensions.Logging;
using QwenBatch.Jobs;
using QwenBatch.Providers;
using QwenBatch.Server;

namespace QwenBatch.Steps;

/// <summary>pending → submitting → at_provider: sends the job to its provider and records the request id at once.</summary>
public sealed partial class SubmitStep(
    JobStateChanger changer,
    ProviderRegistry providers,
    EditRequestBuilder requests,
    WorkerOptions options,
    TimeProvider time,
    ILogger<SubmitStep> logger) : IJobStep
{
    public JobState Handles => JobState.Pending;

    public async Task RunAsync(StepContext context, CancellationToken ct)
    {
        var job = context.Current;
        var provider = providers.Get(job.Provider).Client;
        var request = await requests.BuildAsync(job.Spec, ct);

        // Checkpoint: from here until the request id is stored the provider may accept a task we cannot see. A crash in
        // this window leaves the job in 'submitting'; the rescuer counts it as an uncertain submit before trying again.
        var submitting = await changer.MoveAsync(job, job with { State = JobState.Submitting }, context.Owner, reason: null, keepLease: true);
        if (submitting is null)
        {
            return;
        }

        context.Current = submitting;
        var accepted = await provider.SubmitAsync(request, ct);

        // Persist the request id before anything else: it is what prevents a second paid submit after a crash.
        var now = time.GetUtcNow();
        var atProvider = submitting with
        {
            State = JobState.AtProvider,
            RequestId = accepted.RequestId,
            AcceptedSubmits = submitting.AcceptedSubmits + 1,
            Attempt = 0,
            Polls = 0,
            Error = null,
            SubmittedAt = now,
            DueAt = now + options.FirstPollDelay,
        };
        var stored = await changer.MoveAsync(submitting, atProvider, context.Owner, $"accepted as {accepted.RequestId}");
        if (stored is null)
        {
            LogAcceptedButNotRecorded(job.Id, accepted.RequestId);
        }
    }

    [LoggerMessage(Level = LogLevel.Error, Message = "Job {JobId} was accepted as {RequestId} but another worker took it over first; the provider may run it twice")]
    private partial void LogAcceptedButNotRecorded(long jobId, string requestId);
}
