namespace QwenBatch.Server;

/// <summary>
/// A pulse that wakes a waiting worker. Take <see cref="Next"/> before looking for work and wait on it afterwards, so a
/// pulse that arrives in between is not lost.
/// </summary>
public sealed class WorkSignal
{
    private TaskCompletionSource _next = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Completes at the next pulse.</summary>
    public Task Next => Volatile.Read(ref _next).Task;

    public void Pulse() =>
        Interlocked.Exchange(ref _next, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)).TrySetResult();
}
