namespace QwenBatch.Simulator.Tasks;

/// <summary>States as the odirouter queue API spells them. Completed, Failed and Canceled are terminal.</summary>
internal enum SimTaskState
{
    InQueue,
    InProgress,
    Completed,
    Failed,
    Canceled,
}

internal static class SimTaskStateExtensions
{
    public static string ToWire(this SimTaskState state) => state switch
    {
        SimTaskState.InQueue => "IN_QUEUE",
        SimTaskState.InProgress => "IN_PROGRESS",
        SimTaskState.Completed => "COMPLETED",
        SimTaskState.Failed => "FAILED",
        SimTaskState.Canceled => "CANCELED",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, null),
    };

    public static bool IsTerminal(this SimTaskState state) =>
        state is SimTaskState.Completed or SimTaskState.Failed or SimTaskState.Canceled;
}

/// <summary>A task's state at one instant; QueuePosition is meaningful for InQueue only.</summary>
internal readonly record struct SimTaskView(SimTaskState State, int QueuePosition);

/// <summary>What a cancel call achieved.</summary>
internal enum CancelOutcome
{
    CancellationRequested,
    AlreadyCompleted,
}
