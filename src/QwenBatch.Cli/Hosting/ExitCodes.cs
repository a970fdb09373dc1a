namespace QwenBatch.Cli.Hosting;

/// <summary>The documented exit codes; other tools depend on them.</summary>
internal static class ExitCodes
{
    /// <summary>Every job succeeded.</summary>
    public const int Success = 0;

    /// <summary>Wrong usage or configuration.</summary>
    public const int UsageOrConfiguration = 1;

    /// <summary>The manifest is invalid; nothing was enqueued.</summary>
    public const int InvalidManifest = 2;

    /// <summary>The batch ended with failed, cancelled or held jobs.</summary>
    public const int JobsDidNotSucceed = 3;

    /// <summary>Interrupted; state is kept and a rerun resumes.</summary>
    public const int Interrupted = 130;

    public const string Help = "Exit codes: 0 all jobs succeeded; 1 usage or configuration error; 2 invalid manifest (nothing enqueued); "
        + "3 batch finished with failed, cancelled or held jobs; 130 interrupted (state kept, rerun resumes).";
}

/// <summary>An expected failure with its exit code and a message for the user (no stack trace).</summary>
internal sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
