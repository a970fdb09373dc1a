using System.ComponentModel.DataAnnotations;

namespace QwenBatch.Simulator;

/// <summary>Behaviour of one simulator instance. Validate with <see cref="Validate"/> (done by <see cref="SimulatorHost.StartAsync"/>).</summary>
internal sealed class SimulatorOptions
{
    public const int DefaultLatencyMinMs = 300;
    public const int DefaultLatencyMaxMs = 800;
    public const int DefaultMaxConcurrent = 16;
    public const decimal DefaultPricePerImage = 0.02m;
    public const double DefaultFailRate = 0;
    public const string DefaultHost = "127.0.0.1";
    public const string WebhookSecretPrefix = "whsec_";
    public const int MaxOutputPadding = 256 * 1024 * 1024;

    /// <summary>Lower bound of a task's processing time (uniform in [min, max]).</summary>
    public TimeSpan LatencyMin { get; set; } = TimeSpan.FromMilliseconds(DefaultLatencyMinMs);

    /// <summary>Upper bound of a task's processing time.</summary>
    public TimeSpan LatencyMax { get; set; } = TimeSpan.FromMilliseconds(DefaultLatencyMaxMs);

    /// <summary>Tasks IN_PROGRESS at once; later tasks wait IN_QUEUE.</summary>
    [Range(1, 100_000)]
    public int MaxConcurrent { get; set; } = DefaultMaxConcurrent;

    /// <summary>USD charged per output image of a completed task.</summary>
    [Range(typeof(decimal), "0", "1000")]
    public decimal PricePerImage { get; set; } = DefaultPricePerImage;

    /// <summary>Share of tasks (0..1) that end FAILED.</summary>
    [Range(0.0, 1.0)]
    public double FailRate { get; set; } = DefaultFailRate;

    /// <summary>API requests per second per key (file downloads do not count); beyond it 429 with Retry-After. 0 = no limit.</summary>
    [Range(0, 1_000_000)]
    public int RateLimit { get; set; }

    /// <summary>Share of API requests (0..1) answered 503 before the handler runs: a submit answered so is not accepted.</summary>
    [Range(0.0, 1.0)]
    public double ErrorRate { get; set; }

    /// <summary>Answer a submit with 429 when <see cref="MaxConcurrent"/> tasks are already queued or running, instead of queueing it.</summary>
    public bool RejectOverConcurrency { get; set; }

    /// <summary>Share of API requests answered only after <see cref="SlowDelay"/>.</summary>
    [Range(0.0, 1.0)]
    public double SlowRate { get; set; }

    public TimeSpan SlowDelay { get; set; } = TimeSpan.FromSeconds(2);

    /// <summary>Share of API requests whose connection is dropped without an answer (a dropped submit is not accepted).</summary>
    [Range(0.0, 1.0)]
    public double DropRate { get; set; }

    /// <summary>Share of file downloads cut off half-way (the full Content-Length is announced).</summary>
    [Range(0.0, 1.0)]
    public double TruncateRate { get; set; }

    /// <summary>Share of API requests answered 200 with JSON cut off half-way (the request is not processed).</summary>
    [Range(0.0, 1.0)]
    public double MalformedRate { get; set; }

    /// <summary>
    /// Bytes of padding added to every PNG output (a private ancillary chunk every decoder skips), so a benchmark can
    /// move outputs of realistic size (2 MB) without paying for encoding them. 0 = none.
    /// </summary>
    [Range(0, MaxOutputPadding)]
    public int OutputPadding { get; set; }

    /// <summary>Share of WaveSpeed webhook events (0..1) never sent, as if lost on the way; counted as dropped.</summary>
    [Range(0.0, 1.0)]
    public double WebhookDropRate { get; set; }

    /// <summary>Share of WaveSpeed webhook events sent twice: the same body and <c>webhook-id</c>, each copy retried on its own.</summary>
    [Range(0.0, 1.0)]
    public double WebhookDuplicateRate { get; set; }

    /// <summary>Share of WaveSpeed webhook events whose <c>webhook-signature</c> is wrong, on every attempt of the event.</summary>
    [Range(0.0, 1.0)]
    public double WebhookBadSignatureRate { get; set; }

