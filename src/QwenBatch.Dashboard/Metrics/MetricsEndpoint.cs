using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using OpenTelemetry.Metrics;
using QwenBatch.Metrics;

namespace QwenBatch.Dashboard.Metrics;

/// <summary>
/// <c>/metrics</c> in Prometheus text: QwenBatch's meter exported through OpenTelemetry. OpenTelemetry's Prometheus
/// exporter keeps the instruments' names, units and descriptions (counters get <c>_total</c>, seconds <c>_seconds</c>),
/// and the meters it listens to may live in another container of the same process (the runtime's).
/// </summary>
public static class MetricsEndpoint
{
    public const string Path = "/metrics";

    public static IServiceCollection AddQwenBatchMetrics(this IServiceCollection services)
    {
        services.AddOpenTelemetry().WithMetrics(metrics => metrics.AddMeter(EditMetrics.MeterName)
            // Every scrape reads the gauges afresh: the exporter's default 300 ms answer cache let a scrape just after a change
            // report the state before it. Scrapes come seconds apart, and each costs two small counter reads.
            .AddPrometheusExporter(o => o.ScrapeResponseCacheDurationMilliseconds = 0));
        return services;
    }

    public static IEndpointRouteBuilder MapQwenBatchMetrics(this IEndpointRouteBuilder endpoints)
    {
        endpoints.MapPrometheusScrapingEndpoint(Path);
        return endpoints;
    }

    /// <summary>A web app that serves only <c>/metrics</c> (a worker's), under the dashboard's access rule and its <c>Dashboard</c> credentials.</summary>
    public static IServiceCollection AddQwenBatchMetricsOnly(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<DashboardOptions>().Configure(o => configuration.GetSection(DashboardOptions.SectionName).Bind(o));
        services.AddRouting();
        return services.AddQwenBatchMetrics();
    }

    public static IApplicationBuilder UseQwenBatchMetricsOnly(this IApplicationBuilder app)
    {
        app.UseMiddleware<Security.RequestGate>();
        app.UseRouting();
        app.UseEndpoints(endpoints => endpoints.MapQwenBatchMetrics());
        return app;
    }
}
