using QwenBatch.Edits;

namespace QwenBatch.Steps;

/// <summary>One step of one job: who runs it and where the job stands now (steps move it as they go).</summary>
public sealed class StepContext(string owner, EditRecord job)
{
    /// <summary>Steps one claim may run back to back, so a job whose steps keep coming due at once cannot hog a slot.</summary>
    public const int MaxChainedSteps = 4;

    public string Owner { get; } = owner;

    /// <summary>The job as last moved (written, or <see cref="Unwritten"/>); a failure is recorded against this.</summary>
    public EditRecord Current { get; set; } = job;

    /// <summary>
    /// The job, still leased to this worker, when its next step is already due: the runner runs that step at once instead
    /// of giving the lease back and claiming the job again.
    /// </summary>
    public EditRecord? Next { get; private set; }

    /// <summary>Steps already run under this claim before this one.</summary>
    public int Chained { get; init; }

    /// <summary>The move to <see cref="Current"/> when it was handed on without a write; the job's next write carries it.</summary>
    public UnwrittenMove? Unwritten { get; private set; }

    /// <summary>The context of the handed-on job's next step under the same claim.</summary>
    public StepContext ForNext() =>
        new(Owner, Next ?? throw new InvalidOperationException("No job was handed on.")) { Chained = Chained + 1, Unwritten = Unwritten };

    /// <summary>
    /// Moves the job on. When the next step is due at once (and the chain is not at its bound), the lease is kept and the
    /// job is handed back to the runner as <see cref="Next"/>; otherwise the lease is released as usual.
    /// </summary>
    public async Task<EditRecord?> MoveOnAsync(EditStateChanger changer, EditRecord next, string? reason, DateTimeOffset now)
    {
        var chain = CanChain(next, now);
        var moved = await MoveAsync(changer, next, reason, keepLease: chain);
        Next = chain ? moved : null;
        return moved;
    }

    /// <summary>
    /// Like <see cref="MoveOnAsync"/>, but when the next step runs at once under this lease, the move is not written on its
    /// own: the next step's first write carries it (guarded by the state still stored, with this move's history entry).
    /// For moves whose only purpose is to be remembered across a lost lease (a completion seen by a poll, before its
    /// download): if the worker dies in between, the job comes back in its stored state and that step is run again.
    /// </summary>
    public async Task<EditRecord?> MoveOnUnwrittenAsync(EditStateChanger changer, EditRecord next, string? reason, DateTimeOffset now)
    {
        if (!CanChain(next, now))
        {
            return await MoveOnAsync(changer, next, reason, now);
        }

        if (!EditStateChanger.IsAllowed(Current.State, next.State))
        {
            throw new InvalidOperationException($"Job {Current.Id}: {Current.State} → {next.State} is not an allowed transition.");
        }

        // Two unwritten moves in a row would need two history entries carried: write the first instead.
        if (Unwritten is not null)
        {
            return await MoveOnAsync(changer, next, reason, now);
        }

        Unwritten = new UnwrittenMove(Current.State, reason);
        Current = Next = next;
        return next;
    }

    /// <summary>Writes a move of the job, carrying the <see cref="Unwritten"/> one if any; updates <see cref="Current"/>.</summary>
    public async Task<EditRecord?> MoveAsync(EditStateChanger changer, EditRecord next, string? reason, bool keepLease = false)
    {
        var moved = await changer.MoveAsync(Current, next, Owner, reason, keepLease, Unwritten);

        // Written or missed (someone else moved the job), the unwritten move is settled either way; a store failure (thrown)
        // keeps it for the retry.
        Unwritten = null;
        if (moved is not null)
        {
            Current = moved;
        }

        return moved;
    }

    private bool CanChain(EditRecord next, DateTimeOffset now) =>
        Chained + 1 < MaxChainedSteps && EditStates.Claimable.Contains(next.State) && !next.CancelRequested && next.DueAt <= now;
}

/// <summary>A short unit of work for a job in one claimable state: one submit, one poll or one download.</summary>
public interface IJobStep
{
    /// <summary>True for the jobs this step is for; exactly one step answers true for any claimed job.</summary>
    bool CanRun(EditRecord job);

    Task RunAsync(StepContext context, CancellationToken ct);
}
