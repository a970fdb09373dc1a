using QwenBatch.Jobs;

namespace QwenBatch.Steps;

/// <summary>One step of one job: who runs it and where the job stands now (steps move it as they go).</summary>
public sealed class StepContext(string owner, JobRecord job)
{
    public string Owner { get; } = owner;

    /// <summary>The job as last written; a failure is recorded against this.</summary>
    public JobRecord Current { get; set; } = job;
}

/// <summary>A short unit of work for a job in one claimable state: one submit, one poll or one download.</summary>
public interface IJobStep
{
    /// <summary>True for the jobs this step is for; exactly one step answers true for any claimed job.</summary>
    bool CanRun(JobRecord job);

    Task RunAsync(StepContext context, CancellationToken ct);
}
