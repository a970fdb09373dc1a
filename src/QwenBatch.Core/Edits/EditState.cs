namespace QwenBatch.Edits;

/// <summary>
/// The closed set of states an edit moves through. The happy path is
/// <see cref="Pending"/> → <see cref="Queued"/> → <see cref="Submitting"/> → <see cref="AtProvider"/> → <see cref="Downloading"/>
/// → <see cref="Succeeded"/>. <see cref="Succeeded"/>, <see cref="Failed"/> and <see cref="Cancelled"/> are terminal;
/// <see cref="Held"/> waits for an operator (over budget) and counts as settled but not terminal. Only
/// <see cref="EditStateChanger"/> moves an edit between states.
/// </summary>
public enum EditState
{
    /// <summary>In QwenBatch's backlog, due at its due time: no Hangfire job is working on it.</summary>
    Pending,

    /// <summary>
    /// Handed to Hangfire by the feeder, within the fleet's limits: its cost is reserved against the budgets and its
    /// request slot booked; its Hangfire job is enqueued (or waiting for a retry) to submit it.
    /// </summary>
    Queued,

    /// <summary>A worker is sending the submit; if it dies here the provider may or may not have accepted the task.</summary>
    Submitting,

    /// <summary>Accepted by the provider (request id persisted); parked, polled by the poller until it finishes.</summary>
    AtProvider,

    /// <summary>The provider finished; a Hangfire job fetches the output files into the batch folder.</summary>
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
    /// <summary>States that will not change without an operator.</summary>
    public static readonly IReadOnlyList<EditState> Settled = [EditState.Succeeded, EditState.Failed, EditState.Cancelled, EditState.Held];

    /// <summary>States in which the edit's Hangfire job has a step to run (or is about to).</summary>
    public static readonly IReadOnlyList<EditState> NeedsWorker = [EditState.Queued, EditState.Submitting, EditState.Downloading];

    /// <summary>States counted against a provider's <c>MaxInFlight</c>: handed to Hangfire and not finished at the provider.</summary>
    public static readonly IReadOnlyList<EditState> InFlight = [EditState.Queued, EditState.Submitting, EditState.AtProvider];

    public static bool IsTerminal(this EditState state) =>
        state is EditState.Succeeded or EditState.Failed or EditState.Cancelled;

    public static bool IsSettled(this EditState state) => state.IsTerminal() || state == EditState.Held;

    public static string ToDbName(this EditState state) => state switch
    {
        EditState.Pending => "pending",
        EditState.Queued => "queued",
        EditState.Submitting => "submitting",
        EditState.AtProvider => "at_provider",
        EditState.Downloading => "downloading",
        EditState.Succeeded => "succeeded",
        EditState.Failed => "failed",
        EditState.Cancelled => "cancelled",
        EditState.Held => "held",
        _ => throw new ArgumentOutOfRangeException(nameof(state), state, "Unknown edit state."),
    };

    public static EditState Parse(string name) => name switch
    {
        "pending" => EditState.Pending,
        "queued" => EditState.Queued,
        "submitting" => EditState.Submitting,
        "at_provider" => EditState.AtProvider,
        "downloading" => EditState.Downloading,
        "succeeded" => EditState.Succeeded,
        "failed" => EditState.Failed,
        "cancelled" => EditState.Cancelled,
        "held" => EditState.Held,
        _ => throw new FormatException($"Unknown edit state '{name}' in the store."),
    };
}
