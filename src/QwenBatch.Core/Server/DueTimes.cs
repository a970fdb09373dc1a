namespace QwenBatch.Server;

/// <summary>
/// When the jobs this process gave back come due. The dispatcher wakes for the earliest instead of asking the store after
/// every step; the store is still asked whenever nothing of ours is in flight, and the fallback poll and notifications
/// cover work from other processes.
/// </summary>
public sealed class DueTimes
{
    private readonly PriorityQueue<DateTimeOffset, DateTimeOffset> _times = new();
    private readonly object _lock = new();

    public void Add(DateTimeOffset due)
    {
        lock (_lock)
        {
            _times.Enqueue(due, due);
        }
    }

    /// <summary>Forgets the due times up to <paramref name="now"/>: a claim made now takes those jobs (or another worker has).</summary>
    public void ClaimingAt(DateTimeOffset now)
    {
        lock (_lock)
        {
            while (_times.TryPeek(out var due, out _) && due <= now)
            {
                _times.Dequeue();
            }
        }
    }

    /// <summary>The earliest due time not yet claimed for; may be in the past when a job was given back after the claim.</summary>
    public DateTimeOffset? Earliest
    {
        get
        {
            lock (_lock)
            {
                return _times.TryPeek(out var due, out _) ? due : null;
            }
        }
    }
}
