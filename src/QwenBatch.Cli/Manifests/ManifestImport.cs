using QwenBatch.Batches;
using QwenBatch.Cli.Hosting;
using QwenBatch.Manifests;
using QwenBatch.Storage;

namespace QwenBatch.Cli.Manifests;

/// <summary>What <c>run</c> and <c>submit</c> were asked to enqueue.</summary>
internal sealed record ImportRequest(string ManifestPath, string Provider, string? Name, ManifestOptions Options, bool SkipInvalid, decimal? BudgetUsd = null);

/// <summary>A manifest that passed its first, validating pass, with the jobs <c>--skip-invalid</c> left out.</summary>
internal sealed record CheckedManifest(ImportRequest Request, CheckedJobs Checked, IReadOnlyList<SkippedJob> Skipped)
{
    public ManifestStream Stream => Checked.Stream;
}

/// <summary>
/// The one path from a manifest to a batch in the store, shared by <c>run</c> and <c>submit</c>: validate the whole file
/// (streamed) before anything is enqueued, then stream the valid jobs into the store's one import transaction.
/// </summary>
internal static class ManifestImport
{
    private const int MaxPrinted = 200;

    /// <summary>
    /// First pass: prints the manifest's errors and warnings; null when nothing may be enqueued (exit 2). The planned jobs
    /// are kept when they fit the importer's memory bound, so the import does not read the file again.
    /// </summary>
    public static async Task<CheckedManifest?> CheckAsync(ImportRequest request)
    {
        var skipped = new List<SkippedJob>();
        var check = ManifestImporter.CheckAndPlan(request.ManifestPath, request.Options, request.Provider, skipped.Add);
        return await ReportProblemsAsync(check.Stream, request.SkipInvalid) ? new CheckedManifest(request, check, skipped) : null;
    }

    /// <summary>Second pass: creates (or resumes) the batch with its outputs under <paramref name="storageRoot"/>.</summary>
    public static async Task<BatchImport> ImportAsync(IJobStore store, CheckedManifest manifest, string storageRoot, CancellationToken ct)
    {
        var request = manifest.Request;
        var provider = request.Provider;
        var path = Path.GetFullPath(request.ManifestPath);
        var batch = BatchPlanner.Batch(path, manifest.Stream.Name, provider, storageRoot, request.Name);
        var existing = await store.FindBatchAsync(batch.Name, ct);
        if (existing is not null && existing.Source != batch.Source && request.Name is null)
        {
            // Another manifest of the same file name: keep both, side by side.
            var suffix = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(batch.Source)))[..6];
            batch = BatchPlanner.Batch(path, manifest.Stream.Name, provider, storageRoot, $"{batch.Name}-{suffix}");
            existing = await store.FindBatchAsync(batch.Name, ct);
        }

        if (existing is not null && existing.Provider != provider)
        {
            throw new CliException(ExitCodes.UsageOrConfiguration,
                $"Batch '{existing.Name}' was started with provider '{existing.Provider}'; rerun with --provider {existing.Provider}, or pass --name to start a new batch.");
        }

        // Second pass, streamed into the store's one transaction. A budget on a resume replaces the old one and releases
        // the jobs it held.
        BatchImport import;
        try
        {
            import = await store.ImportBatchAsync(batch with { BudgetUsd = request.BudgetUsd },
                ManifestImporter.ValidJobs(manifest.Checked, request.Options, request.SkipInvalid, ct), ct);
        }
        catch (ManifestChangedException)
        {
            throw new CliException(ExitCodes.InvalidManifest, "The manifest changed while it was imported and is now invalid; nothing was enqueued.");
        }
        catch (DuplicateJobKeyException ex)
        {
            // The validator refuses duplicate ids first; this is the store's own guard, reported the same way.
            throw new CliException(ExitCodes.InvalidManifest, ex.Message);
        }

        if (manifest.Skipped.Count > 0)
        {
            var list = await SkippedJobs.WriteAsync(import.Batch.StorageDir, manifest.Skipped, CancellationToken.None);
            await Console.Error.WriteLineAsync($"Skipped {manifest.Skipped.Count} invalid job(s), listed in {list}");
        }

        return import;
    }

    /// <summary>Prints the manifest's errors and warnings; false when the import must stop (invalid, and not --skip-invalid).</summary>
    private static async Task<bool> ReportProblemsAsync(ManifestStream check, bool skipInvalid)
    {
        var diagnostics = check.Diagnostics;
        foreach (var warning in ManifestStream.Sorted(diagnostics.Warnings).Take(MaxPrinted))
        {
            await Console.Error.WriteLineAsync($"warning: {warning}");
        }

        if (diagnostics.ErrorCount == 0)
        {
            return true;
        }

        foreach (var error in ManifestStream.Sorted(diagnostics.Errors).Take(MaxPrinted))
        {
            await Console.Error.WriteLineAsync(error.ToString());
        }

        if (diagnostics.ErrorCount > MaxPrinted)
        {
            await Console.Error.WriteLineAsync($"… and {diagnostics.ErrorCount - MaxPrinted} more error(s); 'qwenbatch validate --json' lists them all.");
        }

        if (!skipInvalid || check.JobCount == 0)
        {
            await Console.Error.WriteLineAsync($"The manifest has {diagnostics.ErrorCount} error(s); nothing was enqueued."
                + (skipInvalid || check.JobCount == 0 ? "" : " Pass --skip-invalid to enqueue the valid jobs."));
            return false;
        }

        await Console.Error.WriteLineAsync($"The manifest has {diagnostics.ErrorCount} error(s); --skip-invalid: enqueuing the {check.JobCount} valid job(s).");
        return true;
    }
}
