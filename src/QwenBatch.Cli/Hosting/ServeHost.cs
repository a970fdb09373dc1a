using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using QwenBatch.Dashboard.Hosting;
using QwenBatch.Storage;
using Serilog;
using Serilog.Events;

namespace QwenBatch.Cli.Hosting;

/// <summary>
/// <c>serve</c>'s web host: Hangfire's dashboard with QwenBatch's pages, the REST API and /healthz over the runtime's store
/// and Hangfire storage. The runtime's engine (unless this is a dashboard-only replica) runs beside it.
/// </summary>
internal static class ServeHost
{
    public static async Task<WebApplication> StartAsync(IConfiguration configuration, Runtime runtime, string urls, CancellationToken ct)
    {
        var app = Build(configuration, runtime, web => web.UseUrls(urls));
        try
        {
            await app.StartAsync(ct);
        }
        catch (IOException ex) when (ex.InnerException is Microsoft.AspNetCore.Connections.AddressInUseException)
        {
            await app.DisposeAsync();
            throw new CliException(ExitCodes.UsageOrConfiguration, $"Cannot listen on {urls}: the address is already in use (another serve?); pass another --urls.");
        }
        catch (IOException ex)
        {
            await app.DisposeAsync();
            throw new CliException(ExitCodes.UsageOrConfiguration, $"Cannot listen on {urls}: {ex.Message}");
        }

        return app;
    }

    /// <summary>The web app, not started; <paramref name="server"/> says where it answers (Kestrel on the URLs, or a test server).</summary>
    public static WebApplication Build(IConfiguration configuration, Runtime runtime, Action<IWebHostBuilder> server)
    {
        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Configuration.AddConfiguration(configuration);
        // The host's own "Hosting failed to start" would print the stack of an error serve reports itself, in one line.
        builder.Logging.ClearProviders().AddSerilog(dispose: false).AddFilter<Serilog.Extensions.Logging.SerilogLoggerProvider>("Microsoft.Extensions.Hosting.Internal.Host", LogLevel.None);
        server(builder.WebHost);

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
        builder.Services.AddSingleton(runtime.Providers);
        builder.Services.AddSingleton(runtime.Services.GetRequiredService<global::Hangfire.JobStorage>());
        builder.Services.AddSingleton(runtime.Services.GetRequiredService<global::Hangfire.Common.IJobFilterProvider>());
        builder.Services.AddQwenBatchDashboard(configuration);

        // Provider webhooks: the receiver answers at once and the inbox, running with the web host, moves the edits on.
        builder.Services.AddSingleton<IWebhookStore>(store);
        builder.Services.AddSingleton(runtime.Services.GetRequiredService<QwenBatch.Webhooks.WebhookOptions>());
        builder.Services.AddSingleton(runtime.Services.GetRequiredService<QwenBatch.Webhooks.WebhookSecrets>());
        builder.Services.AddSingleton(runtime.Services.GetRequiredService<QwenBatch.Metrics.WebhookMetrics>());
        builder.Services.AddSingleton(runtime.Services.GetRequiredService<QwenBatch.Hangfire.Webhooks.WebhookInbox>());
        builder.Services.AddHostedService(sp => sp.GetRequiredService<QwenBatch.Hangfire.Webhooks.WebhookInbox>());

        runtime.ObserveFleetGauges();

        // Serilog's request logging: one event per request, with its status and time, through the same redacting logger.
        builder.Services.AddSingleton(new Serilog.Extensions.Hosting.DiagnosticContext(Log.Logger));
        builder.Services.AddSingleton<IDiagnosticContext>(sp => sp.GetRequiredService<Serilog.Extensions.Hosting.DiagnosticContext>());

        var app = builder.Build();
        app.UseSerilogRequestLogging(options =>
        {
            options.MessageTemplate = "HTTP {RequestMethod} {RequestPath} answered {StatusCode} in {Elapsed:0.0} ms";

            // The dashboard's polling, its scripts and styles, probes and scrapes would bury what people do: they log at
            // Debug unless they fail.
            options.GetLevel = (context, _, error) => error is not null || context.Response.StatusCode >= 500 ? LogEventLevel.Error
                : IsBackground(context.Request.Path.Value ?? "") ? LogEventLevel.Debug
                : LogEventLevel.Information;
        });
        app.UseQwenBatchDashboard();
        return app;
    }

    private static readonly string[] Background = ["/hangfire/stats", "/hangfire/css", "/hangfire/js", "/hangfire/fonts", "/healthz", Dashboard.Metrics.MetricsEndpoint.Path];

    private static bool IsBackground(string path) => Background.Any(prefix => path.StartsWith(prefix, StringComparison.OrdinalIgnoreCase));
}
