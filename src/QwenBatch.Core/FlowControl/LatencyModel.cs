using QwenBatch.Storage;

namespace QwenBatch.FlowControl;

/// <summary>
/// What a provider's tasks took recently, by provider, n and size class, so the first poll lands near the expected
/// completion instead of on a fixed interval. Learned from completions (an exponentially weighted mean that one outlier
/// cannot drag far), and shared through the store by <see cref="LatencyMemory"/>, so a new process starts warm.
/// </summary>
public sealed class LatencyModel
{
    private const double Weight = 0.2;

    /// <summary>Where in the last gap a completion is taken to have happened, from its end: half way back.</summary>
    private const double EarlyInGap = 0.5;

    /// <summary>One observation moves the estimate at most within this factor of it (a stuck task is not the norm).</summary>
    internal const double OutlierFactor = 2.0;

    private readonly object _lock = new();
    private readonly Dictionary<LatencyKey, Estimate> _estimates = [];

    public static LatencyKey Key(string provider, int n, string? size) => LatencyKey.For(provider, n, size);

    /// <summary>The expected latency of a task like this one, or null before any was seen.</summary>
    public TimeSpan? Expected(LatencyKey key)
    {
        lock (_lock)
        {
            return _estimates.TryGetValue(key, out var e) ? TimeSpan.FromSeconds(e.Seconds) : null;
        }
    }

    public void Observe(LatencyKey key, TimeSpan latency)
    {
        var seconds = Math.Max(0, latency.TotalSeconds);
        lock (_lock)
        {
            if (!_estimates.TryGetValue(key, out var e))
            {
                _estimates[key] = new Estimate { Seconds = seconds, Unsaved = 1 };
                return;
            }

            var bounded = Math.Clamp(seconds, e.Seconds / OutlierFactor, e.Seconds * OutlierFactor);
            e.Seconds += Weight * (bounded - e.Seconds);
            e.Unsaved++;
        }
    }

    /// <summary>
    /// Learns from a completion seen by a poll. A task found finished at the first poll finished at some unknown time
    /// before it, so the estimate is nudged earlier; otherwise the task finished within the last gap between polls, and
    /// the guess is its middle. A first poll that comes too early costs status calls, one that comes too late costs lag;
    /// the nudges at first polls keep the estimate from drifting late. (A quarter into the gap, as before, kept it early
    /// enough to spend 2.9 status calls a task in the race against the WaveSpeed SDK; the middle spends 2.2, for 0.05 s
    /// more lag at the median — docs/benchmarks.md.)
    /// </summary>
    /// <param name="observed">
    /// From the accepted submit to when the poll that saw completion was due. The due time, not when the poll ran: the
    /// estimate schedules due times, and a claim that ran late on a busy machine must not teach a later first poll.
    /// </param>
    /// <param name="pollsBefore">Polls that had seen the task unfinished.</param>
    /// <param name="lastGap">The gap the schedule left before that poll (<see cref="PollSchedule.GapBefore"/>).</param>
    public void ObserveCompletion(LatencyKey key, TimeSpan observed, int pollsBefore, TimeSpan lastGap)
    {
        if (pollsBefore == 0 && Expected(key) is { } expected)
        {
            Observe(key, observed < expected * 0.9 ? observed : expected * 0.9);
            return;
        }

        Observe(key, pollsBefore == 0 ? observed : observed - (lastGap * EarlyInGap));
    }

    /// <summary>The estimates that learned something since they were last saved, with how many completions they saw.</summary>
    public IReadOnlyList<ProviderLatency> Unsaved()
    {
        lock (_lock)
        {
            return _estimates.Where(e => e.Value.Unsaved > 0)
                .Select(e => new ProviderLatency(e.Key.Provider, e.Key.N, e.Key.Size, e.Value.Seconds, e.Value.Unsaved))
                .ToList();
        }
    }

    /// <summary>
    /// Takes the store's estimates (the fleet's, after <paramref name="saved"/> went in). An estimate that learned more
    /// while they were being saved keeps its own value; its newer completions go with the next save.
    /// </summary>
    public void Adopt(IReadOnlyList<ProviderLatency> saved, IReadOnlyList<ProviderLatency> stored)
    {
        lock (_lock)
        {
            foreach (var s in saved)
            {
                if (_estimates.TryGetValue(new LatencyKey(s.Provider, s.N, s.Size), out var e))
                {
                    e.Unsaved = Math.Max(0, e.Unsaved - s.Samples);
                }
            }

            foreach (var s in stored)
            {
                var key = new LatencyKey(s.Provider, s.N, s.Size);
                if (!_estimates.TryGetValue(key, out var e))
                {
                    _estimates[key] = new Estimate { Seconds = s.Seconds };
                }
                else if (e.Unsaved == 0)
                {
                    e.Seconds = s.Seconds;
                }
            }
        }
    }

    private sealed class Estimate
    {
        public double Seconds { get; set; }

        /// <summary>Completions learned from since the last save.</summary>
        public long Unsaved { get; set; }
    }
}

/// <summary>What tasks are alike in latency: the provider, how many outputs, and the output size class.</summary>
/// <param name="Size">A size class (see <see cref="SizeClass"/>); empty for the provider's default size.</param>
public readonly record struct LatencyKey(string Provider, int N, string Size)
{
    private const double Megapixel = 1024 * 1024;

    public static LatencyKey For(string provider, int n, string? size) => new(provider, n, SizeClass(size));

    /// <summary>
    /// Sizes in classes of pixels, each twice the one before (≤0.25MP … ≤1MP, ≤2MP, ≤4MP): 1024*1024 and 1280*768 take
    /// about as long, and a class has more completions to learn from than one exact size. Empty when no size was asked.
    /// </summary>
    public static string SizeClass(string? size)
    {
        if (string.IsNullOrWhiteSpace(size))
        {
            return "";
        }

        var parts = size.Split('*', 'x', 'X');
        if (parts.Length != 2
            || !int.TryParse(parts[0], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var w)
            || !int.TryParse(parts[1], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var h)
            || w == 0 || h == 0)
        {
            return size.Trim().ToLowerInvariant();
        }

        var exponent = Math.Clamp(Math.Ceiling(Math.Log2((double)w * h / Megapixel)), -3, 4);
        return string.Create(System.Globalization.CultureInfo.InvariantCulture, $"<={Math.Pow(2, exponent):0.###}MP");
    }
}
