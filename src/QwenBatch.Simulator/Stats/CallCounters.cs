namespace QwenBatch.Simulator.Stats;

/// <summary>Thread-safe call counters of one simulator instance.</summary>
internal sealed class CallCounters
{
    private long _submits;
    private long _statusCalls;
    private long _resultCalls;
    private long _cancels;
    private long _rateLimited;

    public long Submits => Interlocked.Read(ref _submits);
    public long StatusCalls => Interlocked.Read(ref _statusCalls);
    public long ResultCalls => Interlocked.Read(ref _resultCalls);
    public long Cancels => Interlocked.Read(ref _cancels);
    public long RateLimited => Interlocked.Read(ref _rateLimited);

    public void CountSubmit() => Interlocked.Increment(ref _submits);
    public void CountStatusCall() => Interlocked.Increment(ref _statusCalls);
    public void CountResultCall() => Interlocked.Increment(ref _resultCalls);
    public void CountCancel() => Interlocked.Increment(ref _cancels);
    public void CountRateLimited() => Interlocked.Increment(ref _rateLimited);
}
