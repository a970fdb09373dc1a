namespace QwenBatch.Providers;

/// <summary>How a provider call failed, which decides what the engine may do next.</summary>
public enum ProviderErrorKind
{
    /// <summary>The request certainly did not take effect (connection refused, 429, a 5xx before acceptance): safe to repeat.</summary>
    NotAccepted,

    /// <summary>The request may have taken effect (a timeout or broken connection after sending a submit): repeating may duplicate.</summary>
    Uncertain,

    /// <summary>The provider refused the request as invalid (4xx): repeating will not help.</summary>
    Rejected,

    /// <summary>The provider does not know the task (404 on a request id).</summary>
    NotFound,

    /// <summary>Not sent: the account's shared request allowance is booked too far ahead. Wait; this is no failure of the job.</summary>
    Throttled,

    /// <summary>
    /// The call was not sent because the provider is known to be down (its circuit is open): certainly not accepted. The
    /// job waits for <see cref="ProviderException.RetryAfter"/> without spending one of its attempts.
    /// </summary>
    Unavailable,
}

/// <summary>A failed provider call. The message never contains credentials.</summary>
public sealed class ProviderException : Exception
{
    public ProviderException(ProviderErrorKind kind, string message, int? statusCode = null, TimeSpan? retryAfter = null, Exception? inner = null)
        : base(message, inner)
    {
        Kind = kind;
        StatusCode = statusCode;
        RetryAfter = retryAfter;
    }

    public ProviderException()
    {
    }

    public ProviderException(string message)
        : base(message)
    {
    }

    public ProviderException(string message, Exception innerException)
        : base(message, innerException)
    {
    }

    public ProviderErrorKind Kind { get; }

    public int? StatusCode { get; }

    public TimeSpan? RetryAfter { get; }
}
