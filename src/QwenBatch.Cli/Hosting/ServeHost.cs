using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using QwenBatch.Dashboard.Hosting;
using Serilog;

namespace QwenBatch.Cli.Hosting;

/// <summary>
/// <c>serve</c>'s web host: the dashboard, the REST API and /healthz over the runtime's store, plus the job engine as a
/// hosted service unless this is a dashboard-only replica.
/// </summary>
internal static class ServeHost
{
    public static async Task<WebApplication> StartAsync(IConfiguration configuration, Runtime runtime, string urls, bool withWorker, CancellationToken ct)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Configuration.AddConfiguration(configuration);
        builder.Logging.ClearProviders().AddSerilog(dispose: false);
        builder.WebHost.UseUrls(urls);

        // Instances owned by the runtime: the web host uses them and does not dispose them.
        builder.Services.AddSingleton(runtime.Store);
        builder.Services.AddSingleton(TimeProvider.System);
        builder.Services.AddSingleton(runtime.Schedules);
        builder.Services.AddQwenBatchDashboard(configuration);
        if (withWorker)
        {
            builder.Services.AddSingleton(runtime.Server);
            builder.Services.AddHostedService<WorkerService>();
        }

        var app = builder.Build();
        app.UseQwenBatchDashboard();
        await app.StartAsync(ct);
        return app;
    }
}
