namespace QwenBatch.Storage;

/// <summary>Flow control kept in the store beyond the batch budget: the accounts' daily budgets, learned latencies.</summary>
public partial interface IJobStore
{
    /// <summary>
    /// Returns held jobs of <see cref="DailyBudgetRelease.Provider"/> to pending, due now, oldest first, as many as the
    /// account's daily budget has room for today (UTC) and whose batch budget has room for them: jobs the daily budget held
    /// resume by themselves when the day rolls over or the cap is raised. The submit reserves again, so a job released
    /// too eagerly is only held again, never run over a budget. Returns how many were released.
    /// </summary>
    Task<int> ReleaseHeldWithinDailyBudgetAsync(DailyBudgetRelease release, CancellationToken ct);

    /// <summary>The provider account's settled spend and open reservations on the store clock's UTC day.</summary>
    Task<DailySpend> GetDailySpendAsync(string provider, CancellationToken ct);

    /// <summary>
    /// Blends <paramref name="observed"/> (a process's estimates and how many completions each learned from since its last
    /// save) into the stored latencies in one statement, and returns every stored latency. A stored estimate weighs as at
    /// most <see cref="ProviderLatency.MaxStoredWeight"/> completions, so the fleet's estimate follows a provider that
    /// changes. With nothing observed it only reads (a process starting warm).
    /// </summary>
    Task<IReadOnlyList<ProviderLatency>> MergeLatenciesAsync(IReadOnlyList<ProviderLatency> observed, CancellationToken ct);
}

/// <summary>A learned task latency: provider, n and size class (empty for the default size), seconds, completions seen.</summary>
public sealed record ProviderLatency(string Provider, int N, string Size, double Seconds, long Samples)
{
    /// <summary>How many completions a stored estimate counts for, at most, when new ones are blended in.</summary>
    public const int MaxStoredWeight = 20;
}

/// <summary>One budget reservation before a submit.</summary>
/// <param name="JobId">The job about to be submitted.</param>
/// <param name="Owner">The server holding its lease.</param>
/// <param name="Amount">The most its task can cost (n × price per image).</param>
/// <param name="DailyCapUsd">
/// The job's provider account's daily budget (<c>Providers:&lt;Name&gt;:DailyBudgetUsd</c>), or null for none. A day is a
/// UTC calendar day of the store's clock; spent today plus every open reservation of the account plus this amount must
/// stay within it.
/// </param>
public sealed record BudgetReservation(long JobId, string Owner, decimal Amount, decimal? DailyCapUsd = null);

/// <summary>Why a reservation was refused.</summary>
public enum BudgetRefusal
{
    /// <summary>Not refused: reserved.</summary>
    None,

    /// <summary>The job is not leased by the owner (another worker took it over): nothing to hold.</summary>
    NotLeased,

    /// <summary>The batch budget (<c>--budget</c>) would be exceeded.</summary>
    BatchBudget,

    /// <summary>The provider account's daily budget would be exceeded.</summary>
    DailyBudget,
}

/// <summary>The outcome of a reservation, with the account's day when a daily budget was checked.</summary>
/// <param name="Day">The UTC day the daily budget was checked against.</param>
/// <param name="DaySpentUsd">Settled spend of the account on that day, before this reservation.</param>
/// <param name="DayReservedUsd">Open reservations of the account's other jobs, before this reservation.</param>
public sealed record BudgetVerdict(BudgetRefusal Refusal, DateOnly Day = default, decimal DaySpentUsd = 0, decimal DayReservedUsd = 0)
{
    public static BudgetVerdict Granted { get; } = new(BudgetRefusal.None);

    public bool Reserved => Refusal == BudgetRefusal.None;
}

/// <summary>What a worker releases: held jobs of a provider account with a daily budget.</summary>
/// <param name="PricePerImage">What one image costs; a job needs n × this.</param>
/// <param name="Limit">At most this many jobs at once.</param>
public sealed record DailyBudgetRelease(string Provider, decimal DailyCapUsd, decimal PricePerImage, int Limit = 1000)
{
    /// <summary>What the history of a released job says.</summary>
    public string Reason(DateOnly day) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"released: the {Provider} daily budget of ${DailyCapUsd:0.00##} has room on {day:yyyy-MM-dd} (UTC)");
}

/// <summary>A provider account's money on one UTC day: settled spend and open reservations (of any day, still open).</summary>
public sealed record DailySpend(string Provider, DateOnly Day, decimal SpentUsd, decimal ReservedUsd);
