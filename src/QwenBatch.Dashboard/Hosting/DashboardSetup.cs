using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using QwenBatch.Dashboard.Api;
using QwenBatch.Dashboard.Batches;
using QwenBatch.Dashboard.Metrics;
using QwenBatch.Dashboard.Security;
using Hangfire;
using Microsoft.Extensions.Options;

namespace QwenBatch.Dashboard.Hosting;

/// <summary>Adds the dashboard and API to an ASP.NET Core app: options, antiforgery, the loopback/credentials gate, routes.</summary>
public static class DashboardSetup
{
    /// <summary>
    /// Registers options from <c>Dashboard</c> (the storage root defaults to <c>Storage:Root</c>) and Hangfire's dashboard
    /// services. Needs the store, a TimeProvider, the edit state owner, and Hangfire's <see cref="JobStorage"/> and job
    /// filter provider (so the dashboard's buttons go through QwenBatch's filters).
    /// </summary>
    public static IServiceCollection AddQwenBatchDashboard(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<DashboardOptions>().Configure(o =>
        {
            o.StorageRoot = configuration["Storage:Root"] is { Length: > 0 } root ? root : o.StorageRoot;
            configuration.GetSection(DashboardOptions.SectionName).Bind(o);
        });
        services.AddRouting();
        services.AddQwenBatchMetrics();

        // Hangfire's dashboard services, over the storage and filters registered before (TryAdd keeps them).
        services.AddHangfire((_, _) => { });
        services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "qwenbatch.antiforgery";
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.FormFieldName = "__RequestVerificationToken";
        });
        return services;
    }

    /// <summary>The gate first (nothing answers a refused request), security headers, then the routes.</summary>
    public static IApplicationBuilder UseQwenBatchDashboard(this IApplicationBuilder app)
    {
        app.UseMiddleware<RequestGate>();
        app.Use(async (context, next) =>
        {
            var headers = context.Response.Headers;
            headers.XContentTypeOptions = "nosniff";
            headers.XFrameOptions = "DENY";
            headers.ContentSecurityPolicy = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; frame-ancestors 'none'";
            await next(context);
        });
        var options = app.ApplicationServices.GetRequiredService<IOptions<DashboardOptions>>().Value;
        app.UseHangfireDashboard("/hangfire", new global::Hangfire.DashboardOptions
        {
            // Access is the gate's rule above (loopback, or the configured credentials), for Hangfire's pages as for ours.
            Authorization = [],
            IsReadOnlyFunc = _ => options.ReadOnly,
            DashboardTitle = "QwenBatch",
            AppPath = null,
        });
        BatchPages.Register();
        app.UseRouting();
        app.UseEndpoints(endpoints =>
        {
            endpoints.MapGet("/", () => Results.Redirect("/hangfire/batches"));
            OldAddresses.Map(endpoints);
            endpoints.MapQwenBatchMetrics();
            ApiEndpoints.Map(endpoints);
            Webhooks.WebhookReceiver.Map(endpoints);
        });
        return app;
    }
}