    /// <summary>Lower bound of the wait between a task's end and the first attempt of its webhook (uniform in [min, max]).</summary>
    public TimeSpan WebhookDelayMin { get; set; }

    /// <summary>Upper bound of that wait.</summary>
    public TimeSpan WebhookDelayMax { get; set; }

    /// <summary>
    /// The account's webhook secret, <c>whsec_</c> and the key, answered by <c>GET /api/v3/webhook/secret</c> and used to sign
    /// deliveries; null draws a random one for this instance.
    /// </summary>
    public string? WebhookSecret { get; set; }

    /// <summary>Seed for latencies, failures and default output seeds; null = unpredictable.</summary>
    public int? RandomSeed { get; set; }

    /// <summary>IP address (or "localhost") Kestrel listens on.</summary>
    [Required]
    public string Host { get; set; } = DefaultHost;

    /// <summary>Throws <see cref="ArgumentException"/> naming the first invalid option.</summary>
    public void Validate()
    {
        if (LatencyMin < TimeSpan.Zero)
            throw new ArgumentException($"Simulator LatencyMin must be zero or more, got {LatencyMin}.");
        if (LatencyMax < LatencyMin)
            throw new ArgumentException($"Simulator LatencyMax ({LatencyMax}) must not be less than LatencyMin ({LatencyMin}).");
        if (MaxConcurrent < 1)
            throw new ArgumentException($"Simulator MaxConcurrent must be at least 1, got {MaxConcurrent}.");
        if (PricePerImage < 0)
            throw new ArgumentException($"Simulator PricePerImage must be zero or more, got {PricePerImage}.");
        if (double.IsNaN(FailRate) || FailRate < 0 || FailRate > 1)
            throw new ArgumentException($"Simulator FailRate must be between 0 and 1, got {FailRate}.");
        foreach (var (name, rate) in (ReadOnlySpan<(string, double)>)[("ErrorRate", ErrorRate), ("SlowRate", SlowRate), ("DropRate", DropRate), ("TruncateRate", TruncateRate), ("MalformedRate", MalformedRate),
            ("WebhookDropRate", WebhookDropRate), ("WebhookDuplicateRate", WebhookDuplicateRate), ("WebhookBadSignatureRate", WebhookBadSignatureRate)])
        {
            if (double.IsNaN(rate) || rate < 0 || rate > 1)
                throw new ArgumentException($"Simulator {name} must be between 0 and 1, got {rate}.");
        }
        if (RateLimit < 0)
            throw new ArgumentException($"Simulator RateLimit must be zero (no limit) or more, got {RateLimit}.");
        if (OutputPadding < 0 || OutputPadding > MaxOutputPadding)
            throw new ArgumentException($"Simulator OutputPadding must be from 0 to {MaxOutputPadding} bytes, got {OutputPadding}.");
        if (SlowDelay < TimeSpan.Zero)
            throw new ArgumentException($"Simulator SlowDelay must be zero or more, got {SlowDelay}.");
        if (WebhookDelayMin < TimeSpan.Zero)
            throw new ArgumentException($"Simulator WebhookDelayMin must be zero or more, got {WebhookDelayMin}.");
        if (WebhookDelayMax < WebhookDelayMin)
            throw new ArgumentException($"Simulator WebhookDelayMax ({WebhookDelayMax}) must not be less than WebhookDelayMin ({WebhookDelayMin}).");
        // The message never repeats the value: it is a secret.
        if (WebhookSecret is not null
            && (!WebhookSecret.StartsWith(WebhookSecretPrefix, StringComparison.Ordinal) || WebhookSecret.Length == WebhookSecretPrefix.Length || WebhookSecret.Any(char.IsWhiteSpace)))
            throw new ArgumentException($"Simulator WebhookSecret must be \"{WebhookSecretPrefix}\" followed by the key, without spaces.");
        if (string.IsNullOrWhiteSpace(Host))
            throw new ArgumentException("Simulator Host must be an IP address or \"localhost\".");
    }
}
