using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Server;

namespace QwenBatch.Storage;

/// <summary>
/// Everything QwenBatch keeps durably. All SQL lives behind this interface; each backend (PostgreSQL, SQLite) is proven by
/// the same contract suite. "Now" comes from the store's injected <see cref="TimeProvider"/>.
/// </summary>
public partial interface IJobStore : IAsyncDisposable
{
    /// <summary>Applies numbered migrations under a lock, so processes starting together do not race.</summary>
    Task MigrateAsync(CancellationToken ct);

    /// <summary>
    /// Creates the batch with its jobs in one transaction, or resumes the batch of that name. Each manifest id (key) has
    /// one current job: on a resume a job whose content is unchanged is skipped, and a changed one becomes the id's
    /// current job (<see cref="EditRecord.Revision"/> + 1, <see cref="EditRecord.Replaces"/> the old one), superseding the
    /// old job, which is cancelled if it had not reached the provider and otherwise finishes with its history. Content an
    /// older job of the id already has makes that job current again. An import naming one id twice throws
    /// <see cref="DuplicateJobKeyException"/>. Wakes waiting workers. The jobs are streamed into the transaction, so a
    /// 100k-row manifest is never held in memory; if the enumeration throws, nothing is imported.
    /// </summary>
    Task<BatchImport> ImportBatchAsync(NewBatch batch, IAsyncEnumerable<NewEdit> jobs, CancellationToken ct);

    /// <summary>
    /// Creates a batch with no jobs that failed before any job existed (its manifest was missing or invalid when a schedule
    /// or a continuation fired it), carrying <paramref name="failure"/> (one line per error). When a batch of that name
    /// exists, returns it unchanged, so a second attempt at the same occurrence never makes a second batch.
    /// </summary>
    Task<BatchRecord> CreateFailedBatchAsync(NewBatch batch, string failure, CancellationToken ct);

    Task<BatchRecord?> FindBatchAsync(string name, CancellationToken ct);

    Task<BatchRecord?> GetBatchAsync(long batchId, CancellationToken ct);

    /// <summary>Every batch, newest first.</summary>
    Task<IReadOnlyList<BatchRecord>> GetBatchesAsync(CancellationToken ct);

    /// <summary>
    /// Reserves <see cref="BudgetReservation.Amount"/> (the most the job's next task can cost) against its batch budget and,
    /// when <see cref="BudgetReservation.DailyCapUsd"/> is set, against its provider account's daily budget, replacing any
    /// reservation the job already holds. The single place reservations are decided: both limits are checked and the
    /// reservation taken atomically, so no number of workers can exceed either. Refused, and nothing changed, when a limit
    /// would be exceeded (the verdict says which, with the day's spend) or the job is not leased by the owner.
    /// </summary>
    Task<BudgetVerdict> TryReserveBudgetAsync(BudgetReservation reservation, CancellationToken ct);

    /// <summary>
    /// Books the next request slot of a provider account, shared by every worker on the store (GCRA). Returns how long
    /// to wait before sending, or null when the slot is further away than <see cref="RequestReservation.MaxWait"/>.
    /// </summary>
    Task<TimeSpan?> ReserveRequestAsync(RequestReservation reservation, CancellationToken ct);

    /// <summary>Stops every worker sending to the account until <paramref name="until"/> and slows its rate (a 429 came).</summary>
    Task PauseAccountAsync(string account, DateTimeOffset until, CancellationToken ct);

    Task<RateLimitState?> GetRateLimitAsync(string account, CancellationToken ct);

    /// <summary>
    /// Cancels a batch: jobs not yet at the provider end cancelled at once; jobs at the provider are flagged and made due,
    /// so a worker sends the provider's cancel. Returns how many jobs were cancelled or flagged.
    /// </summary>
    Task<int> RequestCancelAsync(long batchId, CancellationToken ct);

    /// <summary>
    /// Returns the batch's unleased current jobs in <paramref name="states"/> to pending, due now, with fresh attempts
    /// (a job superseded by a changed manifest row stays as it is).
    /// </summary>
    Task<int> RequeueAsync(long batchId, IReadOnlyList<EditState> states, CancellationToken ct);

    /// <summary>Leases up to <see cref="ClaimRequest.Limit"/> due jobs, oldest due first, skipping jobs others hold.</summary>
    Task<IReadOnlyList<EditRecord>> ClaimAsync(ClaimRequest request, CancellationToken ct);

    /// <summary>
    /// Guarded write of a job; false when the job was not in an expected state or not leased by the owner, or when the write
    /// raises the job's reservation (a submit taking its budget in the move to submitting) beyond its batch budget.
    /// </summary>
    Task<bool> TransitionAsync(EditTransition transition, CancellationToken ct);

