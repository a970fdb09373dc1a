using QwenBatch.Server;

namespace QwenBatch.FlowControl;

/// <summary>
/// Which submits of a latency key nothing was learned of probe it. A scout polls from the first poll delay on the late
/// gap, so its completion is seen within the lag goal and tells when tasks of the key finish; the rest of its wave is
/// parked (<see cref="PollSchedule.Parked"/>) until that completion pulls it forward (<see cref="WaveLessons"/>).
/// Counted per process: each process of a fleet sends its own first scouts, so a fleet learns even while the processes
/// have not synced latencies yet.
/// </summary>
public sealed class LatencyScouts(WorkerOptions options, TimeProvider time)
{
    /// <summary>The first submits of a key that scout: two, so one failed or cancelled task does not leave a wave parked.</summary>
    internal const int First = 2;

    private readonly object _lock = new();
    private readonly Dictionary<LatencyKey, (int Submits, DateTimeOffset LastScout, DateTimeOffset LastSubmit)> _keys = [];

    /// <summary>
    /// Whether this submit of an unlearned <paramref name="key"/> scouts: the first ones, and then one whenever the last
    /// scout went out a max poll interval ago with the key still unlearned (its scouts failed, or were answered too late
    /// to measure): by then the parked edits were polled anyway, and without a scout the process would never learn the
    /// key from its own polls, as a parked edit's first poll measures nothing. Not one in every so many submits: a wave
    /// submitted before its first scouts could report would pay for scouts it does not need.
    /// </summary>
    public bool Enlist(LatencyKey key)
    {
        var now = time.GetUtcNow();
        lock (_lock)
        {
            var (submits, last, _) = _keys.GetValueOrDefault(key);
            var scout = submits < First || now - last >= options.MaxPollInterval;
            _keys[key] = (submits + 1, scout ? now : last, now);
            return scout;
        }
    }

    /// <summary>
    /// Whether a task submitted at <paramref name="submittedAt"/> may have been submitted by this process while the key was
    /// unlearned here (a scout or a parked edit), so its first poll was not scheduled at an estimate.
    /// </summary>
    public bool SubmittedUnlearned(LatencyKey key, DateTimeOffset submittedAt)
    {
        lock (_lock)
        {
            return _keys.TryGetValue(key, out var k) && submittedAt <= k.LastSubmit;
        }
    }
}
