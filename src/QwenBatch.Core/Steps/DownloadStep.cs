using System.Collections.Concurrent;
using System.Globalization;
using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Outputs;
using QwenBatch.Storage;

namespace QwenBatch.Steps;

/// <summary>
/// downloading → succeeded: fetches every output into the batch folder. Each file is recorded (path, SHA-256, length) as
/// soon as it is whole, so a retried step keeps the files already verified and fetches only the rest. A download chained
/// to the poll that saw its task completed starts from at_provider in the store: its first write carries that move too
/// (<see cref="StepContext.Unwritten"/>).
/// </summary>
public sealed class DownloadStep(EditStateChanger changer, IJobStore store, OutputDownloader downloader, TimeProvider time) : IJobStep
{
    private readonly ConcurrentDictionary<long, BatchRecord> _batches = new();

    public bool CanRun(EditRecord job) => job.State == EditState.Downloading;

    public async Task RunAsync(StepContext context, CancellationToken ct)
    {
        var job = context.Current;
        var batch = await BatchAsync(job.BatchId, ct);
        var tag = job.Id.ToString(CultureInfo.InvariantCulture);
        RemoveLeftovers(batch.StorageDir, tag);

        var files = new List<OutputFile>(job.Outputs.Count);
        for (var k = 0; k < job.Outputs.Count; k++)
        {
            if (k < job.Files.Count && await OutputDownloader.IsIntactAsync(batch.StorageDir, job.Files[k], ct))
            {
                files.Add(job.Files[k]);
                continue;
            }

            var index = k;
            files.Add(await downloader.DownloadAsync(job.Outputs[k], batch.StorageDir, $"{tag}-{k + 1}",
                ext => OutputNames.For(job.Spec.Output, job.Key, index, job.Outputs.Count, ext, job.Spec.Variables, job.Revision), ct));
            if (k < job.Outputs.Count - 1)
            {
                // Checkpoint: the whole file is on record before the next is fetched, so a retry does not fetch it again.
                var moved = await context.MoveAsync(changer, job with { Files = [.. files] }, reason: null, keepLease: true);
                if (moved is null)
                {
                    return;
                }

                job = moved;
            }
        }

        await context.MoveAsync(changer, job with
        {
            State = EditState.Succeeded,
            Files = files,
            Attempt = 0,
            Error = null,
            FinishedAt = time.GetUtcNow(),
        }, reason: null);
    }

    /// <summary>
    /// Temporary files of this job that a crash or a kill left behind. Only this job's: another worker may be writing its
    /// own into the same folder right now, and only the lease holder of a job writes that job's files.
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

        var batch = await store.GetBatchAsync(batchId, ct) ?? throw new InvalidOperationException($"Batch {batchId} does not exist.");
        return _batches.GetOrAdd(batchId, batch);
    }
}
