using Microsoft.Extensions.Logging;
using QwenBatch.Storage;

namespace QwenBatch.Retention;

/// <summary>
/// Deletes finished batches older than <see cref="RetentionOptions.MaxAge"/>, one chunk per short statement; every server
/// runs it every <see cref="RetentionOptions.Interval"/>. Servers racing on one batch only delete what is there; the batch
/// row goes once its edits are gone. Hangfire's own finished jobs expire by Hangfire's expiration.
/// </summary>
public sealed partial class RetentionSweep(IRetentionStore store, RetentionOptions options, TimeProvider time, ILogger<RetentionSweep> logger)
{
    /// <summary>Purges until nothing is expired; returns the edits and batches deleted.</summary>
    public async Task<(int Jobs, int Batches)> PurgeAsync(CancellationToken ct)
    {
        var cutoff = time.GetUtcNow() - options.MaxAge;
        var (jobs, batches) = (0, 0);
        while (await store.FindExpiredBatchAsync(cutoff, ct) is { } batchId)
        {
            RetentionStep step;
            do
            {
                step = await store.PurgeBatchChunkAsync(batchId, cutoff, options.ChunkSize, ct);
                jobs += step.JobsDeleted;
            }
            while (step.JobsDeleted > 0);

            if (step.BatchDeleted is not { } batch)
            {
                // Another worker deleted it first, or a resume added jobs: look again at the next interval.
                break;
            }

            batches++;
            LogDeleted(batch);
            if (options.DeleteFiles && step.StorageDir is { } dir && Directory.Exists(dir))
            {
                Directory.Delete(dir, recursive: true);
            }
        }

        if (jobs + batches > 0)
        {
            LogPurged(batches, jobs, options.MaxAge);
        }

        return (jobs, batches);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention deleted batch {Batch}")]
    private partial void LogDeleted(string batch);

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention deleted {Batches} batch(es) and {Jobs} edit(s) finished more than {MaxAge} ago")]
    private partial void LogPurged(int batches, int jobs, TimeSpan maxAge);

}
