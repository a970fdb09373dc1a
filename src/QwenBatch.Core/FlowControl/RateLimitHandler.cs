using System.Net;
using Microsoft.Extensions.Logging;
using QwenBatch.Providers;
using QwenBatch.Storage;

namespace QwenBatch.FlowControl;

/// <summary>
/// Spends the provider account's shared request allowance on every API request (submits, polls, cancels — downloads use
/// another client and spend nothing), so every worker on the store together stays within the configured rate. A 429
/// that still arrives pauses the account for every worker for its Retry-After and slows the shared rate. A submit the
/// feeder already booked a slot for (<see cref="PrebookedRequest"/>) does not book another.
/// </summary>
public sealed partial class RateLimitHandler(
    IFlowControlStore store,
    string account,
    ProviderOptions options,
    TimeProvider time,
    ILogger<RateLimitHandler> logger) : DelegatingHandler
{
    /// <summary>A booking further ahead than this is not made: the step gives up and its edit waits in the backlog.</summary>
    public static readonly TimeSpan MaxWait = TimeSpan.FromSeconds(20);

    /// <summary>The pause after a 429 that gave no Retry-After.</summary>
    public static readonly TimeSpan DefaultPause = TimeSpan.FromSeconds(2);

    protected override async Task<HttpResponseMessage> SendAsync(HttpRequestMessage request, CancellationToken cancellationToken)
    {
        if (options.RequestInterval is { } interval && !PrebookedRequest.TryUse())
        {
            var wait = await store.ReserveRequestAsync(new RequestReservation(account, interval, options.Burst, MaxWait), cancellationToken);
            if (wait is null)
            {
                throw new ProviderException(ProviderErrorKind.Throttled, $"{account}: request allowance booked more than {MaxWait.TotalSeconds:0} s ahead", retryAfter: MaxWait);
            }

            if (wait > TimeSpan.Zero)
            {
                await Task.Delay(wait.Value, time, cancellationToken);
            }
        }

        var response = await base.SendAsync(request, cancellationToken);
        if (response.StatusCode == HttpStatusCode.TooManyRequests)
        {
            var pause = response.Headers.RetryAfter?.Delta
                ?? (response.Headers.RetryAfter?.Date is { } date ? date - time.GetUtcNow() : (TimeSpan?)null)
                ?? DefaultPause;
            LogPaused(account, pause);
            await store.PauseAccountAsync(account, time.GetUtcNow() + pause, CancellationToken.None);
        }

        return response;
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Provider {Account} answered 429; every worker pauses it for {Pause} and slows down")]
    private partial void LogPaused(string account, TimeSpan pause);
}
