using System.ComponentModel.DataAnnotations;

namespace QwenBatch.Providers.Resilience;

/// <summary>How one provider account's HTTP calls are retried and broken; <c>Providers:&lt;Name&gt;:Resilience</c>.</summary>
public sealed class ResilienceOptions
{
    public const int DefaultMaxRetries = 3;

    /// <summary>Retries of one call inside a step (idempotent GETs; submits only when certainly not accepted).</summary>
    [Range(0, 10)]
    public int MaxRetries { get; set; } = DefaultMaxRetries;

    /// <summary>First retry delay; doubles per retry, with jitter.</summary>
    [Range(typeof(TimeSpan), "00:00:00.001", "00:01:00")]
    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromMilliseconds(250);

    [Range(typeof(TimeSpan), "00:00:00.001", "00:05:00")]
    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>
    /// A Retry-After longer than this is not waited out inside a step: the call fails, and the engine reschedules the job
    /// for after it, so no worker slot sleeps through a long back-off.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:05:00")]
    public TimeSpan MaxInlineRetryAfter { get; set; } = TimeSpan.FromSeconds(5);

    /// <summary>Share of failed calls (5xx, timeouts, connection errors) in the sampling window that opens the circuit.</summary>
    [Range(0.01, 1.0)]
    public double BreakerFailureRatio { get; set; } = 0.5;

    /// <summary>Calls in the window before the ratio counts, so a few unlucky calls do not stop a batch.</summary>
    [Range(2, 10_000)]
    public int BreakerMinimumThroughput { get; set; } = 20;

    [Range(typeof(TimeSpan), "00:00:00.500", "00:10:00")]
    public TimeSpan BreakerSamplingDuration { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>How long an open circuit refuses calls; jobs wait this long instead of failing.</summary>
    [Range(typeof(TimeSpan), "00:00:00.500", "00:30:00")]
    public TimeSpan BreakDuration { get; set; } = TimeSpan.FromSeconds(15);
}
