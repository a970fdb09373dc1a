using Microsoft.Extensions.Logging;

namespace QwenBatch.Simulator.Odirouter;

/// <summary>Log events of the fake odirouter API. Never log the Authorization header or the token.</summary>
internal static partial class OdirouterLog
{
    [LoggerMessage(EventId = 1100, Level = LogLevel.Debug, Message = "Simulator accepted {RequestId}: {Count} image(s) {Width}x{Height}, queue position {QueuePosition}")]
    public static partial void TaskAccepted(this ILogger logger, string requestId, int count, int width, int height, int queuePosition);

    [LoggerMessage(EventId = 1101, Level = LogLevel.Debug, Message = "Simulator rejected a submit: {Detail}")]
    public static partial void SubmitRejected(this ILogger logger, string detail);

    [LoggerMessage(EventId = 1102, Level = LogLevel.Debug, Message = "Simulator refused {Method} {Path}: missing or empty bearer token")]
    public static partial void Unauthorized(this ILogger logger, string method, string path);

    [LoggerMessage(EventId = 1103, Level = LogLevel.Debug, Message = "Simulator cancelled {RequestId}")]
    public static partial void TaskCanceled(this ILogger logger, string requestId);
}
