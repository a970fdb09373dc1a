using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using QwenBatch.Dashboard.Metrics;

namespace QwenBatch.Cli.Hosting;

/// <summary>
/// A worker's <c>/metrics</c>, when <c>Metrics:Urls</c> names where to serve it: the same series as <c>serve</c>'s, read
/// from this worker's runtime, under the dashboard's access rule (loopback, or the <c>Dashboard</c> credentials).
/// </summary>
internal static class MetricsHost
{
    public const string UrlsKey = "Metrics:Urls";

    /// <summary>The started web app, or null when no URLs are configured.</summary>
    public static async Task<WebApplication?> StartAsync(IConfiguration configuration, Runtime runtime, CancellationToken ct)
    {
        if (configuration[UrlsKey] is not { Length: > 0 } urls)
        {
            return null;
        }

        var builder = WebApplication.CreateSlimBuilder(new WebApplicationOptions { Args = [] });
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls(urls);
        builder.Services.AddQwenBatchMetricsOnly(configuration);
        runtime.ObserveFleetGauges();
        var app = builder.Build();
        app.UseQwenBatchMetricsOnly();
        try
        {
            await app.StartAsync(ct);
        }
        catch (IOException ex)
        {
            await app.DisposeAsync();
            throw new CliException(ExitCodes.UsageOrConfiguration, $"Cannot serve metrics on {urls} ({UrlsKey}): {ex.Message}");
        }

        await Console.Error.WriteLineAsync($"Metrics at {string.Join(", ", app.Urls.Select(u => u.TrimEnd('/') + MetricsEndpoint.Path))}");
        return app;
    }
}
