using System.Collections.Concurrent;

namespace QwenBatch.FlowControl;

/// <summary>
/// What a provider's tasks took recently, by provider, n and size, so the first poll lands near the expected completion
/// instead of on a fixed interval. Learned from completions this process observed (an exponentially weighted mean).
/// </summary>
public sealed class LatencyModel
{
    private const double Weight = 0.2;
    private readonly ConcurrentDictionary<string, double> _seconds = new();

    public static string Key(string provider, int n, string? size) => $"{provider}|{n}|{size}";

    /// <summary>The expected latency of a task like this one, or null before any was seen.</summary>
    public TimeSpan? Expected(string key) => _seconds.TryGetValue(key, out var s) ? TimeSpan.FromSeconds(s) : null;

    public void Observe(string key, TimeSpan latency) =>
        _seconds.AddOrUpdate(key, latency.TotalSeconds, (_, mean) => mean + (Weight * (latency.TotalSeconds - mean)));

    /// <summary>
    /// Learns from a completion seen by a poll. A task found finished at the first poll finished at some unknown time
    /// before it, so the estimate is nudged earlier; otherwise the task finished within the last gap between polls, and
    /// the middle of that gap is the best guess.
    /// </summary>
    /// <param name="observed">From the accepted submit to the poll that saw completion.</param>
    /// <param name="pollsBefore">Polls that had seen the task unfinished.</param>
    /// <param name="lastGap">The gap the schedule leaves between polls at that point.</param>
    public void ObserveCompletion(string key, TimeSpan observed, int pollsBefore, TimeSpan lastGap)
    {
        if (pollsBefore == 0 && Expected(key) is { } expected)
        {
            Observe(key, observed < expected * 0.9 ? observed : expected * 0.9);
            return;
        }

        Observe(key, pollsBefore == 0 ? observed : observed - (lastGap / 2));
    }
}
