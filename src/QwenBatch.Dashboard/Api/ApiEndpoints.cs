using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.Options;
using QwenBatch.Edits;
using QwenBatch.Reports;
using QwenBatch.Storage;
using QwenBatch.Dashboard.Security;

namespace QwenBatch.Dashboard.Api;

/// <summary>The REST API under <c>/api</c>, and <c>/healthz</c>.</summary>
internal static class ApiEndpoints
{
    public static void Map(IEndpointRouteBuilder app)
    {
        app.MapGet("/healthz", HealthAsync);

        var api = app.MapGroup("/api");
        api.MapGet("/batches", ListAsync);
        api.MapGet("/batches/{id:long}", GetAsync);
        api.MapGet("/batches/{id:long}/report.{format}", ReportAsync);
        api.MapGet("/batches/{id:long}/errors.csv", ErrorsAsync);

        var writes = api.MapGroup("").AddEndpointFilter(CrossSiteGuard.RequireTokenOrSameOrigin).DisableAntiforgery();
        writes.MapPost("/batches", (HttpRequest request, IStore store, Providers.ProviderRegistry providers, IOptions<DashboardOptions> options, CancellationToken ct) =>
            ManifestUpload.HandleAsync(request, store, providers, options.Value, ct));
        writes.MapPost("/batches/{id:long}/cancel", async (long id, IStore store, EditStateChanger edits, CancellationToken ct) =>
            await store.GetBatchAsync(id, ct) is null ? Results.NotFound() : Results.Ok(new { batch = id, cancelled = await edits.CancelBatchAsync(id, ct) }));
        writes.MapPost("/batches/{id:long}/retry", async (long id, IStore store, EditStateChanger edits, CancellationToken ct) =>
            await store.GetBatchAsync(id, ct) is null
                ? Results.NotFound()
                : Results.Ok(new { batch = id, requeued = await edits.RequeueBatchAsync(id, [EditState.Failed, EditState.Cancelled, EditState.Held], ct) }));
    }

    private static async Task<IResult> HealthAsync(IStore store, CancellationToken ct)
    {
        try
        {
            var version = await store.GetSchemaVersionAsync(ct);
            return version >= store.LatestSchemaVersion
                ? Results.Ok(new { status = "healthy", database = "reachable", schema = version })
                : Results.Json(new { status = "unhealthy", database = "reachable", schema = version, error = "migrations are not applied" }, statusCode: StatusCodes.Status503ServiceUnavailable);
        }
        catch (Exception ex) when (ex is System.Data.Common.DbException or TimeoutException or IOException or InvalidOperationException)
        {
            // The exception text can carry a host name; the password never is in it, but keep the answer generic anyway.
            return Results.Json(new { status = "unhealthy", database = "unreachable" }, statusCode: StatusCodes.Status503ServiceUnavailable);
        }
    }

    private static async Task<IResult> ListAsync(IStore store, CancellationToken ct)
    {
        var counts = (await store.GetStateCountsAsync(ct)).ToLookup(c => c.BatchId);
        var batches = await store.GetBatchesAsync(ct);
        return Results.Ok(batches.Select(b => BatchStatus.Of(b, new QwenBatch.Batches.BatchProgress(b.Id, counts[b.Id].ToDictionary(c => c.State, c => (int)c.Count), b.SpentUsd))));
    }

    private static async Task<IResult> GetAsync(long id, IStore store, CancellationToken ct) =>
        await store.GetBatchAsync(id, ct) is { } batch ? Results.Ok(BatchStatus.Of(batch, await store.GetProgressAsync(id, ct))) : Results.NotFound();

    /// <summary>The rows the manifest's validator skipped and the edits that failed, as the CSV report writes them beside report.csv.</summary>
    private static async Task<IResult> ErrorsAsync(long id, IStore store, TimeProvider time, CancellationToken ct)
    {
        if (await store.GetBatchAsync(id, ct) is not { } batch)
        {
            return Results.NotFound();
        }

        await BatchReports.WriteAsync(store, batch, ReportFormats.Csv, time, ct);
        return Results.File(Path.Combine(batch.StorageDir, ErrorsCsvWriter.FileName), "text/csv", $"{batch.Name}-errors.csv");
    }

    /// <summary>The batch's report, (re)written into the batch folder from the store by the same builders as the CLI.</summary>
    private static async Task<IResult> ReportAsync(long id, string format, IStore store, TimeProvider time, CancellationToken ct)
    {
        if (await store.GetBatchAsync(id, ct) is not { } batch)
        {
            return Results.NotFound();
        }

        var (which, contentType) = format switch
        {
            "csv" => (ReportFormats.Csv, "text/csv"),
            "json" => (ReportFormats.Json, "application/json"),
            "html" => (ReportFormats.Html, "text/html"),
            _ => (ReportFormats.None, ""),
        };
        if (which == ReportFormats.None)
        {
            return Results.NotFound();
        }

        await BatchReports.WriteAsync(store, batch, which, time, ct);
        return Results.File(Path.Combine(batch.StorageDir, $"report.{format}"), contentType, $"{batch.Name}-report.{format}");
    }
}
