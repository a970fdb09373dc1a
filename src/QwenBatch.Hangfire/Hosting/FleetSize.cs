using Hangfire;

namespace QwenBatch.Hangfire.Hosting;

/// <summary>
/// How many Hangfire workers the fleet has (every server's on the storage that fetches QwenBatch's queue), read from
/// Hangfire's servers list at most every half minute: the feeder keeps the queue as deep as the fleet is wide.
/// </summary>
public sealed class FleetSize(JobStorage storage, HangfireOptions options, TimeProvider time)
{
    private static readonly TimeSpan MaxAge = TimeSpan.FromSeconds(30);
    private (int Workers, DateTimeOffset At)? _last;

    public int Workers
    {
        get
        {
            var now = time.GetUtcNow();
            if (_last is { } last && now - last.At < MaxAge)
            {
                return last.Workers;
            }

            var workers = storage.GetMonitoringApi().Servers()
                .Where(s => s.Queues?.Contains(options.Queue) ?? false)
                .Sum(s => s.WorkersCount);
            workers = Math.Max(workers, options.WorkerCount);
            _last = (workers, now);
            return workers;
        }
    }
}
