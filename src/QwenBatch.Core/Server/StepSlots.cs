namespace QwenBatch.Server;

/// <summary>
/// Which of a server's steps hold one of its <see cref="WorkerOptions.Concurrency"/> slots. A step whose work is done and
/// that only waits for the write giving its job back (a group commit round trip) holds none: the dispatcher may claim
/// another job meanwhile, so a slot does not idle while the database writes. The job itself stays leased to this server
/// until that write is durable, so nobody else can take it, and every step is still waited for on stop. At most
/// <c>Concurrency</c> finishing steps are discounted, so a server never has more than twice its slots in flight.
/// </summary>
public sealed class StepSlots
{
    private readonly WorkSignal _freed = new();
    private int _finishing;

    /// <summary>Steps now waiting only for the write that gives their job back.</summary>
    public int Finishing => Volatile.Read(ref _finishing);

    /// <summary>Completes when a slot may have come free: a step started finishing, or one ended.</summary>
    public Task Freed => _freed.Next;

    /// <summary>A step's work is done; what is left is its last write.</summary>
    public void FinishingStarted()
    {
        Interlocked.Increment(ref _finishing);
        _freed.Pulse();
    }

    /// <summary>That write returned (or failed): the step runs on, if it does, in the slot count again.</summary>
    public void FinishingEnded() => Interlocked.Decrement(ref _finishing);

    /// <summary>A step ended.</summary>
    public void Ended() => _freed.Pulse();

    /// <summary>Free slots, given the steps in flight (every one not yet ended, finishing or not).</summary>
    public int Free(int concurrency, int inFlight) => concurrency - inFlight + Math.Min(Finishing, concurrency);
}
