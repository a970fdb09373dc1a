using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using QwenBatch.Continuations;
using QwenBatch.Outputs;
using QwenBatch.Providers;
using QwenBatch.Retention;
using QwenBatch.Schedules;
using QwenBatch.Secrets;
using QwenBatch.Server;
using QwenBatch.Storage;

namespace QwenBatch.Hangfire.Hosting;

/// <summary>What a QwenBatch process is built from; the parts its composition root (the CLI, a test, a benchmark) chooses.</summary>
/// <param name="Accounts">The provider accounts, by name, with their base URLs and keys.</param>
/// <param name="Store">Opens QwenBatch's store (PostgreSQL or SQLite).</param>
/// <param name="HangfirePostgres">The fleet's PostgreSQL for Hangfire's storage; null for Hangfire in this process's memory.</param>
/// <param name="Scope">What the engine works on, asked when the engine is first built.</param>
public sealed record QwenBatchParts(
    IReadOnlyDictionary<string, ProviderOptions> Accounts,
    Func<IServiceProvider, IStore> Store,
    string? HangfirePostgres,
    Func<EngineScope> Scope,
    WorkerOptions Worker,
    HangfireOptions Hangfire,
    RetentionOptions Retention,
    ContinuationOptions Continuations,
    SecretRedactor Redactor,
    TimeProvider Time);

/// <summary>The one composition of a QwenBatch process: the store by role, the provider accounts, the outputs, and the engine.</summary>
public static class QwenBatchServices
{
    public static IServiceCollection AddQwenBatch(this IServiceCollection services, QwenBatchParts parts)
    {
        services.AddSingleton(parts.Time);
        services.AddSingleton(parts.Worker);
        services.AddSingleton(parts.Redactor);
        services.AddSingleton<Func<double>>(Random.Shared.NextDouble);

        // One store object serves every role; consumers ask for the narrow one they need.
        services.AddSingleton(parts.Store);
        services.AddSingleton<IStoreSchema>(sp => sp.GetRequiredService<IStore>());
        services.AddSingleton<IBatchStore>(sp => sp.GetRequiredService<IStore>());
        services.AddSingleton<IEditStore>(sp => sp.GetRequiredService<IStore>());
        services.AddSingleton<IFlowControlStore>(sp => sp.GetRequiredService<IStore>());
        services.AddSingleton<IReportReads>(sp => sp.GetRequiredService<IStore>());
        services.AddSingleton<IContinuationStore>(sp => sp.GetRequiredService<IStore>());
        services.AddSingleton<IRetentionStore>(sp => sp.GetRequiredService<IStore>());
        services.AddSingleton<IScheduleStore>(sp => sp.GetRequiredService<IStore>());
        services.AddSingleton<IUploadStore>(sp => sp.GetRequiredService<IStore>());
        services.AddSingleton<IWebhookStore>(sp => sp.GetRequiredService<IStore>());

        services.AddHttpClient(nameof(OutputDownloader), http => http.Timeout = TimeSpan.FromMinutes(5))
            .ConfigurePrimaryHttpMessageHandler(OutputDownloader.CreateHandler);
        services.AddSingleton(sp => new OutputDownloader(sp.GetRequiredService<IHttpClientFactory>().CreateClient(nameof(OutputDownloader))));
        services.AddProviderAccounts(parts.Accounts, parts.Time);

        services.AddSingleton<ScheduleRunner>();
        services.AddSingleton(parts.Retention);
        services.AddSingleton<RetentionSweep>();
        services.AddSingleton(parts.Continuations);
        services.AddHttpClient(nameof(ContinuationRunner), http => http.Timeout = TimeSpan.FromSeconds(30));
        services.AddSingleton(sp => new ContinuationRunner(sp.GetRequiredService<IStore>(), parts.Continuations,
            sp.GetRequiredService<IHttpClientFactory>().CreateClient(nameof(ContinuationRunner)), parts.Time, sp.GetRequiredService<ILogger<ContinuationRunner>>()));

        return services.AddQwenBatchEngine(parts.Hangfire, parts.HangfirePostgres, parts.Scope);
    }
}
