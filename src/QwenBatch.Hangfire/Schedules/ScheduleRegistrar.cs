using Hangfire.Server;
using Microsoft.Extensions.Logging;
using QwenBatch.Hangfire.Hosting;
using QwenBatch.Storage;

namespace QwenBatch.Hangfire.Schedules;

/// <summary>
/// Keeps Hangfire's recurring jobs in step with QwenBatch's schedule definitions, on every server that serves the fleet:
/// at start and every half minute, each active schedule is registered (when new or changed) and each paused or removed
/// one unregistered. On PostgreSQL the <c>schedule</c> commands register at once too; on the embedded store, where
/// Hangfire lives in a worker's memory, this is how a worker learns of them.
/// </summary>
public sealed partial class ScheduleRegistrar(IScheduleStore schedules, RecurringSchedules recurring, EngineScope scope, TimeProvider time, ILogger<ScheduleRegistrar> logger)
    : IBackgroundProcessAsync
{
    public static readonly TimeSpan Interval = TimeSpan.FromSeconds(30);

    private readonly Dictionary<string, string> _registered = new(StringComparer.Ordinal);
    private bool _looked;

    /// <summary>
    /// One round. Hangfire runs a background process on a scheduler of its own with one thread; the round runs on the
    /// thread pool instead, so that no wait inside it (Hangfire's synchronous filters among them) can wait on that one
    /// thread for a continuation queued behind itself.
    /// </summary>
    public Task ExecuteAsync(BackgroundProcessContext context) => Task.Run(() => RoundAsync(context), CancellationToken.None);

    private async Task RoundAsync(BackgroundProcessContext context)
    {
        var ct = context.StoppingToken;
        if (!scope.ServesFleet)
        {
            await Task.Delay(Timeout.Infinite, ct).ContinueWith(_ => { }, TaskScheduler.Default);
            return;
        }

        try
        {
            await SyncAsync(ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            LogSyncFailed(ex);
        }

        try
        {
            await Task.Delay(Interval, time, ct);
        }
        catch (OperationCanceledException)
        {
        }
    }

    public async Task SyncAsync(CancellationToken ct)
    {
        var active = (await schedules.GetSchedulesAsync(ct)).Where(s => !s.Paused).ToDictionary(s => s.Name, StringComparer.Ordinal);
        foreach (var schedule in active.Values)
        {
            var d = schedule.Definition;
            var signature = $"{d.Cron}|{d.TimeZone}|{d.CatchUp}";
            if (_registered.TryGetValue(d.Name, out var known) && known == signature)
            {
                continue;
            }

            recurring.Register(d);
            _registered[d.Name] = signature;
            LogRegistered(d.Name, d.Cron, d.TimeZone);
        }

        // Schedules removed or paused while this server ran, and, at start, while none did.
        var stale = _registered.Keys.Where(n => !active.ContainsKey(n)).ToList();
        if (!_looked)
        {
            stale.AddRange(recurring.Registered().Where(n => !active.ContainsKey(n)));
            _looked = true;
        }

        foreach (var name in stale.Distinct(StringComparer.Ordinal))
        {
            recurring.Unregister(name);
            _registered.Remove(name);
            LogUnregistered(name);
        }
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Schedule {Schedule} registered as a recurring job: {Cron} in {TimeZone}")]
    private partial void LogRegistered(string schedule, string cron, string timeZone);

    [LoggerMessage(Level = LogLevel.Information, Message = "Schedule {Schedule} is paused or removed; its recurring job is removed")]
    private partial void LogUnregistered(string schedule);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Syncing schedules with Hangfire's recurring jobs failed; trying again shortly")]
    private partial void LogSyncFailed(Exception ex);
}
