namespace QwenBatch.FlowControl;

/// <summary>
/// Marks the provider request sent inside its scope as one whose slot of the shared allowance is already booked (the
/// feeder books each submit's slot when it hands the edit to Hangfire, so no worker waits on the limiter). The first
/// request in the scope uses the booked slot; a retry of it books its own, as every request does.
/// </summary>
public static class PrebookedRequest
{
    private static readonly AsyncLocal<Holder?> Current = new();

    /// <summary>The next request in this async flow goes without booking.</summary>
    public static IDisposable Begin()
    {
        var previous = Current.Value;
        Current.Value = new Holder();
        return new Scope(previous);
    }

    /// <summary>True once, for the first request in a scope.</summary>
    internal static bool TryUse() => Current.Value is { } holder && Interlocked.Exchange(ref holder.Unused, 0) == 1;

    private sealed class Holder
    {
        public int Unused = 1;
    }

    private sealed class Scope(Holder? previous) : IDisposable
    {
        public void Dispose() => Current.Value = previous;
    }
}
