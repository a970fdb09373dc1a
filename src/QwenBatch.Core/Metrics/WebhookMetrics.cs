using System.Diagnostics.Metrics;

namespace QwenBatch.Metrics;

/// <summary>
/// Provider webhook deliveries as <c>serve</c>'s receiver answered them, by provider and outcome: <c>accepted</c>,
/// <c>duplicate</c>, and the refusals (<c>not_signed</c>, <c>bad_signature</c>, <c>stale</c>, <c>too_large</c>,
/// <c>not_a_prediction</c>, <c>busy</c>, <c>no_secret</c>). Refusals that climb are forged traffic or a rotated secret;
/// accepted ones falling behind submits are deliveries lost on the way.
/// </summary>
public sealed class WebhookMetrics
{
    private readonly Counter<long> _received;

    public WebhookMetrics(IMeterFactory meters)
    {
        var meter = meters.Create(EditMetrics.MeterName);
        _received = meter.CreateCounter<long>("qwenbatch.webhooks.received", description: "Provider webhook deliveries, by how the receiver answered them");
    }

    public void Received(string provider, string outcome) =>
        _received.Add(1, new KeyValuePair<string, object?>("provider", provider), new KeyValuePair<string, object?>("outcome", outcome));
}
