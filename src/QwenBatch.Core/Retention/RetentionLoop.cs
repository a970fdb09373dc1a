using Microsoft.Extensions.Logging;
using QwenBatch.Server;
using QwenBatch.Storage;

namespace QwenBatch.Retention;

/// <summary>
/// Deletes finished batches older than <see cref="RetentionOptions.MaxAge"/>, one chunk per short statement, in every
/// worker. Workers racing on one batch only delete what is there; the batch row goes once its jobs are gone. Servers
/// silent for longer than that are forgotten too.
/// </summary>
public sealed partial class RetentionLoop(IJobStore store, RetentionOptions options, TimeProvider time, ILogger<RetentionLoop> logger) : IServerLoop
{
    public async Task RunAsync(string serverId, CancellationToken ct)
    {
        if (!options.Enabled)
        {
            return;
        }

        while (!ct.IsCancellationRequested)
        {
            try
            {
                await PurgeAsync(ct);
                await Task.Delay(options.Interval, time, ct);
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                LogFailed(ex);
                try
                {
                    await Task.Delay(options.Interval, time, ct);
                }
                catch (OperationCanceledException)
                {
                    return;
                }
            }
        }
    }

    /// <summary>Purges until nothing is expired; returns the jobs and batches deleted.</summary>
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

        // A server that stopped answering that long ago crashed (a stopped one removes itself): the servers page keeps
        // showing it as stopped until then. The jobs the rescuer took from it stay in their history.
        if (await store.RemoveServersSilentSinceAsync(cutoff, ct) is > 0 and var servers)
        {
            LogForgotServers(servers, options.MaxAge);
        }

        return (jobs, batches);
    }

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention deleted batch {Batch}")]
    private partial void LogDeleted(string batch);

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention deleted {Batches} batch(es) and {Jobs} job(s) finished more than {MaxAge} ago")]
    private partial void LogPurged(int batches, int jobs, TimeSpan maxAge);

    [LoggerMessage(Level = LogLevel.Information, Message = "Retention forgot {Servers} server(s) silent for more than {MaxAge}")]
    private partial void LogForgotServers(int servers, TimeSpan maxAge);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Retention failed; trying again at the next interval")]
    private partial void LogFailed(Exception ex);
}
