using Microsoft.Extensions.Logging;

namespace QwenBatch.Simulator.Webhooks;

/// <summary>Log events of webhook deliveries. Targets appear without query or user info; never the secret or a signature.</summary>
internal static partial class WebhookLog
{
    [LoggerMessage(EventId = 1300, Level = LogLevel.Debug, Message = "Simulator webhook {WebhookId} for {RequestId} delivered to {Target} on attempt {Attempt} ({Detail})")]
    public static partial void WebhookDelivered(this ILogger logger, string webhookId, string requestId, string target, int attempt, string detail);

    [LoggerMessage(EventId = 1301, Level = LogLevel.Debug, Message = "Simulator webhook {WebhookId} for {RequestId}: attempt {Attempt} to {Target} failed ({Detail}), next in {Backoff}")]
    public static partial void WebhookRetrying(this ILogger logger, string webhookId, string requestId, int attempt, string target, string detail, TimeSpan backoff);

    [LoggerMessage(EventId = 1302, Level = LogLevel.Information, Message = "Simulator webhook {WebhookId} for {RequestId}: gave up on {Target} after {Attempts} attempts ({Detail})")]
    public static partial void WebhookGaveUp(this ILogger logger, string webhookId, string requestId, string target, int attempts, string detail);

    [LoggerMessage(EventId = 1303, Level = LogLevel.Debug, Message = "Simulator webhook for {RequestId} dropped (injected fault)")]
    public static partial void WebhookDropped(this ILogger logger, string requestId);

    [LoggerMessage(EventId = 1304, Level = LogLevel.Debug, Message = "Simulator webhook for {RequestId} not sent: the task was cancelled")]
    public static partial void WebhookCanceled(this ILogger logger, string requestId);
}
