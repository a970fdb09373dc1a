using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Logging;
using QwenBatch.Hangfire.Webhooks;
using QwenBatch.Metrics;
using QwenBatch.Providers;
using QwenBatch.Providers.WaveSpeed;
using QwenBatch.Storage;
using QwenBatch.Webhooks;

namespace QwenBatch.Dashboard.Webhooks;

/// <summary>
/// WaveSpeed's deliveries at <see cref="WebhookOptions.WaveSpeedPath"/>. The path sits outside the dashboard's access
/// rule, because the provider calls it from outside; what guards it is the delivery itself. A body larger than the limit is
/// refused unread (413); a delivery without its signature headers, with a bad signature or older than 300 s gets 401; one
/// whose id was seen before, or that names no parked edit, changes nothing. A good one is answered 202 at once, and the
/// <see cref="WebhookInbox"/> moves its edit on afterwards.
/// </summary>
internal static partial class WebhookReceiver
{
    public static void Map(IEndpointRouteBuilder endpoints) => endpoints.MapPost(WebhookOptions.WaveSpeedPath, ReceiveAsync);

    private static async Task<IResult> ReceiveAsync(
        HttpContext context, WebhookSecrets secrets, IWebhookStore store, WebhookInbox inbox, WebhookOptions options, WebhookMetrics metrics, TimeProvider time, ILoggerFactory loggers)
    {
        var (result, outcome) = await AnswerAsync(context, secrets, store, inbox, options, time, loggers.CreateLogger(typeof(WebhookReceiver).FullName!));
        metrics.Received(ProviderNames.WaveSpeed, outcome);
        return result;
    }

    /// <summary>The answer to a delivery, and its outcome as the metrics name it.</summary>
    private static async Task<(IResult Result, string Outcome)> AnswerAsync(
        HttpContext context, WebhookSecrets secrets, IWebhookStore store, WebhookInbox inbox, WebhookOptions options, TimeProvider time, ILogger logger)
    {
        if (!secrets.Available)
        {
            return (Refuse(StatusCodes.Status404NotFound, "This server has no WaveSpeed account (Providers:WaveSpeed:ApiKey) to check deliveries with."), "no_secret");
        }

        if (await ReadBodyAsync(context.Request, options.MaxBodyBytes, context.RequestAborted) is not { } body)
        {
            LogRefused(logger, "larger than Webhooks:MaxBodyBytes");
            return (Refuse(StatusCodes.Status413PayloadTooLarge, $"A delivery may have at most {options.MaxBodyBytes} bytes."), "too_large");
        }

        var headers = context.Request.Headers;
        var (id, stamp, signature) = (headers["webhook-id"].ToString(), headers["webhook-timestamp"].ToString(), headers["webhook-signature"].ToString());
        byte[] key;
        try
        {
            key = await secrets.KeyAsync(context.RequestAborted);
        }
        catch (ProviderException ex)
        {
            // WaveSpeed delivers again later; by then the secret may be had.
            LogNoSecret(logger, ex.Message);
            return (Refuse(StatusCodes.Status503ServiceUnavailable, "The webhook secret could not be fetched from the provider; deliver again later."), "no_secret");
        }

        var now = time.GetUtcNow();
        var check = WaveSpeedWebhook.Check(id, stamp, signature, body, key, now);
        if (check == WebhookCheck.BadSignature && await RefetchedAsync(secrets, context.RequestAborted) is { } fresh)
        {
            check = WaveSpeedWebhook.Check(id, stamp, signature, body, fresh, now);
        }

        switch (check)
        {
            case WebhookCheck.NotSigned:
                LogRefused(logger, "without its webhook-id, webhook-timestamp or webhook-signature");
                return (Refuse(StatusCodes.Status401Unauthorized, "A delivery needs its webhook-id, webhook-timestamp and webhook-signature headers."), "not_signed");
            case WebhookCheck.Stale:
                LogRefused(logger, "signed more than 300 s from now");
                return (Refuse(StatusCodes.Status401Unauthorized, "The delivery's webhook-timestamp is more than 300 s from now."), "stale");
            case WebhookCheck.BadSignature:
                LogRefused(logger, "with a signature that does not match");
                return (Refuse(StatusCodes.Status401Unauthorized, "The delivery's signature does not match."), "bad_signature");
        }

        if (WaveSpeedWebhook.Read(body) is not { } delivery)
        {
            LogRefused(logger, "whose body is not a prediction");
            return (Refuse(StatusCodes.Status400BadRequest, "The delivery's body is not a WaveSpeed prediction with an id."), "not_a_prediction");
        }

        // The id is remembered twice as long as a delivery may be old, so no replay of a fresh one gets through.
        if (!await store.RecordDeliveryAsync(ProviderNames.WaveSpeed, id, now - (2 * WaveSpeedWebhook.MaxAge), context.RequestAborted))
        {
            LogReplayed(logger, id);
            return (Results.Ok(new { status = "duplicate", detail = "This webhook-id was received before; nothing changed." }), "duplicate");
        }

        if (!inbox.TryPost(ProviderNames.WaveSpeed, delivery))
        {
            return (Refuse(StatusCodes.Status503ServiceUnavailable, "Too many deliveries waiting; deliver again later."), "busy");
        }

        return (Results.Json(new { status = "accepted" }, statusCode: StatusCodes.Status202Accepted), "accepted");
    }

    /// <summary>The raw body, or null when it is larger than <paramref name="limit"/> (read no further than that).</summary>
    private static async Task<byte[]?> ReadBodyAsync(HttpRequest request, int limit, CancellationToken ct)
    {
        if (request.ContentLength > limit)
        {
            return null;
        }

        using var buffer = new MemoryStream();
        var chunk = new byte[16 * 1024];
        int read;
        while ((read = await request.Body.ReadAsync(chunk, ct)) > 0)
        {
            if (buffer.Length + read > limit)
            {
                return null;
            }

            buffer.Write(chunk, 0, read);
        }

        return buffer.ToArray();
    }

    private static async Task<byte[]?> RefetchedAsync(WebhookSecrets secrets, CancellationToken ct)
    {
        try
        {
            return await secrets.RefetchedKeyAsync(ct);
        }
        catch (ProviderException)
        {
            return null;
        }
    }

    private static IResult Refuse(int status, string error) => Results.Json(new { error }, statusCode: status);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Refused a WaveSpeed webhook delivery {Why}")]
    private static partial void LogRefused(ILogger logger, string why);

    [LoggerMessage(Level = LogLevel.Information, Message = "Ignored a replayed WaveSpeed webhook delivery {DeliveryId}")]
    private static partial void LogReplayed(ILogger logger, string deliveryId);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Could not fetch the WaveSpeed webhook secret: {Error}")]
    private static partial void LogNoSecret(ILogger logger, string error);
}
