using System.Globalization;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Features;
using QwenBatch.Batches;
using QwenBatch.Manifests;
using QwenBatch.Providers;
using QwenBatch.Storage;

namespace QwenBatch.Dashboard.Api;

/// <summary>
/// <c>POST /api/batches</c>: the uploaded manifest goes through the same validate-then-stream import as <c>run</c>
/// (<see cref="ManifestImporter"/>). Local image paths resolve against the images uploaded with it (multipart fields
/// <c>images</c>), else are confined to <see cref="DashboardOptions.InputRoot"/>.
/// </summary>
internal static class ManifestUpload
{
    private static readonly string[] Extensions = [".csv", ".tsv", ".txt", ".json", ".jsonl", ".ndjson"];

    /// <summary>A manifest with its images may be large; Kestrel's 30 MB default would refuse a few hundred photos.</summary>
    public const long MaxUploadBytes = 1L << 30;

    public static async Task<IResult> HandleAsync(HttpRequest request, IStore store, ProviderRegistry providers, DashboardOptions options, CancellationToken ct)
    {
        if (request.HttpContext.Features.Get<IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit)
        {
            limit.MaxRequestBodySize = MaxUploadBytes;
        }

        var form = request.HasFormContentType ? await request.ReadFormAsync(new FormOptions { MultipartBodyLengthLimit = MaxUploadBytes }, ct) : null;
        if (form?.Files.GetFile("manifest") is not { Length: > 0 } file)
        {
            return Results.BadRequest(new { error = "Send the manifest as the multipart form field 'manifest' (and its images, if local, as fields 'images')." });
        }

        var (provider, providerError) = ProviderOf(request, providers, options);
        if (provider is null)
        {
            return Results.BadRequest(new { error = providerError });
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

        // The upload is kept, with its images: the batch's source names it, a resume by name reads it again, and the
        // edits read their images when they are submitted.
        var folder = Directory.CreateDirectory(Path.Combine(Path.GetFullPath(options.StorageRoot), UploadsFolder, $"{Guid.NewGuid():N}")).FullName;
        var baseName = OutputNamesSafe(Path.GetFileNameWithoutExtension(file.FileName));
        var path = Path.Combine(folder, $"{baseName}{extension}");
        await using (var target = File.Create(path))
        {
            await file.CopyToAsync(target, ct);
        }

        var images = form.Files.GetFiles("images");
        var imagesRoot = Path.Combine(folder, "images");
        if (await SaveImagesAsync(images, imagesRoot, ct) is { } imageError)
        {
            Directory.Delete(folder, recursive: true);
            return Results.BadRequest(new { error = imageError });
        }

        var manifestOptions = images.Count > 0
            ? new ManifestOptions { Provider = provider, InputRoot = imagesRoot, MatchUploadedNames = true }
            : new ManifestOptions { Provider = provider, InputRoot = options.InputRoot ?? "" };
        await using var pass = await ManifestImporter.CheckAndPlanAsync(path, manifestOptions, provider);
        var check = pass.Stream;
        if (check.Diagnostics.ErrorCount > 0)
        {
            Directory.Delete(folder, recursive: true);
            return Results.Json(ValidationReport(check), statusCode: StatusCodes.Status400BadRequest);
        }

        var name = request.Query["name"].ToString() is { Length: > 0 } n ? n : check.Name ?? baseName;
        var batch = BatchPlanner.Batch(path, check.Name, provider, options.StorageRoot, name) with { BudgetUsd = budget };
        if (await store.FindBatchAsync(batch.Name, ct) is { } existing && existing.Provider != provider)
        {
            Directory.Delete(folder, recursive: true);
            return Results.Conflict(new { error = $"Batch '{existing.Name}' runs on provider '{existing.Provider}'; pass another name." });
        }

        try
        {
            var import = await store.ImportBatchAsync(batch, pass.JobsToImport(ct), ct);
            return Results.Created($"/api/batches/{import.Batch.Id}", new { batch = import.Batch.Id, jobs = import.JobsAdded, name = import.Batch.Name, resumed = import.Resumed, images = images.Count });
        }
        catch (ManifestChangedException ex)
        {
            return Results.BadRequest(new { error = ex.Message });
        }
    }

    /// <summary>Where uploads are kept, below the storage root.</summary>
    public const string UploadsFolder = ".uploads";

    /// <summary>
    /// The provider the request names, else the configured default. Only a provider this server has configured is taken:
    /// its workers could run no other, and the batch would sit held.
    /// </summary>
    private static (string? Name, string? Error) ProviderOf(HttpRequest request, ProviderRegistry providers, DashboardOptions options)
    {
        var configured = string.Join(", ", providers.Names.Order(StringComparer.Ordinal));
        var provider = request.Query["provider"].ToString() is { Length: > 0 } p ? p : options.DefaultProvider;
        if (provider is null)
        {
            return (null, $"Name the batch's provider with ?provider= (configured here: {configured}), or set Dashboard:DefaultProvider.");
        }

        if (!ProviderNames.All.Contains(provider))
        {
            return (null, $"Unknown provider '{provider}'; expected one of {string.Join(", ", ProviderNames.All)}.");
        }

        if (providers.Find(provider) is null)
        {
            return (null, provider == ProviderNames.Simulator
                ? $"Provider 'simulator' is not configured on this server (configured here: {configured}). `run` starts one in-process; for serve and its workers, "
                    + "start `qwenbatch simulate --port 8787` and set Providers__Simulator__BaseUrl=http://127.0.0.1:8787 on every process of the fleet."
                : $"Provider '{provider}' is not configured on this server (configured here: {configured}); set Providers:{provider}:BaseUrl and its API key.");
        }

        return (provider, null);
    }

    /// <summary>
    /// Stores each uploaded image under the name its client gave, folders included, confined to <paramref name="root"/>.
    /// The manifest's validator then checks each one it names (an image by its bytes, at most 10 MB).
    /// </summary>
    private static async Task<string?> SaveImagesAsync(IReadOnlyList<IFormFile> images, string root, CancellationToken ct)
    {
        foreach (var image in images)
        {
            var parts = image.FileName.Split('/', '\\').Where(part => part.Length > 0 && part != ".").ToArray();
            if (parts.Length == 0 || parts.Any(part => part == ".." || part.IndexOfAny(Path.GetInvalidFileNameChars()) >= 0))
            {
                return $"The image file name '{image.FileName}' is not a usable relative path; expected a name such as images/mug.png.";
            }

            var target = Path.GetFullPath(Path.Combine([root, .. parts]));
            if (!target.StartsWith(root + Path.DirectorySeparatorChar, StringComparison.Ordinal))
            {
                return $"The image file name '{image.FileName}' leaves its folder; expected a name such as images/mug.png.";
            }

            Directory.CreateDirectory(Path.GetDirectoryName(target)!);
            await using var stream = new FileStream(target, FileMode.CreateNew);
            await image.CopyToAsync(stream, ct);
        }

        return null;
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
