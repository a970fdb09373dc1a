using Hangfire;
using Hangfire.Server;
using Hangfire.States;

namespace QwenBatch.Hangfire.Jobs;

/// <summary>
/// Ends a job's run in a state other than Succeeded (parked at the provider, waiting in the backlog, failed for good):
/// the job moves itself there through Hangfire's state changer, from Processing, and then ends the way Hangfire ends a
/// job whose state changed under it — with <see cref="JobAbortedException"/>, after which the worker writes nothing more
/// and takes the job off its queue. (A state elected in place of Succeeded by a filter would leave a Succeeded entry in
/// the job's history before it.) A job that moves on from a step starts its next step with fresh retries.
/// </summary>
public sealed class NextState(IBackgroundJobStateChanger states)
{
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public void Set(PerformContext context, IState state)
    {
        Apply(context, state);
        End();
    }

    /// <summary>Moves the job without ending the run; the caller ends it with <see cref="End"/> (a parked job first reads its edit once more).</summary>
    public void Apply(PerformContext context, IState state)
    {
        if (state is not FailedState && context.GetJobParameter<int?>("RetryCount") is > 0)
        {
            context.SetJobParameter("RetryCount", 0);
        }

        // Applied, or not (someone else moved the job meanwhile: a delete from the dashboard): either way this run is over.
        states.ChangeState(new StateChangeContext(context.Storage, context.Connection, context.BackgroundJob.Id, state, ProcessingState.StateName));
    }

    /// <summary>Ends the run the way Hangfire ends one whose job's state changed under it.</summary>
    [System.Diagnostics.CodeAnalysis.DoesNotReturn]
    public static void End() => throw new JobAbortedException();
}
