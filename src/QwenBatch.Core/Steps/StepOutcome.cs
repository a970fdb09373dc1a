namespace QwenBatch.Steps;

/// <summary>
/// What a step left the edit in, for whoever runs it (a Hangfire job) to show: parked at the provider, back in the
/// backlog, a failed attempt to retry, failed for good, or done. The edit's own state is already written.
/// </summary>
public abstract record StepOutcome
{
    private StepOutcome()
    {
    }

    /// <summary>The provider accepted the task as <paramref name="RequestId"/>; the poller polls it from <paramref name="PollAt"/>.</summary>
    public sealed record AtProvider(string RequestId, string Provider, DateTimeOffset SubmittedAt, DateTimeOffset PollAt) : StepOutcome;

    /// <summary>Back in QwenBatch's backlog without spending an attempt (nothing was sent); fed again from <paramref name="DueAt"/>.</summary>
    public sealed record Backlog(string Reason, DateTimeOffset DueAt) : StepOutcome;

    /// <summary>A failed attempt: the edit waits for a retry of the same step.</summary>
    public sealed record Retry(Exception Error) : StepOutcome;

    /// <summary>The edit failed for good (the provider refused it, its input is unusable): no retry helps.</summary>
    public sealed record Failed(string Reason) : StepOutcome;

    /// <summary>The provider finished the task: its outputs are to be downloaded.</summary>
    public sealed record Downloadable(int Outputs, string Reason) : StepOutcome;

    /// <summary>The edit ended cancelled (an operator's cancel, sent to the provider; or the provider cancelled it).</summary>
    public sealed record Cancelled(string Reason) : StepOutcome;

    /// <summary>Every output is on disk.</summary>
    public sealed record Succeeded(int Files) : StepOutcome;

    /// <summary>Someone else moved the edit first (a cancel, another run of its job): this step did nothing.</summary>
    public sealed record Moved : StepOutcome
    {
        public static Moved Instance { get; } = new();
    }
}

/// <summary>The edit's own input is unusable (a missing image file, for example): retrying will not help.</summary>
public sealed class EditInputException : Exception
{
    public EditInputException()
    {
    }

    public EditInputException(string message)
        : base(message)
    {
    }

    public EditInputException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
