using System.ComponentModel.DataAnnotations;

namespace QwenBatch.Webhooks;

/// <summary>The <c>Webhooks</c> section: where providers reach <c>serve</c>'s receiver, and how long a delivery may take.</summary>
public sealed class WebhookOptions : IValidatableObject
{
    public const string SectionName = "Webhooks";

    /// <summary>The receiver's fixed path under <see cref="PublicUrl"/>; it sits outside the dashboard's access rule.</summary>
    public const string WaveSpeedPath = "/webhooks/wavespeed";

    /// <summary>
    /// The base at which the provider reaches <c>serve</c> (HTTPS for WaveSpeed, e.g. https://batch.example.com). Unset:
    /// no submit asks for a webhook, and every task is polled.
    /// </summary>
    public Uri? PublicUrl { get; set; }

    /// <summary>How long past a task's expected completion its delivery may take before the poller looks at it instead.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "01:00:00")]
    public TimeSpan FallbackMargin { get; set; } = TimeSpan.FromSeconds(15);

    /// <summary>A delivery's body may be this large; a larger one is refused unread (413).</summary>
    [Range(1024, 64 * 1024 * 1024)]
    public int MaxBodyBytes { get; set; } = 1024 * 1024;

    /// <summary>The address WaveSpeed is given with each submit.</summary>
    public Uri? WaveSpeedUrl => PublicUrl is { } root ? new Uri(root.AbsoluteUri.TrimEnd('/') + WaveSpeedPath) : null;

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (PublicUrl is { } url && (!url.IsAbsoluteUri || (url.Scheme != Uri.UriSchemeHttps && url.Scheme != Uri.UriSchemeHttp) || !string.IsNullOrEmpty(url.Query)))
        {
            yield return new ValidationResult($"Webhooks:PublicUrl must be an absolute http(s) URL without a query (the base at which the provider reaches serve); got '{url}'.", [nameof(PublicUrl)]);
        }
    }
}
