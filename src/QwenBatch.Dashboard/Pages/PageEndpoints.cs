using System.Globalization;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using QwenBatch.Dashboard.Security;
using QwenBatch.Edits;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Pages;

/// <summary>The pages under <c>/dashboard</c>; every POST is a form checked for its antiforgery token.</summary>
internal static class PageEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var pages = app.MapGroup("/dashboard");
        pages.MapGet("", OverviewPage.RenderAsync);
        pages.MapGet("/stats", OverviewPage.StatsAsync);
        pages.MapGet("/batches", BatchPages.ListAsync);
        pages.MapGet("/batches/{id:long}", BatchPages.ShowAsync);
        pages.MapGet("/jobs/{state}", JobPages.ListAsync);
        pages.MapGet("/job/{id:long}", JobPages.ShowAsync);
        pages.MapGet("/job/{id:long}/output/{index:int}", JobFiles.OutputAsync);
        pages.MapGet("/job/{id:long}/input/{index:int}", (long id, int index, IJobStore store, IOptions<DashboardOptions> o, CancellationToken ct) =>
            JobFiles.InputAsync(id, index, store, o.Value, ct));
        pages.MapGet("/servers", (HttpContext context, IJobStore store, TimeProvider time, IOptions<DashboardOptions> o, CancellationToken ct) =>
            ServersPage.RenderAsync(context, store, time, o.Value, ct));

        // The filter validates the token itself, so the framework's automatic form check is turned off for these.
        var forms = pages.MapGroup("").AddEndpointFilter(CrossSiteGuard.RequireFormToken).DisableAntiforgery();
        forms.MapPost("/batches/{id:long}/cancel", async (long id, IJobStore store, CancellationToken ct) =>
        {
            await store.RequestCancelAsync(id, ct);
            return Results.Redirect($"/dashboard/batches/{id}");
        });
        forms.MapPost("/batches/{id:long}/retry", async (long id, IJobStore store, CancellationToken ct) =>
        {
            await store.RequeueAsync(id, [EditState.Failed, EditState.Cancelled, EditState.Held], ct);
            return Results.Redirect($"/dashboard/batches/{id}");
        });
        forms.MapPost("/jobs/bulk", JobPages.BulkAsync);
        SchedulesPage.Map(pages, forms);
    }
}
