using System.Collections.Concurrent;
using QwenBatch.Batches;
using QwenBatch.Jobs;
using QwenBatch.Outputs;
using QwenBatch.Storage;

namespace QwenBatch.Steps;

/// <summary>downloading → succeeded: fetches every output into the batch folder.</summary>
public sealed class DownloadStep(JobStateChanger changer, IJobStore store, OutputDownloader downloader, TimeProvider time) : IJobStep
{
    private readonly ConcurrentDictionary<long, BatchRecord> _batches = new();

    public bool CanRun(JobRecord job) => job.State == JobState.Downloading;

    public async Task RunAsync(StepContext context, CancellationToken ct)
    {
        var job = context.Current;
        var batch = await BatchAsync(job.BatchId, ct);
        var files = new List<string>(job.Outputs.Count);
        for (var k = 0; k < job.Outputs.Count; k++)
        {
            var stem = Path.GetFileNameWithoutExtension(OutputNames.For(job.Key, k, job.Outputs.Count, "x"));
            files.Add(await downloader.DownloadAsync(job.Outputs[k], batch.StorageDir, stem, ct));
        }

        await changer.MoveAsync(job, job with
        {
            State = JobState.Succeeded,
            Files = files,
            Attempt = 0,
            Error = null,
            FinishedAt = time.GetUtcNow(),
        }, context.Owner, reason: null);
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
