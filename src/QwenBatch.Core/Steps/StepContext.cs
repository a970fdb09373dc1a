using QwenBatch.Jobs;

namespace QwenBatch.Steps;

/// <summary>One step of one job: who runs it and where the job stands now (steps move it as they go).</summary>
public sealed class StepContext(string owner, JobRecord job)
{
    /// <summary>Steps one claim may run back to back, so a job whose steps keep coming due at once cannot hog a slot.</summary>
    public const int MaxChainedSteps = 4;

    public string Owner { get; } = owner;

    /// <summary>The job as last written; a failure is recorded against this.</summary>
    public JobRecord Current { get; set; } = job;

    /// <summary>
    /// The job, still leased to this worker, when its next step is already due: the runner runs that step at once instead
    /// of giving the lease back and claiming the job again.
    /// </summary>
    public JobRecord? Next { get; private set; }

    /// <summary>Steps already run under this claim before this one.</summary>
    public int Chained { get; init; }

    /// <summary>
    /// Moves the job on. When the next step is due at once (and the chain is not at its bound), the lease is kept and the
    /// job is handed back to the runner as <see cref="Next"/>; otherwise the lease is released as usual.
    /// </summary>
    public async Task<JobRecord?> MoveOnAsync(JobStateChanger changer, JobRecord next, string? reason, DateTimeOffset now)
    {
        var chain = Chained + 1 < MaxChainedSteps && JobStates.Claimable.Contains(next.State) && !next.CancelRequested && next.DueAt <= now;
        var moved = await changer.MoveAsync(Current, next, Owner, reason, keepLease: chain);
        if (moved is not null)
        {
            Current = moved;
            Next = chain ? moved : null;
        }

        return moved;
    }
}

/// <summary>A short unit of work for a job in one claimable state: one submit, one poll or one download.</summary>
public interface IJobStep
{
    /// <summary>True for the jobs this step is for; exactly one step answers true for any claimed job.</summary>
    bool CanRun(JobRecord job);

    Task RunAsync(StepContext context, CancellationToken ct);
}
