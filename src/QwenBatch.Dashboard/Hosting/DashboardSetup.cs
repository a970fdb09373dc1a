using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.DependencyInjection.Extensions;
using QwenBatch.Dashboard.Api;
using QwenBatch.Dashboard.Pages;
using QwenBatch.Dashboard.Security;
using QwenBatch.Schedules;

namespace QwenBatch.Dashboard.Hosting;

/// <summary>Adds the dashboard and API to an ASP.NET Core app: options, antiforgery, the loopback/credentials gate, routes.</summary>
public static class DashboardSetup
{
    /// <summary>Registers options from <c>Dashboard</c> (the storage root defaults to <c>Storage:Root</c>). Needs an IJobStore and a TimeProvider.</summary>
    public static IServiceCollection AddQwenBatchDashboard(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<DashboardOptions>().Configure(o =>
        {
            o.StorageRoot = configuration["Storage:Root"] is { Length: > 0 } root ? root : o.StorageRoot;
            configuration.GetSection(DashboardOptions.SectionName).Bind(o);
        });
        services.AddRouting();

        // The schedules page's "trigger now" fires in this process; a host that composes its own runner (serve) keeps it.
        services.TryAddSingleton<ScheduleOptions>();
        services.TryAddSingleton<ScheduleRunner>();
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
        app.UseRouting();
        app.UseEndpoints(endpoints =>
        {
            endpoints.MapGet("/", () => Results.Redirect("/dashboard"));
            PageEndpoints.Map(endpoints);
            ApiEndpoints.Map(endpoints);
        });
        return app;
    }
}