    /// <summary>
    /// Group commit: several guarded writes of different jobs in one transaction. Each applies or misses on its own guard
    /// exactly as <see cref="TransitionAsync"/> would (history and money counters included); the results are in the order
    /// given. Raised reservations never take a batch over its budget: when a group's raises of one batch do not all fit, a
    /// store may refuse some or all of them (each refused move changes nothing, and its step asks for an exact verdict).
    /// If the store fails, none is applied.
    /// </summary>
    Task<IReadOnlyList<bool>> TransitionManyAsync(IReadOnlyList<EditTransition> transitions, CancellationToken ct);

    /// <summary>Extends every lease the server holds and records its heartbeat.</summary>
    Task HeartbeatAsync(string serverId, TimeSpan leaseDuration, CancellationToken ct);

    /// <summary>Returns jobs whose lease expired to the queue (a submit in flight is counted as uncertain).</summary>
    Task<int> RescueExpiredLeasesAsync(int limit, CancellationToken ct);

    /// <summary>Gives back every lease the server holds, as the rescuer would, for a clean stop.</summary>
    Task<int> ReleaseLeasesAsync(string serverId, CancellationToken ct);

    /// <summary>The earliest due time of a claimable, unleased job (of one batch when given).</summary>
    Task<DateTimeOffset?> NextDueAtAsync(long? batchId, CancellationToken ct);

    Task<BatchProgress> GetProgressAsync(long batchId, CancellationToken ct);

    /// <summary>When the batch's first job was submitted (its pace is measured from there); null before any was.</summary>
    Task<DateTimeOffset?> GetFirstSubmitAsync(long batchId, CancellationToken ct);

    Task<EditRecord?> GetJobAsync(long jobId, CancellationToken ct);

    /// <summary>The batch's jobs in key order (for reports).</summary>
    Task<IReadOnlyList<EditRecord>> GetJobsAsync(long batchId, CancellationToken ct);

    Task<IReadOnlyList<EditHistoryEntry>> GetHistoryAsync(long jobId, CancellationToken ct);

    Task RegisterServerAsync(ServerInfo server, CancellationToken ct);

    Task RemoveServerAsync(string serverId, CancellationToken ct);

    /// <summary>Forgets servers whose last heartbeat is older than <paramref name="before"/> (crashed long ago); how many.</summary>
    Task<int> RemoveServersSilentSinceAsync(DateTimeOffset before, CancellationToken ct);

    Task<IReadOnlyList<ServerInfo>> GetServersAsync(CancellationToken ct);

    /// <summary>Pulses <paramref name="signal"/> whenever new work may be due (new jobs, rescued jobs) until cancelled.</summary>
    Task ListenAsync(WorkSignal signal, CancellationToken ct);
}

/// <summary>What a worker asks for when it claims.</summary>
/// <param name="Owner">The server id that will hold the leases.</param>
/// <param name="Limit">How many jobs at most.</param>
/// <param name="LeaseDuration">How long the leases last unless renewed.</param>
/// <param name="BatchId">Only jobs of this batch (the <c>run</c> command), or any.</param>
/// <param name="MaxInFlight">Per provider, the most tasks submitted and not finished; pending jobs of that provider are claimed only within it.</param>
public sealed record ClaimRequest(string Owner, int Limit, TimeSpan LeaseDuration, long? BatchId = null, IReadOnlyDictionary<string, int>? MaxInFlight = null);

/// <summary>One request slot to book: the account's interval between requests and how many may go at once.</summary>
public sealed record RequestReservation(string Account, TimeSpan Interval, int Burst, TimeSpan MaxWait);

/// <summary>An account's shared limiter row: the next free slot, a pause after a 429, and the adaptive rate factor (≤ 1).</summary>
public sealed record RateLimitState(string Account, DateTimeOffset NextSlot, DateTimeOffset? PausedUntil, double Factor);

/// <summary>Conveniences over <see cref="IJobStore"/>.</summary>
public static class JobStoreExtensions
{
    /// <summary>Reserves against the batch budget only; true when reserved.</summary>
    public static async Task<bool> TryReserveBudgetAsync(this IJobStore store, long jobId, string owner, decimal amount, CancellationToken ct) =>
        (await store.TryReserveBudgetAsync(new BudgetReservation(jobId, owner, amount), ct)).Reserved;

    /// <summary>Imports jobs already in memory (tests, small batches).</summary>
    public static Task<BatchImport> ImportBatchAsync(this IJobStore store, NewBatch batch, IEnumerable<NewEdit> jobs, CancellationToken ct) =>
        store.ImportBatchAsync(batch, Stream(jobs), ct);

    private static async IAsyncEnumerable<NewEdit> Stream(IEnumerable<NewEdit> jobs)
    {
        foreach (var job in jobs)
        {
            yield return job;
        }

        await Task.CompletedTask;
    }
}
