namespace QwenBatch.Simulator.Webhooks;

/// <summary>
/// When a failed delivery is tried again. WaveSpeed's pages say deliveries are retried but not how often; the simulator
/// makes 5 attempts, 1, 2, 4 and 8 s apart, so a receiver down for a moment still gets the event and one down for good
/// sees the attempts stop.
/// </summary>
internal static class WebhookSchedule
{
    public const int MaxAttempts = 5;

    /// <summary>How long one attempt may take before it counts as failed (a receiver that never answers).</summary>
    public static readonly TimeSpan AttemptTimeout = TimeSpan.FromSeconds(10);

    private static readonly TimeSpan FirstBackoff = TimeSpan.FromSeconds(1);

    /// <summary>The wait after failed attempt <paramref name="attempt"/> (1-based): 1 s, doubled after each.</summary>
    public static TimeSpan BackoffAfter(int attempt) => FirstBackoff * (1 << (attempt - 1));
}
