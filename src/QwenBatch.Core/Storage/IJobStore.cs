using QwenBatch.Batches;
using QwenBatch.Jobs;
using QwenBatch.Server;

namespace QwenBatch.Storage;

/// <summary>
/// Everything QwenBatch keeps durably. All SQL lives behind this interface; each backend (PostgreSQL, SQLite) is proven by
/// the same contract suite. "Now" comes from the store's injected <see cref="TimeProvider"/>.
/// </summary>
public interface IJobStore : IAsyncDisposable
{
    /// <summary>Applies numbered migrations under a lock, so processes starting together do not race.</summary>
    Task MigrateAsync(CancellationToken ct);

    /// <summary>
    /// Creates the batch with its jobs in one transaction, or resumes the batch of that name, adding only jobs whose
    /// key and content are new. Wakes waiting workers. The jobs are streamed into the transaction, so a 100k-row manifest
    /// is never held in memory; if the enumeration throws, nothing is imported.
    /// </summary>
    Task<BatchImport> ImportBatchAsync(NewBatch batch, IAsyncEnumerable<NewJob> jobs, CancellationToken ct);

    Task<BatchRecord?> FindBatchAsync(string name, CancellationToken ct);

    Task<BatchRecord?> GetBatchAsync(long batchId, CancellationToken ct);

    /// <summary>Leases up to <see cref="ClaimRequest.Limit"/> due jobs, oldest due first, skipping jobs others hold.</summary>
    Task<IReadOnlyList<JobRecord>> ClaimAsync(ClaimRequest request, CancellationToken ct);

    /// <summary>Guarded write of a job; false when the job was not in an expected state or not leased by the owner.</summary>
    Task<bool> TransitionAsync(JobTransition transition, CancellationToken ct);

    /// <summary>Extends every lease the server holds and records its heartbeat.</summary>
    Task HeartbeatAsync(string serverId, TimeSpan leaseDuration, CancellationToken ct);

    /// <summary>Returns jobs whose lease expired to the queue (a submit in flight is counted as uncertain).</summary>
    Task<int> RescueExpiredLeasesAsync(int limit, CancellationToken ct);

    /// <summary>Gives back every lease the server holds, as the rescuer would, for a clean stop.</summary>
    Task<int> ReleaseLeasesAsync(string serverId, CancellationToken ct);

    /// <summary>The earliest due time of a claimable, unleased job (of one batch when given).</summary>
    Task<DateTimeOffset?> NextDueAtAsync(long? batchId, CancellationToken ct);

    Task<BatchProgress> GetProgressAsync(long batchId, CancellationToken ct);

    Task<JobRecord?> GetJobAsync(long jobId, CancellationToken ct);

    /// <summary>The batch's jobs in key order (for reports).</summary>
    Task<IReadOnlyList<JobRecord>> GetJobsAsync(long batchId, CancellationToken ct);

    Task<IReadOnlyList<JobHistoryEntry>> GetHistoryAsync(long jobId, CancellationToken ct);

    Task RegisterServerAsync(ServerInfo server, CancellationToken ct);

    Task RemoveServerAsync(string serverId, CancellationToken ct);

    Task<IReadOnlyList<ServerInfo>> GetServersAsync(CancellationToken ct);

    /// <summary>Pulses <paramref name="signal"/> whenever new work may be due (new jobs, rescued jobs) until cancelled.</summary>
    Task ListenAsync(WorkSignal signal, CancellationToken ct);
}

/// <summary>What a worker asks for when it claims.</summary>
/// <param name="Owner">The server id that will hold the leases.</param>
/// <param name="Limit">How many jobs at most.</param>
/// <param name="LeaseDuration">How long the leases last unless renewed.</param>
/// <param name="BatchId">Only jobs of this batch (the <c>run</c> command), or any.</param>
public sealed record ClaimRequest(string Owner, int Limit, TimeSpan LeaseDuration, long? BatchId = null);

/// <summary>Conveniences over <see cref="IJobStore"/>.</summary>
public static class JobStoreExtensions
{
    /// <summary>Imports jobs already in memory (tests, small batches).</summary>
    public static Task<BatchImport> ImportBatchAsync(this IJobStore store, NewBatch batch, IEnumerable<NewJob> jobs, CancellationToken ct) =>
        store.ImportBatchAsync(batch, Stream(jobs), ct);

    private static async IAsyncEnumerable<NewJob> Stream(IEnumerable<NewJob> jobs)
    {
        foreach (var job in jobs)
        {
            yield return job;
        }

        await Task.CompletedTask;
    }
}
