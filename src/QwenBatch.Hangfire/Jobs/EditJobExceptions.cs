namespace QwenBatch.Hangfire.Jobs;

/// <summary>
/// The edit failed for good (the provider refused it, its input is unusable, the provider failed its task too often):
/// Hangfire shows the job failed and does not retry it. Requeueing the job in the dashboard retries the edit.
/// </summary>
public sealed class EditFailedException : Exception
{
    public EditFailedException()
    {
    }

    public EditFailedException(string message)
        : base(message)
    {
    }

    public EditFailedException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>One attempt of an edit's step failed; Hangfire's retry filter runs the step again with QwenBatch's backoff.</summary>
public sealed class EditStepException : Exception
{
    public EditStepException()
    {
    }

    public EditStepException(string message)
        : base(message)
    {
    }

    public EditStepException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}
