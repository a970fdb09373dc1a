namespace QwenBatch.Jobs;

/// <summary>
/// The closed set of states a job moves through. The happy path is
/// <see cref="Pending"/> → <see cref="Submitting"/> → <see cref="AtProvider"/> → <see cref="Downloading"/> → <see cref="Succeeded"/>.
/// <see cref="Succeeded"/>, <see cref="Failed"/> and <see cref="Cancelled"/> are terminal; <see cref="Held"/> waits for an operator
/// (over budget) and counts as settled but not terminal. Only <see cref="JobStateChanger"/> moves a job between states.
/// </summary>
public enum JobState
{
    /// <summary>Due to be submitted to the provider.</summary>
    Pending,

    /// <summary>A worker is sending the submit; if it dies here the provider may or may not have accepted the task.</summary>
    Submitting,

    /// <summary>Accepted by the provider (request id persisted); polled until it finishes.</summary>
    AtProvider,

    /// <summary>The provider finished; output files are being fetched into the batch folder.</summary>
    Downloading,

    /// <summary>Terminal: every output is on disk.</summary>
    Succeeded,

    /// <summary>Terminal: gave up, with the reason in <c>error</c>.</summary>
    Failed,

    /// <summary>Terminal: cancelled by an operator.</summary>
    Cancelled,

    /// <summary>Parked until an operator acts (for example, the budget would be exceeded).</summary>
    Held,
}

/// <summary>Names as stored in the database, and what each state allows.</summary>
public static class JobStates
{
    /// <summary>States a worker may claim: each has a step to run.</summary>
    public static readonly IReadOnlyList<JobState> Claimable = [JobState.Pending, JobState.AtProvider, JobState.Downloading];

    /// <summary>States that will not change without an operator.</summary>
    public static readonly IReadOnlyList<JobState> Settled = [JobState.Succeeded, JobState.Failed, JobState.Cancelled, JobState.Held];

    public static bool IsTerminal(this JobState state) =>
        state is JobState.Succeeded or JobState.Failed or JobState.Cancelled;

    public static bool IsSettled(this JobState state) => state.IsTerminal() || state == JobState.Held;

    public static string ToDbName(this JobState state) => state switch
    {
        JobState.Pending => "pending",
        JobState.Submitting => "submitting",
        JobState.AtProvider => "at_provider",
        JobState.Downloading => "downloading",
        JobState.Succeeded => "succeeded",
        JobState.Failed => "failed",
        JobState.Cancelled => "cancelled",
        JobState.Held => "held",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, "Unknown job state."),
    };

    public static JobState Parse(string name) => name switch
    {
        "pending" => JobState.Pending,
        "submitting" => JobState.Submitting,
        "at_provider" => JobState.AtProvider,
        "downloading" => JobState.Downloading,
        "succeeded" => JobState.Succeeded,
        "failed" => JobState.Failed,
        "cancelled" => JobState.Cancelled,
        "held" => JobState.Held,
        _ => throw new FormatException($"Unknown job state '{name}' in the store."),
    };
}
