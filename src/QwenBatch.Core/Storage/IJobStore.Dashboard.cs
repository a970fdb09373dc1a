using QwenBatch.Edits;

namespace QwenBatch.Storage;

/// <summary>
/// The read and bulk-operation queries of the dashboard and REST API. Counts and spend come from counters the stores keep
/// in step with every write (migration 3), never from counting jobs per request.
/// </summary>
public partial interface IJobStore
{
    /// <summary>The highest applied migration (for health checks); 0 on an empty database.</summary>
    Task<int> GetSchemaVersionAsync(CancellationToken ct);

    /// <summary>The highest migration this build knows: a database below it has migrations to apply.</summary>
    int LatestSchemaVersion { get; }

    /// <summary>Every batch's job count per state, from the maintained counters (zero counts left out).</summary>
    Task<IReadOnlyList<BatchStateCount>> GetStateCountsAsync(CancellationToken ct);

    /// <summary>Settled cost per provider on one UTC day, or over all time when <paramref name="day"/> is null.</summary>
    Task<IReadOnlyList<ProviderSpend>> GetSpendAsync(DateOnly? day, CancellationToken ct);

    /// <summary>Every account's shared limiter row.</summary>
    Task<IReadOnlyList<RateLimitState>> GetRateLimitsAsync(CancellationToken ct);

    /// <summary>One page of jobs, newest first, after the <see cref="EditQuery.BeforeId"/> cursor (keyset paging).</summary>
    Task<IReadOnlyList<EditRecord>> QueryJobsAsync(EditQuery query, CancellationToken ct);

    /// <summary>Returns the given unleased failed, cancelled or held jobs to pending, due now, with fresh attempts.</summary>
    Task<int> RequeueJobsAsync(IReadOnlyList<long> jobIds, CancellationToken ct);

    /// <summary>
    /// Cancels the given jobs as a batch cancel would: waiting ones at once, ones at the provider flagged for a worker to
    /// send the provider's cancel. Returns how many were cancelled or flagged.
    /// </summary>
    Task<int> CancelJobsAsync(IReadOnlyList<long> jobIds, CancellationToken ct);

    /// <summary>Deletes the given unleased settled jobs (with their history); the batch's spend is kept.</summary>
    Task<int> DeleteJobsAsync(IReadOnlyList<long> jobIds, CancellationToken ct);

    /// <summary>
    /// Jobs that became succeeded or failed per UTC hour, from the hour holding <paramref name="since"/> on, oldest first,
    /// from the maintained counters (migration 7); empty hours are left out. Outcomes are events: a later requeue or purge
    /// does not take them back.
    /// </summary>
    Task<IReadOnlyList<HourlyOutcome>> GetOutcomesAsync(DateTimeOffset since, CancellationToken ct);

    /// <summary>
    /// Per server id that holds a lease now or lost jobs to the rescuer (registered or long gone): the jobs it holds and
    /// how many jobs were rescued from it, and when last.
    /// </summary>
    Task<IReadOnlyList<ServerLoad>> GetServerLoadAsync(CancellationToken ct);

    /// <summary>The newest rescues (history rows of jobs whose lease expired), of one server when given.</summary>
    Task<IReadOnlyList<EditHistoryEntry>> GetRescuesAsync(string? serverId, int limit, CancellationToken ct);
}

/// <summary>How many jobs reached a state (succeeded or failed) in the UTC hour starting at <paramref name="Hour"/>.</summary>
public sealed record HourlyOutcome(DateTimeOffset Hour, EditState State, long Count);

/// <summary>What a server has in hand (the ids of the jobs it leases now) and what the rescuer took from it.</summary>
public sealed record ServerLoad(string ServerId, IReadOnlyList<long> JobsInHand, long Rescued, DateTimeOffset? LastRescueAt);

/// <summary>How many jobs of a batch are in a state.</summary>
public sealed record BatchStateCount(long BatchId, EditState State, long Count);

/// <summary>Settled cost of one provider.</summary>
public sealed record ProviderSpend(string Provider, decimal SpentUsd);

/// <summary>A page request for the jobs pages: filters, and the keyset cursor (the smallest id of the previous page).</summary>
public sealed record EditQuery(EditState? State = null, long? BatchId = null, string? Provider = null, string? Text = null, long? BeforeId = null, int Limit = 20)
{
    /// <summary>The text as a LIKE pattern: the wildcards of the user's text escaped with a backslash.</summary>
    public string? LikePattern => string.IsNullOrWhiteSpace(Text)
        ? null
        : "%" + Text.Trim().Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal) + "%";

    /// <summary>The text as a job id, when it is one.</summary>
    public long? TextAsId => long.TryParse(Text?.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) ? id : null;
}
