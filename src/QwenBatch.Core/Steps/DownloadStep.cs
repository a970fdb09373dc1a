using System.Collections.Concurrent;
using System.Globalization;
using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Outputs;
using QwenBatch.Storage;

namespace QwenBatch.Steps;

/// <summary>
/// downloading → succeeded: fetches every output into the batch folder. Each file is recorded (path, SHA-256, length) as
/// soon as it is whole, so a retried step keeps the files already verified and fetches only the rest.
/// </summary>
public sealed class DownloadStep(EditStateChanger changer, IBatchStore batches, OutputDownloader downloader, StepFailures failures, TimeProvider time)
{
    private readonly ConcurrentDictionary<long, BatchRecord> _batches = new();

    public async Task<StepOutcome> RunAsync(EditRecord edit, string by, CancellationToken ct)
    {
        if (edit.State != EditState.Downloading)
        {
            throw new InvalidOperationException($"Edit {edit.Id} is {edit.State}, not downloading: there is nothing to fetch.");
        }

        var current = edit;
        try
        {
            var batch = await BatchAsync(edit.BatchId, ct);
            var tag = edit.Id.ToString(CultureInfo.InvariantCulture);
            RemoveLeftovers(batch.StorageDir, tag);

            var files = new List<OutputFile>(edit.Outputs.Count);
            for (var k = 0; k < edit.Outputs.Count; k++)
            {
                if (k < current.Files.Count && await OutputDownloader.IsIntactAsync(batch.StorageDir, current.Files[k], ct))
                {
                    files.Add(current.Files[k]);
                    continue;
                }

                var index = k;
                var spec = edit.Spec;
                files.Add(await downloader.DownloadAsync(edit.Outputs[k], batch.StorageDir, $"{tag}-{k + 1}",
                    ext => OutputNames.For(spec.Output, edit.Key, index, edit.Outputs.Count, ext, spec.Variables, edit.Revision), ct));
                if (k < edit.Outputs.Count - 1)
                {
                    // Checkpoint: the whole file is on record before the next is fetched, so a retry does not fetch it again.
                    if (await changer.MoveAsync(current, current with { Files = [.. files] }, by, reason: null) is not { } checkpoint)
                    {
                        return StepOutcome.Moved.Instance;
                    }

                    current = checkpoint;
                }
            }

            var done = await changer.MoveAsync(current, current with
            {
                State = EditState.Succeeded,
                Files = files,
                Attempt = 0,
                Error = null,
                FinishedAt = time.GetUtcNow(),
            }, by, reason: null);
            return done is null ? StepOutcome.Moved.Instance : new StepOutcome.Succeeded(files.Count);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopped: the edit stays downloading, and the job runs again (files already recorded are kept).
            throw;
        }
        catch (Exception ex)
        {
            return await failures.RecordAsync(current, ex, by);
        }
    }

    /// <summary>
    /// Temporary files of this edit that a crash or a kill left behind. Only this edit's: another worker may be writing
    /// its own into the same folder right now.
    /// </summary>
    private static void RemoveLeftovers(string directory, string tag)
    {
        var parts = OutputDownloader.PartsDirectory(directory);
        if (!Directory.Exists(parts))
        {
            return;
        }

        foreach (var stale in Directory.EnumerateFiles(parts, $"{OutputDownloader.TempPrefix}{tag}-*.part"))
        {
            File.Delete(stale);
        }
    }

    private async Task<BatchRecord> BatchAsync(long batchId, CancellationToken ct)
    {
        if (_batches.TryGetValue(batchId, out var cached))
        {
            return cached;
        }

        var batch = await batches.GetBatchAsync(batchId, ct) ?? throw new InvalidOperationException($"Batch {batchId} does not exist.");
        return _batches.GetOrAdd(batchId, batch);
    }
}
