using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Hosting;

/// <summary>
/// The batch pages live in Hangfire's dashboard; links and bookmarks to <c>/dashboard/…</c> keep working as permanent
/// redirects to the same thing there. The gate still stands in front of them.
/// </summary>
internal static class OldAddresses
{
    public static void Map(IEndpointRouteBuilder app)
    {
        var old = app.MapGroup("/dashboard");
        old.MapGet("/batches/{id:long}", (long id) => Results.Redirect($"/hangfire/batches/{id}", permanent: true));
        old.MapGet("/job/{id:long}", async (long id, IStore store, CancellationToken ct) => await store.GetEditAsync(id, ct) switch
        {
            { HangfireJob: { } job } => Results.Redirect($"/hangfire/jobs/details/{Uri.EscapeDataString(job)}", permanent: true),
            { } edit => Results.Redirect($"/hangfire/batches/{edit.BatchId}"),
            null => Results.NotFound(),
        });
        old.MapGet("/job/{id:long}/{kind:regex(^(input|output)$)}/{index:int}", (long id, string kind, int index) =>
            Results.Redirect($"/hangfire/edits/{id}/{kind}/{index}", permanent: true));
        old.MapGet("/{**rest}", () => Results.Redirect("/hangfire/batches", permanent: true));
    }
}
