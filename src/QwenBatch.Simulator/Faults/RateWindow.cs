namespace QwenBatch.Simulator.Faults;

/// <summary>
/// Requests per second per key as a token bucket on the injected clock: refilled at the rate, holding at most one
/// second's worth, so a client sending at the rate is never refused for a little jitter, while one sending faster is.
/// Beyond the limit the caller is told how long until a token is back (whole seconds, at least 1, as Retry-After wants).
/// </summary>
internal sealed class RateWindow(int perSecond, TimeProvider time)
{
    private readonly Lock _gate = new();
    private readonly Dictionary<string, (double Tokens, long AtMs)> _keys = [];

    /// <summary>Null when the request may proceed, otherwise the Retry-After in seconds.</summary>
    public int? TryEnter(string key)
    {
        if (perSecond <= 0)
            return null;
        var nowMs = time.GetUtcNow().ToUnixTimeMilliseconds();
        lock (_gate)
        {
            var (tokens, atMs) = _keys.TryGetValue(key, out var bucket) ? bucket : (perSecond, nowMs);
            tokens = Math.Min(perSecond, tokens + ((nowMs - atMs) * perSecond / 1000.0));
            if (tokens < 1)
            {
                _keys[key] = (tokens, nowMs);
                return Math.Max(1, (int)Math.Ceiling((1 - tokens) / perSecond));
            }

            _keys[key] = (tokens - 1, nowMs);
            return null;
        }
    }
}
