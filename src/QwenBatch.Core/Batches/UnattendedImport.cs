using System.Globalization;
using QwenBatch.Manifests;
using QwenBatch.Reports;
using QwenBatch.Storage;

namespace QwenBatch.Batches;

/// <summary>What an unattended import made: the batch, and the short reason when it is a failed one.</summary>
public sealed record UnattendedResult(BatchRecord Batch, string? Error);

/// <summary>
/// A manifest read with nobody watching (a schedule's occurrence, a continuation) becomes a batch either way: imported
/// through the one import path when valid, or a failed batch with no jobs carrying every validation error — which
/// <c>status</c>, the dashboard and the batch's <c>errors.csv</c> show — when the file is missing or invalid. The batch
/// name is the caller's and fixed, so a second attempt (after a crash) resumes or finds the first batch, never doubles it.
/// </summary>
public static class UnattendedImport
{
    /// <summary>The most error lines a failed batch keeps; the rest are counted.</summary>
    public const int MaxFailureLines = 1000;

    /// <summary>
    /// Imports <paramref name="manifest"/> as <paramref name="batch"/>, or records the failed batch. Store failures propagate
    /// (nothing is recorded, so the caller's claim stays open and is retried); only the manifest's own problems fail it.
    /// </summary>
    public static async Task<UnattendedResult> ImportAsync(IStore store, string manifest, NewBatch batch, TimeProvider time, CancellationToken ct)
    {
        var options = new ManifestOptions { Provider = batch.Provider };
        List<string> failure;
        try
        {
            (failure, var pass) = await ProblemsAsync(manifest, options, batch.Provider);
            await using (pass)
            {
                if (pass is not null)
                {
                    var import = await store.ImportBatchAsync(batch, pass.JobsToImport(ct), ct);
                    return new UnattendedResult(import.Batch, null);
                }
            }
        }
        catch (ManifestChangedException)
        {
            // Rewritten between the two passes: the import rolled back; report the file as it is now.
            var (now, again) = await ProblemsAsync(manifest, options, batch.Provider);
            if (again is not null)
            {
                await again.DisposeAsync();
            }

            failure = now is { Count: > 0 } ? now : [$"{manifest}: the manifest changed while it was imported; nothing was enqueued"];
        }

        // The occurrence is decided: record the failed batch and its errors.csv even when stopping.
        var failed = await store.CreateFailedBatchAsync(batch, string.Join('\n', failure), CancellationToken.None);
        await WriteReportsAsync(store, failed, time);
        return new UnattendedResult(failed, Summary(manifest, failure));
    }

    /// <summary>
    /// Every error of the manifest as <c>file:line: field: message</c> lines — empty when it can be imported, and then the
    /// validating pass, over, whose jobs the import takes (the caller disposes it).
    /// </summary>
    private static async Task<(List<string> Errors, ManifestPass? Pass)> ProblemsAsync(string manifest, ManifestOptions options, string provider)
    {
        try
        {
            if (!File.Exists(manifest))
            {
                return ([$"{manifest}: the manifest does not exist"], null);
            }

            var pass = await ManifestImporter.CheckAndPlanAsync(manifest, options, provider);
            var diagnostics = pass.Stream.Diagnostics;
            if (diagnostics.ErrorCount == 0)
            {
                return ([], pass);
            }

            await pass.DisposeAsync();

            var lines = ManifestStream.Sorted(diagnostics.Errors).Take(MaxFailureLines).Select(e => e.ToString()).ToList();
            if (diagnostics.ErrorCount > lines.Count)
            {
                lines.Add(string.Create(CultureInfo.InvariantCulture, $"{manifest}: … and {diagnostics.ErrorCount - lines.Count} more error(s)"));
            }

            return (lines, null);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or FormatException or ArgumentException)
        {
            return ([$"{manifest}: cannot be read: {ex.Message}"], null);
        }
    }

    private static string Summary(string manifest, List<string> failure) => failure.Count == 1
        ? failure[0]
        : string.Create(CultureInfo.InvariantCulture, $"Manifest '{manifest}' has {failure.Count} error(s); nothing was enqueued: {string.Join("; ", failure.Take(3))}");

    private static async Task WriteReportsAsync(IStore store, BatchRecord batch, TimeProvider time)
    {
        try
        {
            await BatchReports.WriteAsync(store, batch, ReportFormats.All, time, CancellationToken.None);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            // The batch row carries the errors; the files are a convenience, and the report command can write them later.
        }
    }
}
