namespace QwenBatch.Server;

/// <summary>Exponential backoff with "equal jitter": half the delay is fixed, half random, so retries of many jobs spread out.</summary>
public static class Backoff
{
    /// <param name="attempt">1 for the first retry.</param>
    /// <param name="baseDelay">Delay before the first retry (before jitter).</param>
    /// <param name="maxDelay">Cap (before jitter).</param>
    /// <param name="random01">A number in [0, 1), injected so tests are deterministic.</param>
    public static TimeSpan Delay(int attempt, TimeSpan baseDelay, TimeSpan maxDelay, double random01)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(attempt, 1);
        var exponential = baseDelay.TotalMilliseconds * Math.Pow(2, Math.Min(attempt - 1, 30));
        var capped = Math.Min(exponential, maxDelay.TotalMilliseconds);
        return TimeSpan.FromMilliseconds((capped / 2) + (capped / 2 * random01));
    }
}
