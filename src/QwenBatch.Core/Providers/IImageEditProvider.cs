namespace QwenBatch.Providers;

/// <summary>
/// One hosted API that runs Qwen Image Edit Plus asynchronously. Clients map the wire format and nothing else: they
/// throw <see cref="ProviderException"/> with a <see cref="ProviderErrorKind"/> and leave retries to the engine.
/// </summary>
public interface IImageEditProvider
{
    /// <summary>Submits one edit; returns the provider's request id once the provider has accepted it.</summary>
    Task<SubmitAccepted> SubmitAsync(EditRequest request, CancellationToken ct);

    /// <summary>One look at a task: still queued or running, or finished with outputs or an error.</summary>
    Task<PollResult> PollAsync(string requestId, CancellationToken ct);

    /// <summary>Asks the provider to cancel a task.</summary>
    Task<CancelOutcome> CancelAsync(string requestId, CancellationToken ct);
}

/// <summary>The provider-neutral request; images are URLs or data URIs, ready to send.</summary>
public sealed record EditRequest(
    string Prompt,
    IReadOnlyList<string> Images,
    string? NegativePrompt,
    string? Size,
    int N,
    long? Seed,
    bool? PromptExtend = null,
    bool? Watermark = null,
    string? OutputFormat = null);

public sealed record SubmitAccepted(string RequestId, int? QueuePosition);

public enum PollStatus
{
    Queued,
    Running,
    Completed,
    Failed,
    Cancelled,

    /// <summary>The provider answered with a status we do not know; logged and polled again later.</summary>
    Unknown,
}

/// <summary>
/// The answer to one poll. <see cref="Outputs"/> is set when completed, <see cref="Error"/> when failed;
/// <see cref="Inference"/> is the provider's own inference time when it reports one.
/// </summary>
public sealed record PollResult(
    PollStatus Status,
    int? QueuePosition = null,
    IReadOnlyList<Edits.ProviderOutput>? Outputs = null,
    string? Error = null,
    string? RawStatus = null,
    TimeSpan? Inference = null)
{
    public static PollResult Queued(int? position) => new(PollStatus.Queued, position);

    public static PollResult Running { get; } = new(PollStatus.Running);
}

public enum CancelOutcome
{
    Requested,
    AlreadyCompleted,
    NotFound,

    /// <summary>The provider has no cancel endpoint: we stop tracking, and the provider may still run and charge the task.</summary>
    Unsupported,
}
