using Microsoft.Extensions.Logging;

namespace QwenBatch.Simulator.Hosting;

internal static partial class HostLog
{
    [LoggerMessage(EventId = 1000, Level = LogLevel.Information, Message = "Provider simulator listening on {BaseUrl} (max concurrent {MaxConcurrent}, latency {LatencyMin}–{LatencyMax}, fail rate {FailRate})")]
    public static partial void Started(this ILogger logger, Uri baseUrl, int maxConcurrent, TimeSpan latencyMin, TimeSpan latencyMax, double failRate);

    [LoggerMessage(EventId = 1001, Level = LogLevel.Information, Message = "Provider simulator on {BaseUrl} stopped")]
    public static partial void Stopped(this ILogger logger, Uri baseUrl);
}
