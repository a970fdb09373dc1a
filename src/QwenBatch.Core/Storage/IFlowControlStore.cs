namespace QwenBatch.Storage;

/// <summary>
/// Flow control shared by every process on the store: the provider accounts' request allowance (GCRA rows), the pause
/// after a 429, the accounts' daily spend, and the task latencies the fleet learned.
/// </summary>
public interface IFlowControlStore
{
    /// <summary>
    /// Books the next request slot of a provider account, shared by every process on the store. Returns how long to wait
    /// before sending, or null when the slot is further away than <see cref="RequestReservation.MaxWait"/> (nothing booked).
    /// </summary>
    Task<TimeSpan?> ReserveRequestAsync(RequestReservation reservation, CancellationToken ct);

    /// <summary>
    /// Books <paramref name="count"/> consecutive slots (the feeder's submits), whatever their distance; the slots are
    /// <see cref="RequestSlots.Spacing"/> apart from the first.
    /// </summary>
    Task<RequestSlots> ReserveRequestsAsync(RequestReservation reservation, int count, CancellationToken ct);

    /// <summary>Stops every process sending to the account until <paramref name="until"/> and slows its rate (a 429 came).</summary>
    Task PauseAccountAsync(string account, DateTimeOffset until, CancellationToken ct);

    Task<RateLimitState?> GetRateLimitAsync(string account, CancellationToken ct);

    /// <summary>Every account's limiter row.</summary>
    Task<IReadOnlyList<RateLimitState>> GetRateLimitsAsync(CancellationToken ct);

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

/// <summary>A request slot to book: the account's interval between requests and how many may go at once.</summary>
public sealed record RequestReservation(string Account, TimeSpan Interval, int Burst, TimeSpan MaxWait);

/// <summary>Booked slots: the first is <paramref name="FirstWait"/> from now, the others follow <paramref name="Spacing"/> apart.</summary>
public sealed record RequestSlots(TimeSpan FirstWait, TimeSpan Spacing, int Count)
{
    /// <summary>How long from now the <paramref name="index"/>th slot (from 0) is.</summary>
    public TimeSpan Wait(int index) => FirstWait + (Spacing * index);
}

/// <summary>An account's shared limiter row: the next free slot, a pause after a 429, and the adaptive rate factor (≤ 1).</summary>
public sealed record RateLimitState(string Account, DateTimeOffset NextSlot, DateTimeOffset? PausedUntil, double Factor);

/// <summary>A learned task latency: provider, n and size class (empty for the default size), seconds, completions seen.</summary>
public sealed record ProviderLatency(string Provider, int N, string Size, double Seconds, long Samples)
{
    /// <summary>How many completions a stored estimate counts for, at most, when new ones are blended in.</summary>
    public const int MaxStoredWeight = 20;
}

/// <summary>What a feeder releases: held edits of a provider account with a daily budget.</summary>
/// <param name="PricePerImage">What one image costs; an edit needs n × this.</param>
/// <param name="Limit">At most this many edits at once.</param>
public sealed record DailyBudgetRelease(string Provider, decimal DailyCapUsd, decimal PricePerImage, int Limit = 1000)
{
    /// <summary>What the history of a released edit says.</summary>
    public string Reason(DateOnly day) => string.Create(System.Globalization.CultureInfo.InvariantCulture,
        $"released: the {Provider} daily budget of ${DailyCapUsd:0.00##} has room on {day:yyyy-MM-dd} (UTC)");
}

/// <summary>A provider account's money on one UTC day: settled spend and open reservations (of any day, still open).</summary>
public sealed record DailySpend(string Provider, DateOnly Day, decimal SpentUsd, decimal ReservedUsd);
