using System.Globalization;
using Microsoft.AspNetCore.Http;
using QwenBatch.Batches;
using QwenBatch.Manifests;
using QwenBatch.Providers;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Api;

/// <summary>
/// <c>POST /api/batches</c>: the uploaded manifest goes through the same validate-then-stream import as <c>run</c>
/// (<see cref="ManifestImporter"/>). Local image paths are confined to <see cref="DashboardOptions.InputRoot"/>.
/// </summary>
internal static class ManifestUpload
{
    private static readonly string[] Extensions = [".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson"];

    public static async Task<IResult> HandleAsync(HttpRequest request, IStore store, DashboardOptions options, CancellationToken ct)
    {
        if (!request.HasFormContentType || (await request.ReadFormAsync(ct)).Files.GetFile("manifest") is not { Length: > 0 } file)
        {
            return Results.BadRequest(new { error = "Send the manifest as the multipart form field 'manifest'." });
        }

        var provider = request.Query["provider"].ToString() is { Length: > 0 } p ? p : options.DefaultProvider;
        if (!ProviderNames.All.Contains(provider))
        {
            return Results.BadRequest(new { error = $"Unknown provider '{provider}'; expected one of {string.Join(", ", ProviderNames.All)}." });
        }

        decimal? budget = null;
        if (request.Query["budget"].ToString() is { Length: > 0 } b)
        {
            if (!decimal.TryParse(b, NumberStyles.Number, CultureInfo.InvariantCulture, out var usd) || usd <= 0)
            {
                return Results.BadRequest(new { error = $"budget '{b}' is not a positive amount in USD, such as 12.50." });
            }

            budget = usd;
        }

        var extension = Path.GetExtension(file.FileName).ToLowerInvariant();
        if (!Extensions.Contains(extension))
        {
            return Results.BadRequest(new { error = $"The manifest's file name must end in one of {string.Join(", ", Extensions)}." });
        }

        // The upload is kept: the batch's source names it, and a resume by name reads it again.
        var uploads = Directory.CreateDirectory(Path.Combine(Path.GetFullPath(options.StorageRoot), ".uploads")).FullName;
        var baseName = OutputNamesSafe(Path.GetFileNameWithoutExtension(file.FileName));
        var path = Path.Combine(uploads, $"{Guid.NewGuid():N}-{baseName}{extension}");
        await using (var target = File.Create(path))
        {
            await file.CopyToAsync(target, ct);
        }

        var manifestOptions = new ManifestOptions { Provider = provider, InputRoot = options.InputRoot ?? "" };
        await using var pass = await ManifestImporter.CheckAndPlanAsync(path, manifestOptions, provider);
        var check = pass.Stream;
        if (check.Diagnostics.ErrorCount > 0)
        {
            File.Delete(path);
            return Results.Json(ValidationReport(check), statusCode: StatusCodes.Status400BadRequest);
        }

        var name = request.Query["name"].ToString() is { Length: > 0 } n ? n : check.Name ?? baseName;
        var batch = BatchPlanner.Batch(path, check.Name, provider, options.StorageRoot, name) with { BudgetUsd = budget };
        if (await store.FindBatchAsync(batch.Name, ct) is { } existing && existing.Provider != provider)
        {
            File.Delete(path);
            return Results.Conflict(new { error = $"Batch '{existing.Name}' runs on provider '{existing.Provider}'; pass another name." });
        }

        try
        {
            var import = await store.ImportBatchAsync(batch, pass.JobsToImport(ct), ct);
            return Results.Created($"/api/batches/{import.Batch.Id}", new { batch = import.Batch.Id, jobs = import.JobsAdded, name = import.Batch.Name, resumed = import.Resumed });
        }
        catch (ManifestChangedException ex)
        {
            return Results.BadRequest(new { error = ex.Message });
        }
    }

    /// <summary>The shape of <c>validate --json</c>.</summary>
    public static object ValidationReport(ManifestStream check) => new
    {
        valid = check.Diagnostics.ErrorCount == 0,
        jobs = check.JobCount,
        errors = ManifestStream.Sorted(check.Diagnostics.Errors).Select(Problem),
        warnings = ManifestStream.Sorted(check.Diagnostics.Warnings).Select(Problem),
    };

    private static object Problem(ManifestError e) => new { line = e.Line, field = e.Field, message = e.Message };

    private static string OutputNamesSafe(string name) => Outputs.OutputNames.Safe(name.Length == 0 ? "upload" : name);
}
