using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using QwenBatch.Dashboard.Hosting;
using QwenBatch.Storage;
using Serilog;

namespace QwenBatch.Cli.Hosting;

/// <summary>
/// <c>serve</c>'s web host: Hangfire's dashboard with QwenBatch's pages, the REST API and /healthz over the runtime's store
/// and Hangfire storage. The runtime's engine (unless this is a dashboard-only replica) runs beside it.
/// </summary>
internal static class ServeHost
{
    public static async Task<WebApplication> StartAsync(IConfiguration configuration, Runtime runtime, string urls, CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Configuration.AddConfiguration(configuration);
        builder.Logging.ClearProviders().AddSerilog(dispose: false);
        builder.WebHost.UseUrls(urls);

        // Instances owned by the runtime: the web host uses them and does not dispose them.
        var store = runtime.Store;
        builder.Services.AddSingleton(store);
        builder.Services.AddSingleton<IBatchStore>(store);
        builder.Services.AddSingleton<IEditStore>(store);
        builder.Services.AddSingleton<IReportReads>(store);
        builder.Services.AddSingleton<IFlowControlStore>(store);
        builder.Services.AddSingleton<IStoreSchema>(store);
        builder.Services.AddSingleton<IContinuationStore>(store);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(runtime.Edits);
        builder.Services.AddSingleton(runtime.Services.GetRequiredService<global::Hangfire.JobStorage>());
        builder.Services.AddSingleton(runtime.Services.GetRequiredService<global::Hangfire.Common.IJobFilterProvider>());
        builder.Services.AddQwenBatchDashboard(configuration);

        var app = builder.Build();
        app.UseQwenBatchDashboard();
        await app.StartAsync(ct);
        return app;
    }
}
