using Hangfire;
using Hangfire.Client;
using Hangfire.Common;
using Hangfire.Server;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using QwenBatch.FlowControl;
using QwenBatch.Hangfire.Feeding;
using QwenBatch.Hangfire.Housekeeping;
using QwenBatch.Hangfire.Polling;
using QwenBatch.Hangfire.Schedules;
using QwenBatch.Server;

namespace QwenBatch.Hangfire.Hosting;

/// <summary>
/// One Hangfire server with QwenBatch's work beside its workers: the workers and Hangfire's schedulers as a
/// BackgroundJobServer would run them (with QwenBatch's filters), plus the feeder, the poller, the housekeeper and the
/// writer of what submits learned while the store was away, as Hangfire background processes of the same server.
/// </summary>
public static class EditServer
{
    public static async Task<IBackgroundProcessingServer> StartAsync(IServiceProvider services, CancellationToken ct)
    {
        var storage = services.GetRequiredService<JobStorage>();
        var options = services.GetRequiredService<HangfireOptions>();
        var worker = services.GetRequiredService<WorkerOptions>();
        var filters = services.GetRequiredService<IJobFilterProvider>();
        var states = services.GetRequiredService<IBackgroundJobStateChanger>();

        // Start warm: what the fleet learned about task latencies decides the first polls.
        await services.GetRequiredService<LatencyMemory>().SyncAsync(ct);

        var performer = new BackgroundJobPerformer(filters, services.GetRequiredService<JobActivator>(), TaskScheduler.Default);
        var processes = new List<IBackgroundProcessDispatcherBuilder>
        {
            new Worker([options.Queue], performer, states).UseBackgroundPool(options.WorkerCount),
            new DelayedJobScheduler(options.SchedulePollingInterval, states).UseBackgroundPool(1),
            new RecurringJobScheduler(services.GetRequiredService<IBackgroundJobFactory>(), options.SchedulePollingInterval, new DefaultTimeZoneResolver())
                .UseBackgroundPool(1),
            services.GetRequiredService<Feeder>().UseBackgroundPool(1),
            services.GetRequiredService<Poller>().UseBackgroundPool(1),
            services.GetRequiredService<Housekeeper>().UseBackgroundPool(1),
            services.GetRequiredService<UnwrittenWriter>().UseBackgroundPool(1),
            services.GetRequiredService<ScheduleRegistrar>().UseBackgroundPool(1),
        };
        var properties = new Dictionary<string, object> { ["Queues"] = new[] { options.Queue }, ["WorkerCount"] = options.WorkerCount };
        return new BackgroundProcessingServer(storage, processes, properties, new BackgroundProcessingServerOptions
        {
            HeartbeatInterval = options.HeartbeatInterval,
            ServerTimeout = options.ServerTimeout,
            ServerCheckInterval = options.ServerTimeout / 2,

            // On stop, steps under way get the grace period to record what they did before their token is cancelled.
            StopTimeout = worker.ShutdownGracePeriod,
            ShutdownTimeout = worker.ShutdownGracePeriod + TimeSpan.FromSeconds(5),
        });
    }

    /// <summary>Stops taking work, lets steps under way finish within the grace period, and waits for the server to end.</summary>
    public static async Task StopAsync(IBackgroundProcessingServer server)
    {
        server.SendStop();
        await server.WaitForShutdownAsync(CancellationToken.None);
        server.Dispose();
    }
}
