using System.Net;
using System.Net.Sockets;
using Microsoft.Extensions.Logging;
using Polly;
using Polly.CircuitBreaker;
using Polly.Retry;
using Polly.Timeout;

namespace QwenBatch.Providers.Resilience;

/// <summary>
/// The one place that composes a provider's HTTP pipeline: retry (outermost) → circuit breaker → per-attempt timeout.
/// Clients stay thin; <see cref="ResilienceHandler"/> runs the pipeline under their HttpClient.
/// </summary>
public static partial class ProviderResilience
{
    /// <summary>The request an attempt is for: the retry policy decides by its method.</summary>
    internal static readonly ResiliencePropertyKey<HttpRequestMessage> RequestKey = new("qwenbatch.request");

    public static ResiliencePipeline<HttpResponseMessage> Build(
        string provider, ResilienceOptions options, TimeSpan attemptTimeout, TimeProvider time, ILogger logger, Func<double>? random = null)
    {
        var retry = new RetryStrategyOptions<HttpResponseMessage>
        {
            MaxRetryAttempts = Math.Max(options.MaxRetries, 1),
            BackoffType = DelayBackoffType.Exponential,
            UseJitter = true,
            Delay = options.RetryBaseDelay,
            MaxDelay = options.RetryMaxDelay,
            ShouldHandle = args => ValueTask.FromResult(options.MaxRetries > 0 && ShouldRetry(args.Outcome, args.Context, options.MaxInlineRetryAfter)),
            DelayGenerator = args => ValueTask.FromResult(RetryAfter(args.Outcome.Result) is { } after && after > TimeSpan.Zero ? after : (TimeSpan?)null),
            OnRetry = args =>
            {
                if (logger.IsEnabled(LogLevel.Debug))
                {
                    var request = args.Context.Properties.GetValue(RequestKey, null!);
                    var method = request?.Method.Method ?? "?";
                    var path = request?.RequestUri?.AbsolutePath ?? "?";
                    var outcome = Describe(args.Outcome);
                    LogRetrying(logger, provider, method, path, args.AttemptNumber + 1, args.RetryDelay, outcome);
                }

                return default;
            },
        };
        if (random is not null)
        {
            retry.Randomizer = random;
        }

        var breaker = new CircuitBreakerStrategyOptions<HttpResponseMessage>
        {
            FailureRatio = options.BreakerFailureRatio,
            MinimumThroughput = options.BreakerMinimumThroughput,
            SamplingDuration = options.BreakerSamplingDuration,
            BreakDuration = options.BreakDuration,
            ShouldHandle = args => ValueTask.FromResult(IsOutage(args.Outcome)),
            OnOpened = args =>
            {
                var outcome = Describe(args.Outcome);
                LogOpened(logger, provider, args.BreakDuration, outcome);
                return default;
            },
            OnClosed = _ =>
            {
                LogClosed(logger, provider);
                return default;
            },
        };

        return new ResiliencePipelineBuilder<HttpResponseMessage> { Name = provider, TimeProvider = time }
            .AddRetry(retry)
            .AddCircuitBreaker(breaker)
            .AddTimeout(attemptTimeout)
            .Build();
    }

    /// <summary>
    /// GET and PUT are idempotent here (status, result, cancel), and so is a POST marked
    /// <see cref="ProviderHttp.Repeatable"/> (an upload): retried on anything transient. A POST submit is retried only when
    /// the provider certainly did not accept it — refused connection, 429, 503 — never after a timeout or a broken
    /// connection, which the engine records as an uncertain submit instead.
    /// </summary>
    internal static bool ShouldRetry(Outcome<HttpResponseMessage> outcome, ResilienceContext context, TimeSpan maxInlineRetryAfter)
    {
        var request = context.Properties.GetValue(RequestKey, null!);
        var idempotent = request is null || request.Method != HttpMethod.Post || (request.Options.TryGetValue(ProviderHttp.Repeatable, out var repeatable) && repeatable);
        if (outcome.Exception is { } error)
        {
            return error switch
            {
                BrokenCircuitException => false,
                HttpRequestException { InnerException: SocketException { SocketErrorCode: SocketError.ConnectionRefused } } => true,
                HttpRequestException or TimeoutRejectedException => idempotent,
                _ => false,
            };
        }

        var response = outcome.Result!;
        var status = (int)response.StatusCode;
        if (RetryAfter(response) is { } after && after > maxInlineRetryAfter)
        {
            return false;
        }

        return status switch
        {
            429 or 503 => true,
            408 or >= 500 => idempotent,
            _ => false,
        };
    }

    /// <summary>What counts against the circuit: the provider failing, not the provider refusing (4xx, 429).</summary>
    internal static bool IsOutage(Outcome<HttpResponseMessage> outcome) => outcome.Exception switch
    {
        HttpRequestException or TimeoutRejectedException => true,
        null => (int)outcome.Result!.StatusCode >= 500,
        _ => false,
    };

    /// <summary>Retry-After in seconds (the form the providers and the simulator send); an HTTP-date is left to the engine.</summary>
    internal static TimeSpan? RetryAfter(HttpResponseMessage? response) => response?.Headers.RetryAfter?.Delta;

    private static string Describe(Outcome<HttpResponseMessage> outcome) =>
        outcome.Exception is { } ex ? ex.GetType().Name : $"HTTP {(int)outcome.Result!.StatusCode}";

    [LoggerMessage(Level = LogLevel.Debug, Message = "{Provider}: retry {Retry} of {Method} {Path} in {Delay} after {Outcome}")]
    private static partial void LogRetrying(ILogger logger, string provider, string method, string path, int retry, TimeSpan delay, string outcome);

    [LoggerMessage(Level = LogLevel.Warning, Message = "{Provider}: circuit opened for {BreakDuration} after {Outcome}; jobs wait instead of failing")]
    private static partial void LogOpened(ILogger logger, string provider, TimeSpan breakDuration, string outcome);

    [LoggerMessage(Level = LogLevel.Information, Message = "{Provider}: circuit closed, calls flow again")]
    private static partial void LogClosed(ILogger logger, string provider);
}
