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
        pages.MapGet("/batches", BatchPages.ListAsync);
        pages.MapGet("/batches/{id:long}", BatchPages.ShowAsync);
        pages.MapGet("/job/{id:long}", EditPage.ShowAsync);
        pages.MapGet("/job/{id:long}/output/{index:int}", JobFiles.OutputAsync);
        pages.MapGet("/job/{id:long}/input/{index:int}", (long id, int index, IStore store, IOptions<DashboardOptions> o, CancellationToken ct) =>
            JobFiles.InputAsync(id, index, store, o.Value, ct));

        // The filter validates the token itself, so the framework's automatic form check is turned off for these.
        var forms = pages.MapGroup("").AddEndpointFilter(CrossSiteGuard.RequireFormToken).DisableAntiforgery();
        forms.MapPost("/batches/{id:long}/cancel", async (long id, EditStateChanger edits, CancellationToken ct) =>
        {
            await edits.CancelBatchAsync(id, ct);
            return Results.Redirect($"/dashboard/batches/{id}");
        });
        forms.MapPost("/batches/{id:long}/retry", async (long id, EditStateChanger edits, CancellationToken ct) =>
        {
            await edits.RequeueBatchAsync(id, [EditState.Failed, EditState.Cancelled, EditState.Held], ct);
            return Results.Redirect($"/dashboard/batches/{id}");
        });
    }
}
