using Hangfire.Common;
using Hangfire.States;

namespace QwenBatch.Hangfire.States;

/// <summary>
/// The edit's task is at the provider: the job is parked in no queue, holding no worker, while QwenBatch's poller watches
/// the provider and moves the job on to its download (or to failure) when the provider is done. Not final, so it never
/// expires while the provider works.
/// </summary>
public sealed class AtProviderState(string requestId, string provider, DateTimeOffset submittedAt, DateTimeOffset pollAt) : IState
{
    public const string StateName = "At provider";

    public string RequestId { get; } = requestId;

    public string Provider { get; } = provider;

    public DateTimeOffset SubmittedAt { get; } = submittedAt;

    /// <summary>When the poller first looks (near the task's expected completion).</summary>
    public DateTimeOffset PollAt { get; } = pollAt;

    public string Name => StateName;

    public string Reason => $"accepted by {Provider} as {RequestId}; the poller watches it, holding no worker";

    public bool IsFinal => false;

    public bool IgnoreJobLoadException => false;

    public Dictionary<string, string> SerializeData() => new()
    {
        ["RequestId"] = RequestId,
        ["Provider"] = Provider,
        ["SubmittedAt"] = JobHelper.SerializeDateTime(SubmittedAt.UtcDateTime),
        ["PollAt"] = JobHelper.SerializeDateTime(PollAt.UtcDateTime),
    };
}
