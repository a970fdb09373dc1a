namespace QwenBatch.Edits;

/// <summary>
/// The closed set of states a job moves through. The happy path is
/// <see cref="Pending"/> → <see cref="Submitting"/> → <see cref="AtProvider"/> → <see cref="Downloading"/> → <see cref="Succeeded"/>.
/// <see cref="Succeeded"/>, <see cref="Failed"/> and <see cref="Cancelled"/> are terminal; <see cref="Held"/> waits for an operator
/// (over budget) and counts as settled but not terminal. Only <see cref="EditStateChanger"/> moves a job between states.
/// </summary>
public enum EditState
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
public static class EditStates
{
    /// <summary>States a worker may claim: each has a step to run.</summary>
    public static readonly IReadOnlyList<EditState> Claimable = [EditState.Pending, EditState.AtProvider, EditState.Downloading];

    /// <summary>States that will not change without an operator.</summary>
    public static readonly IReadOnlyList<EditState> Settled = [EditState.Succeeded, EditState.Failed, EditState.Cancelled, EditState.Held];

    public static bool IsTerminal(this EditState state) =>
        state is EditState.Succeeded or EditState.Failed or EditState.Cancelled;

    public static bool IsSettled(this EditState state) => state.IsTerminal() || state == EditState.Held;

    public static string ToDbName(this EditState state) => state switch
    {
        EditState.Pending => "pending",
        EditState.Submitting => "submitting",
        EditState.AtProvider => "at_provider",
        EditState.Downloading => "downloading",
        EditState.Succeeded => "succeeded",
        EditState.Failed => "failed",
        EditState.Cancelled => "cancelled",
        EditState.Held => "held",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, "Unknown job state."),
    };

    public static EditState Parse(string name) => name switch
    {
        "pending" => EditState.Pending,
        "submitting" => EditState.Submitting,
        "at_provider" => EditState.AtProvider,
        "downloading" => EditState.Downloading,
        "succeeded" => EditState.Succeeded,
        "failed" => EditState.Failed,
        "cancelled" => EditState.Cancelled,
        "held" => EditState.Held,
        _ => throw new FormatException($"Unknown job state '{name}' in the store."),
    };
}
