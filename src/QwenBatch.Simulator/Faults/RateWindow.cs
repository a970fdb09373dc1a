namespace QwenBatch.Simulator.Faults;

/// <summary>
/// Requests per second per key, in fixed one-second windows on the injected clock. Beyond the limit the caller is told
/// how long until the window turns (whole seconds, at least 1, as Retry-After wants).
/// </summary>
internal sealed class RateWindow(int perSecond, TimeProvider time)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (long Window, int Count)> _keys = [];

    /// <summary>Null when the request may proceed, otherwise the Retry-After in seconds.</summary>
    public int? TryEnter(string key)
    {
        if (perSecond <= 0)
            return null;
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        var window = nowMs / 1000;
        lock (_gate)
        {
            var (current, count) = _keys.GetValueOrDefault(key);
            if (current != window)
                count = 0;
            if (count >= perSecond)
            {
                _keys[key] = (window, count);
                return 1;
            }

            _keys[key] = (window, count + 1);
            return null;
        }
    }
}
