using System.ComponentModel.DataAnnotations;

namespace QwenBatch.Continuations;

/// <summary>How workers fire batch continuations; the <c>Continuations</c> configuration section.</summary>
public sealed class ContinuationOptions
{
    public const string SectionName = "Continuations";

    /// <summary>How often each worker looks for settled batches with a continuation.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>Signs every webhook body (HMAC-SHA256, header <c>X-QwenBatch-Signature: sha256=&lt;hex&gt;</c>); unsigned when empty.</summary>
    public string? WebhookSecret { get; set; }

    /// <summary>Attempts of one webhook POST, the first included.</summary>
    [Range(1, 20)]
    public int WebhookAttempts { get; set; } = 5;

    /// <summary>First retry delay; doubles per attempt.</summary>
    [Range(typeof(TimeSpan), "00:00:00", "00:10:00")]
    public TimeSpan WebhookRetryDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>
    /// How long a claimed continuation is its claimer's alone; one whose result was not recorded by then (the claimer died)
    /// is fired again by another worker. Longer than every webhook attempt and delay together.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:10", "1.00:00:00")]
    public TimeSpan ClaimLease { get; set; } = TimeSpan.FromMinutes(10);
}
