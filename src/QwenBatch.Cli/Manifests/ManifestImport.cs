using QwenBatch.Batches;
using QwenBatch.Cli.Hosting;
using QwenBatch.Manifests;
using QwenBatch.Storage;

namespace QwenBatch.Cli.Manifests;

/// <summary>What <c>run</c> and <c>submit</c> were asked to enqueue.</summary>
internal sealed record ImportRequest(string ManifestPath, string Provider, string? Name, ManifestOptions Options, bool SkipInvalid, decimal? BudgetUsd = null);

/// <summary>
/// A manifest whose validating pass has started: over (and valid) when <see cref="Reported"/>, else still reading a
/// large file while its first jobs wait for the import. Disposing stops a pass nobody imported.
/// </summary>
internal sealed record CheckedManifest(ImportRequest Request, ManifestPass Pass, IReadOnlyList<SkippedJob> Skipped, bool Reported) : IAsyncDisposable
{
    public ManifestStream Stream => Pass.Stream;

    public ValueTask DisposeAsync() => Pass.DisposeAsync();
}

/// <summary>
/// The one path from a manifest to a batch in the store, shared by <c>run</c> and <c>submit</c>: one validating pass over
/// the whole file (streamed) and the store's one import transaction, which commits only if the whole file is valid.
/// </summary>
internal static class ManifestImport
{
    private const int MaxPrinted = 200;

    /// <summary>
    /// Starts the validating pass. A manifest shorter than a chunk of jobs (1,000), or one whose problems are known before
    /// that, is read to its end here: its errors and warnings are printed, and null means nothing may be enqueued (exit 2)
    /// — nothing else has been touched. A longer one returns as soon as its first jobs are planned: the import takes them
    /// while the rest is read, and the problems are printed when it is over (an invalid file rolls the import back).
    /// A JSON manifest may name its batch anywhere in the file, so without --name it is read to its end first; its planned
    /// jobs are kept within the importer's memory bound, or read again by the import.
    /// </summary>
    public static async Task<CheckedManifest?> CheckAsync(ImportRequest request)
    {
        var skipped = new List<SkippedJob>();
        var pass = request.Name is null && NamesItsBatch(Path.GetFullPath(request.ManifestPath))
            ? ManifestPass.StartKept(request.ManifestPath, request.Options, request.Provider, ManifestImporter.DefaultMaxBufferedBytes, request.SkipInvalid, skipped.Add)
            : ManifestPass.StartLive(request.ManifestPath, request.Options, request.Provider, request.SkipInvalid, skipped.Add);
        try
        {
            await pass.Started;
            if (!pass.Completion.IsCompleted)
            {
                return new CheckedManifest(request, pass, skipped, Reported: false);
            }

            await pass.Completion;
            if (await ReportProblemsAsync(pass.Stream, request.SkipInvalid))
            {
                return new CheckedManifest(request, pass, skipped, Reported: true);
            }
        }
        catch
        {
            await pass.DisposeAsync();
            throw;
        }

        await pass.DisposeAsync();
        return null;
    }

    /// <summary>A JSON document may carry the batch's name; a file that cannot be read is the pass's to report.</summary>
    private static bool NamesItsBatch(string path)
    {
        try
        {
            return File.Exists(path) && ManifestFormats.Detect(path).Format == ManifestFormat.Json;
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            return false;
        }
    }

    /// <summary>
    /// Creates (or resumes) the batch with its outputs under <paramref name="storageRoot"/>; null when the manifest turned
    /// out invalid while it was imported (its problems printed, nothing enqueued: exit 2).
    /// </summary>
    public static async Task<BatchImport?> ImportAsync(IBatchStore store, CheckedManifest manifest, string storageRoot, CancellationToken ct)
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

        // The jobs as the pass planned them (live, kept, or the file read again), into the store's one transaction. A
        // budget on a resume replaces the old one and releases the jobs it held.
        BatchImport import;
        try
        {
            import = await store.ImportBatchAsync(batch with { BudgetUsd = request.BudgetUsd }, manifest.Pass.JobsToImport(ct), ct);
        }
        catch (ManifestInvalidException)
        {
            await ReportProblemsAsync(manifest.Stream, request.SkipInvalid);
            return null;
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

        if (!manifest.Reported)
        {
            await ReportProblemsAsync(manifest.Stream, request.SkipInvalid);
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
