using Hangfire.Common;
using Hangfire.States;

namespace QwenBatch.Hangfire.States;

/// <summary>
/// The edit is back in QwenBatch's backlog (a provider's Retry-After, an outage, a task to submit again, a requeue that
/// waits for the batch's limits): its job waits in no queue until the feeder hands the edit to Hangfire again, no
/// earlier than <see cref="DueAt"/>. Throttled work never churns through Hangfire's queues.
/// </summary>
public sealed class WaitingState(string reason, DateTimeOffset? dueAt) : IState
{
    public const string StateName = "Waiting";

    public DateTimeOffset? DueAt { get; } = dueAt;

    public string Name => StateName;

    public string Reason { get; } = reason;

    public bool IsFinal => false;

    public bool IgnoreJobLoadException => false;

    public Dictionary<string, string> SerializeData() =>
        DueAt is { } due ? new() { ["DueAt"] = JobHelper.SerializeDateTime(due.UtcDateTime) } : [];
}
