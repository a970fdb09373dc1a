using Hangfire;
using Hangfire.AspNetCore;
using Hangfire.Client;
using Hangfire.Common;
using Hangfire.States;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using QwenBatch.Edits;
using QwenBatch.Feeding;
using QwenBatch.FlowControl;
using QwenBatch.Hangfire.Feeding;
using QwenBatch.Hangfire.Filters;
using QwenBatch.Hangfire.Housekeeping;
using QwenBatch.Hangfire.Jobs;
using QwenBatch.Hangfire.Polling;
using QwenBatch.Hangfire.Schedules;
using QwenBatch.Metrics;
using QwenBatch.Providers;
using QwenBatch.Secrets;
using QwenBatch.Server;
using QwenBatch.Steps;
using QwenBatch.Storage;

namespace QwenBatch.Hangfire.Hosting;

/// <summary>
/// The one place the edit engine is assembled: the state owner and the steps, Hangfire's storage, filters, client and job
/// activator (per process, not Hangfire's static globals, so several engines can live in one test process), and the
/// feeder, poller and housekeeping processes. The composition root adds the store, the provider accounts, the options and
/// the output downloader.
/// </summary>
public static class EngineServices
{
    /// <param name="scope">What the engine works on, asked when the engine is first built (after a <c>run</c> imported its batch).</param>
    public static IServiceCollection AddQwenBatchEngine(this IServiceCollection services, HangfireOptions options, string? postgres, Func<EngineScope> scope)
    {
        services.AddSingleton(options);
        services.AddSingleton(_ => scope());
        services.AddSingleton<JobStorage>(_ => postgres is null ? JobStorages.InMemory() : JobStorages.PostgreSql(postgres, options));

        // The domain: one owner of edit state, and the steps.
        services.AddSingleton<EngineSignals>();
        services.AddMetrics();
        services.AddSingleton<EditMetrics>();
        services.AddSingleton<BacklogGauges>();
        services.AddSingleton<HangfireQueueGauge>();
        services.AddSingleton<IEditMoves>(sp => IEditMoves.All(sp.GetRequiredService<EngineSignals>(), sp.GetRequiredService<EditMetrics>()));
        services.AddSingleton(sp => new EditStateChanger(
            sp.GetRequiredService<IEditStore>(), sp.GetRequiredService<ILogger<EditStateChanger>>(), sp.GetService<SecretRedactor>(), sp.GetRequiredService<IEditMoves>()));
        services.AddSingleton<UnwrittenMoves>();
        services.AddSingleton<StepFailures>();
        services.AddSingleton<Uploads.InputUploads>();
        services.AddSingleton(sp => new EditRequestBuilder(sp.GetRequiredService<Uploads.InputUploads>()));
        services.AddSingleton<LatencyModel>();
        services.AddSingleton<LatencyMemory>();
        services.AddSingleton<PollSchedule>();
        services.AddSingleton<LatencyScouts>();
        services.AddSingleton<WaveLessons>();
        services.AddSingleton<BookedSlots>();
        services.AddSingleton<SubmitStep>();
        services.AddSingleton<DownloadStep>();
        services.AddSingleton<PollStep>();
        services.AddSingleton<IFeedPolicy, FeedPolicy>();

        // Hangfire, with QwenBatch's filters: its own retry filter set to QwenBatch's backoff, the filter that makes the
        // dashboard's buttons act on the edit, and the expiration of finished jobs. This collection replaces Hangfire's
        // global one, so the global filters QwenBatch keeps are added here too: the statistics filter writes the
        // per-hour and per-day counters the dashboard's history graph draws.
        services.AddSingleton<EditStateFilter>();
        services.AddSingleton<IJobFilterProvider>(sp =>
        {
            var filters = new JobFilterCollection();
            filters.Add(EditRetry.Create(sp.GetRequiredService<WorkerOptions>(), sp.GetRequiredService<Func<double>>()));
            filters.Add(sp.GetRequiredService<EditStateFilter>());
            filters.Add(new JobExpiration(options));
            filters.Add(new StatisticsHistoryAttribute());
            return filters;
        });
        services.AddSingleton<IBackgroundJobFactory>(sp => new BackgroundJobFactory(sp.GetRequiredService<IJobFilterProvider>()));
        services.AddSingleton<IBackgroundJobStateChanger>(sp => new BackgroundJobStateChanger(sp.GetRequiredService<IJobFilterProvider>()));
        services.AddSingleton<IBackgroundJobClient>(sp => new BackgroundJobClient(
            sp.GetRequiredService<JobStorage>(), sp.GetRequiredService<IBackgroundJobFactory>(), sp.GetRequiredService<IBackgroundJobStateChanger>()));
        services.AddSingleton<JobActivator>(sp => new AspNetCoreJobActivator(sp.GetRequiredService<IServiceScopeFactory>()));
        services.AddSingleton<NextState>();
        services.AddTransient<EditJob>();
        services.AddTransient<ContinuationJob>();
        services.AddTransient<ScheduleJob>();
        services.AddSingleton<RecurringSchedules>();
        services.AddSingleton<ScheduleRegistrar>();

        // The background processes beside the workers.
        services.AddSingleton<EditJobClient>();
        services.AddSingleton<Submitters>();
        services.AddSingleton<DueProbe>();
        services.AddSingleton<FleetSize>();
        services.AddSingleton<Feeder>();
        services.AddSingleton<VerdictWriter>();
        services.AddSingleton<Poller>();
        services.AddSingleton<Webhooks.WebhookInbox>();
        services.AddSingleton<QwenBatch.Webhooks.WebhookSecrets>();
        services.AddSingleton<WebhookMetrics>();
        services.AddSingleton<Housekeeper>();
        services.AddSingleton<UnwrittenWriter>();
        return services;
    }

    /// <summary>Hangfire's own logging goes where the process's logging goes (Hangfire keeps one log provider per process).</summary>
    public static void UseLogging(ILoggerFactory loggers) => global::Hangfire.Logging.LogProvider.SetCurrentLogProvider(new AspNetCoreLogProvider(loggers));
}
