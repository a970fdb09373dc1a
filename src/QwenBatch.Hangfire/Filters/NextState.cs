using Hangfire.Common;
using Hangfire.Server;
using Hangfire.States;

namespace QwenBatch.Hangfire.Filters;

/// <summary>
/// Lets a job method end in a state other than Succeeded: the method puts the state in its <see cref="PerformContext"/>'s
/// items, which Hangfire's worker hands to the state change as custom data, and this filter elects it in place of
/// Succeeded. It runs after Hangfire's retry filter (order 30 after its 20), so a Failed state elected here is final. A
/// job that moves on from a step starts its next step with fresh retries.
/// </summary>
public sealed class NextState : JobFilterAttribute, IElectStateFilter
{
    private const string Key = "QwenBatch.NextState";

    public NextState() => Order = 30;

    /// <summary>The state the job should end this run in.</summary>
    public static void Set(PerformContext context, IState state) => context.Items[Key] = state;

    public void OnStateElection(ElectStateContext context)
    {
        if (context.CandidateState is not SucceededState || context.CustomData?.TryGetValue(Key, out var next) != true || next is not IState state)
        {
            return;
        }

        context.CandidateState = state;
        if (state is not FailedState && context.GetJobParameter<int>("RetryCount", allowStale: true) > 0)
        {
            context.SetJobParameter("RetryCount", 0);
        }
    }
}
