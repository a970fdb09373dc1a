using Microsoft.Extensions.Logging;
using QwenBatch.Server;

namespace QwenBatch.Schedules;

/// <summary>The scheduler as a worker's maintenance loop: a tick at start (catch-up), then every poll interval.</summary>
public sealed partial class ScheduleLoop(ScheduleRunner runner, ScheduleOptions options, TimeProvider time, ILogger<ScheduleLoop> logger) : IServerLoop
{
    public async Task RunAsync(string serverId, CancellationToken ct)
    {
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await runner.TickAsync(serverId, ct);
                await Task.Delay(options.PollInterval, time, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // A store outage must not end the loop; the next tick catches up (catch-up runs the missed occurrence once).
                LogTickFailed(ex);
                try
                {
                    await Task.Delay(options.PollInterval, time, ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    [LoggerMessage(Level = LogLevel.Warning, Message = "Looking for due schedules failed; trying again at the next interval")]
    private partial void LogTickFailed(Exception ex);
}
