namespace QwenBatch.Cli.Hosting;

/// <summary>
/// The documented exit codes; other tools depend on them. Each code's meaning is stated once here, and every command's
/// help is built from it, naming only the codes that command can return.
/// </summary>
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

    private static readonly Dictionary<int, string> Meanings = new()
    {
        [UsageOrConfiguration] = "usage or configuration error",
        [InvalidManifest] = "invalid manifest (nothing enqueued)",
        [JobsDidNotSucceed] = "batch finished with failed, cancelled or held jobs",
        [Interrupted] = "interrupted (state kept, rerun resumes)",
    };

    /// <summary>Every code with its meaning, for the root command's help.</summary>
    public static string All { get; } = Help("all jobs succeeded",
        UsageOrConfiguration, InvalidManifest, JobsDidNotSucceed, Interrupted);

    /// <summary>
    /// The "Exit codes:" line of one command's help: <paramref name="success"/> says what 0 means for that command, then
    /// each other code it can return, with its documented meaning and what else it covers there.
    /// </summary>
    public static string Help(string success, params CommandExit[] codes) =>
        $"Exit codes: {Success} {success}"
        + string.Concat(codes.Select(c => $"; {c.Code} {Meanings[c.Code]}{(c.Also is null ? "" : $" (or {c.Also})")}"))
        + ".";
}

/// <summary>A code a command can return; <see cref="Also"/> says what else it covers for that command ("no such batch").</summary>
internal readonly record struct CommandExit(int Code, string? Also = null)
{
    public static implicit operator CommandExit(int code) => new(code);
}

/// <summary>An expected failure with its exit code and a message for the user (no stack trace).</summary>
internal sealed class CliException(int exitCode, string message) : Exception(message)
{
    public int ExitCode { get; } = exitCode;
}
