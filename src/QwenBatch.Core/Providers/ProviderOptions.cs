using System.ComponentModel.DataAnnotations;

namespace QwenBatch.Providers;

/// <summary>One provider account, from the <c>Providers:&lt;Name&gt;</c> configuration section.</summary>
public sealed class ProviderOptions : IValidatableObject
{
    public const double DefaultRequestTimeoutSeconds = 30;

    /// <summary>
    /// Where the provider posts finished tasks, for a provider with webhooks (WaveSpeed) when <c>Webhooks:PublicUrl</c> is
    /// configured; set by the composition root, not bound from the account's section. Null: the poller watches every task.
    /// </summary>
    public ProviderWebhook? Webhook { get; private set; }

    public void ReceiveWebhooksAt(ProviderWebhook webhook) => Webhook = webhook;

    /// <summary>Base URL of the API, for example https://odirouter.ai/model.</summary>
    public Uri? BaseUrl { get; set; }

    /// <summary>API key; prefer the ODIROUTER_API_KEY / WAVESPEED_API_KEY environment variables. Never logged.</summary>
    public string? ApiKey { get; set; }

    /// <summary>What the provider charges per output image, in USD.</summary>
    [Range(0, 100)]
    public decimal PricePerImage { get; set; }

    /// <summary>Requests per second the account may send across every worker (submits and status polls; not downloads).</summary>
    [Range(0.001, 100000)]
    public double? RequestsPerSecond { get; set; }

    /// <summary>The same limit per minute, for accounts priced that way (used when <see cref="RequestsPerSecond"/> is not set).</summary>
    [Range(0.01, 6000000)]
    public double? RequestsPerMinute { get; set; }

    /// <summary>Requests that may go at once before the rate applies.</summary>
    [Range(1, 10000)]
    public int Burst { get; set; } = 1;

    /// <summary>
    /// The most the account may spend per UTC day (00:00–24:00 UTC), across every worker and batch: spent that day plus
    /// open reservations never exceed it. Jobs that would are held and resume by themselves when the day rolls over or
    /// the cap is raised. None when unset.
    /// </summary>
    [Range(0, 1_000_000)]
    public decimal? DailyBudgetUsd { get; set; }

    /// <summary>Tasks submitted and not finished at once, across every worker.</summary>
    [Range(1, 100000)]
    public int? MaxInFlight { get; set; }

    /// <summary>
    /// Share of the configured rate left unused (default 5%): a request booked for its slot can still reach the provider
    /// a little late, next to the following one, and a provider counting in fixed windows would see them together.
    /// </summary>
    [Range(0, 0.5)]
    public double RateHeadroom { get; set; } = 0.05;

    /// <summary>The spacing between requests the limits ask for, or null when the account has no rate limit.</summary>
    public TimeSpan? RequestInterval =>
        RequestsPerSecond is { } perSecond ? TimeSpan.FromSeconds(1 / (perSecond * (1 - RateHeadroom)))
        : RequestsPerMinute is { } perMinute ? TimeSpan.FromMinutes(1 / (perMinute * (1 - RateHeadroom)))
        : null;

    /// <summary>
    /// What a task is expected to take while the fleet has learned nothing of it (an empty store): the first poll of a
    /// first wave's edits, except its few scouts (see <see cref="FlowControl.LatencyScouts"/>). What the fleet learns
    /// replaces it, key by key. Unset, those edits wait up to <c>Worker:MaxPollInterval</c> for the scouts' first
    /// completion to call them. A prior far too short costs status calls, one far too long costs lag when no scout teaches.
    /// </summary>
    [Range(typeof(TimeSpan), "00:00:00.010", "1.00:00:00")]
    public TimeSpan? ExpectedLatency { get; set; }

    /// <summary>Timeout of one HTTP request to the provider.</summary>
    [Range(typeof(TimeSpan), "00:00:01", "00:10:00")]
    public TimeSpan RequestTimeout { get; set; } = TimeSpan.FromSeconds(DefaultRequestTimeoutSeconds);

    /// <summary>WaveSpeed <c>enable_base64_output</c>: outputs come back inline instead of as URLs.</summary>
    public bool Base64Output { get; set; }

    /// <summary>Retries, circuit breaker and per-attempt timeout of this account's HTTP calls.</summary>
    public Resilience.ResilienceOptions Resilience { get; set; } = new();

    /// <summary>
    /// For a provider that takes uploads (WaveSpeed): each local input image is uploaded once and sent by URL. False sends
    /// local images inline as data URIs, as to odirouter.
    /// </summary>
    public bool UploadInputs { get; set; } = true;

    /// <summary>How long the provider keeps an uploaded file (WaveSpeed documents 7 days).</summary>
    [Range(typeof(TimeSpan), "01:00:00", "30.00:00:00")]
    public TimeSpan UploadKeptFor { get; set; } = TimeSpan.FromDays(7);

    /// <summary>
    /// An uploaded file is not named by a new submit this close to its expiry; it is uploaded again instead. It covers
    /// the time a task may wait at the provider before it fetches its inputs (<c>Worker:JobTimeout</c>) many times over.
    /// </summary>
    [Range(typeof(TimeSpan), "00:01:00", "3.00:00:00")]
    public TimeSpan UploadReuseMargin { get; set; } = TimeSpan.FromDays(1);

    /// <summary>The longest one call can take through the account's pipeline: every attempt timing out, every retry delay at its most.</summary>
    public TimeSpan LongestCall => (RequestTimeout * (Resilience.MaxRetries + 1)) + (Resilience.RetryMaxDelay * Resilience.MaxRetries);

    public IEnumerable<ValidationResult> Validate(ValidationContext validationContext)
    {
        if (UploadReuseMargin >= UploadKeptFor)
        {
            yield return new ValidationResult(
                $"The field UploadReuseMargin must be shorter than UploadKeptFor ({UploadKeptFor}), or no upload would ever be reused.", [nameof(UploadReuseMargin)]);
        }
    }
}

/// <summary>The provider names QwenBatch knows.</summary>
public static class ProviderNames
{
    public const string Odirouter = "odirouter";
    public const string WaveSpeed = "wavespeed";

    /// <summary>The in-process simulator, spoken to with the odirouter client.</summary>
    public const string Simulator = "simulator";

    public static readonly IReadOnlyList<string> All = [Odirouter, WaveSpeed, Simulator];
}

/// <param name="Url">The receiver's address the provider is given with each submit.</param>
/// <param name="FallbackMargin">How long past a task's expected completion its delivery may take before it is polled.</param>
public sealed record ProviderWebhook(Uri Url, TimeSpan FallbackMargin);
