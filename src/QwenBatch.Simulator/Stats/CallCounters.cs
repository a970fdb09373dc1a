using System.Collections.Concurrent;

namespace QwenBatch.Simulator.Stats;

/// <summary>Thread-safe call counters of one simulator instance, in total and per key fingerprint.</summary>
internal sealed class CallCounters
{
    private readonly ConcurrentDictionary<string, KeyCounters> _keys = new(StringComparer.Ordinal);
    private readonly ConcurrentDictionary<string, long> _faults = new(StringComparer.Ordinal);
    private long _submits;
    private long _statusCalls;
    private long _resultCalls;
    private long _cancels;
    private long _rateLimited;
    private long _webhooks;
    private long _webhooksDelivered;
    private long _webhooksFailed;
    private long _webhooksDropped;

    public long Submits => Interlocked.Read(ref _submits);
    public long StatusCalls => Interlocked.Read(ref _statusCalls);
    public long ResultCalls => Interlocked.Read(ref _resultCalls);
    public long Cancels => Interlocked.Read(ref _cancels);
    public long RateLimited => Interlocked.Read(ref _rateLimited);
    public long Webhooks => Interlocked.Read(ref _webhooks);
    public long WebhooksDelivered => Interlocked.Read(ref _webhooksDelivered);
    public long WebhooksFailed => Interlocked.Read(ref _webhooksFailed);
    public long WebhooksDropped => Interlocked.Read(ref _webhooksDropped);

    public void CountSubmit(string? key = null)
    {
        Interlocked.Increment(ref _submits);
        if (key is not null)
            Interlocked.Increment(ref Key(key).Submits);
    }

    public void CountStatusCall() => Interlocked.Increment(ref _statusCalls);
    public void CountResultCall() => Interlocked.Increment(ref _resultCalls);
    public void CountCancel() => Interlocked.Increment(ref _cancels);
    public void CountWebhookAttempt() => Interlocked.Increment(ref _webhooks);
    public void CountWebhookDelivered() => Interlocked.Increment(ref _webhooksDelivered);
    public void CountWebhookFailed() => Interlocked.Increment(ref _webhooksFailed);
    public void CountWebhookDropped() => Interlocked.Increment(ref _webhooksDropped);

    public void CountRateLimited(string? key = null)
    {
        Interlocked.Increment(ref _rateLimited);
        if (key is not null)
            Interlocked.Increment(ref Key(key).RateLimited);
    }

    public void CountRequest(string key) => Interlocked.Increment(ref Key(key).Requests);

    public void CountFault(string kind) => _faults.AddOrUpdate(kind, 1, (_, n) => n + 1);

    public IReadOnlyDictionary<string, long> Faults() => new SortedDictionary<string, long>(_faults, StringComparer.Ordinal);

    public IReadOnlyDictionary<string, KeyStats> Keys() => new SortedDictionary<string, KeyStats>(
        _keys.ToDictionary(k => k.Key, k => new KeyStats(Interlocked.Read(ref k.Value.Requests), Interlocked.Read(ref k.Value.Submits), Interlocked.Read(ref k.Value.RateLimited))),
        StringComparer.Ordinal);

    private KeyCounters Key(string key) => _keys.GetOrAdd(key, _ => new KeyCounters());

    private sealed class KeyCounters
    {
        public long Requests;
        public long Submits;
        public long RateLimited;
    }
}

/// <summary>Counts for one API key, shown under its fingerprint.</summary>
internal sealed record KeyStats(long Requests, long Submits, long RateLimited);
