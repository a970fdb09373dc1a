using Microsoft.Data.Sqlite;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>
/// Flow control shared by every process on the file (IFlowControlStore): the accounts' GCRA rows, the pause after a 429,
/// the daily spend, the learned latencies. Each read-then-write holds SQLite's write lock, so it cannot race.
/// </summary>
public sealed partial class SqliteStore
{
    public async Task<TimeSpan?> ReserveRequestAsync(RequestReservation reservation, CancellationToken ct)
    {
        var now = NowMs();
        var interval = reservation.Interval.TotalMilliseconds;
        var tolerance = interval * (reservation.Burst - 1);
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        var (tat, paused, factor) = await ReadLimiterAsync(connection, tx, reservation.Account, now, ct);

        // GCRA with reservations, as in the PostgreSQL store: book the next slot and say how long to wait for it.
        var start = Math.Max(Math.Max(tat, now), paused ?? now);
        var granted = start - tolerance;
        if (granted - now > reservation.MaxWait.TotalMilliseconds)
        {
            return null;
        }

        await WriteLimiterAsync(connection, tx, reservation.Account, start + (long)Math.Round(interval / factor), (long)granted, paused, Math.Min(1.0, factor * 1.01), ct);
        await tx.CommitAsync(ct);
        return TimeSpan.FromMilliseconds(Math.Max(0, granted - now));
    }

    public async Task<RequestSlots> ReserveRequestsAsync(RequestReservation reservation, int count, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count == 0)
        {
            return new RequestSlots(TimeSpan.Zero, reservation.Interval, 0);
        }

        var now = NowMs();
        var interval = reservation.Interval.TotalMilliseconds;
        var tolerance = interval * (reservation.Burst - 1);
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        var (tat, paused, factor) = await ReadLimiterAsync(connection, tx, reservation.Account, now, ct);

        // The slots a run of single reservations would book: count spacings of the interval stretched by the factor as it
        // stands, the factor recovering as it would have, request by request. A first slot inside the burst allowance is
        // told "now", and the others follow it a spacing apart: never earlier than booked.
        var start = Math.Max(Math.Max(tat, now), paused ?? now);
        var spacing = (long)Math.Round(interval / factor);
        var granted = start - tolerance;
        await WriteLimiterAsync(connection, tx, reservation.Account, start + (spacing * count), (long)granted, paused, Math.Min(1.0, factor * Math.Pow(1.01, count)), ct);
        await tx.CommitAsync(ct);
        return new RequestSlots(TimeSpan.FromMilliseconds(Math.Max(0, granted - now)), TimeSpan.FromMilliseconds(spacing), count);
    }

    public async Task PauseAccountAsync(string account, DateTimeOffset until, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await ExecuteAsync(connection, null,
            """
            INSERT INTO rate_limits (account, tat, granted_at, paused_until, factor) VALUES (@account, @until, @now, @until, 0.7)
            ON CONFLICT (account) DO UPDATE SET paused_until = max(coalesce(paused_until, @until), @until), factor = max(0.1, factor * 0.7)
            """, ct, ("account", account), ("until", Ms(until)), ("now", NowMs()));
    }

    public async Task<RateLimitState?> GetRateLimitAsync(string account, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "SELECT account, tat, paused_until, factor FROM rate_limits WHERE account = @account", ("account", account));
        return (await ListAsync(command, r => new RateLimitState(r.GetString(0), Dialect.Time(r, 1), Dialect.NullableTime(r, 2), r.GetDouble(3)), ct)).SingleOrDefault();
    }

    public async Task<IReadOnlyList<RateLimitState>> GetRateLimitsAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "SELECT account, tat, paused_until, factor FROM rate_limits ORDER BY account");
        return await ListAsync(command, r => new RateLimitState(r.GetString(0), Dialect.Time(r, 1), Dialect.NullableTime(r, 2), r.GetDouble(3)), ct);
    }

    public async Task<DailySpend> GetDailySpendAsync(string provider, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return await ReadDailySpendAsync(connection, null, provider, NowMs(), ct);
    }

    public async Task<IReadOnlyList<ProviderLatency>> MergeLatenciesAsync(IReadOnlyList<ProviderLatency> observed, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        foreach (var o in observed)
        {
            // A weighted mean, the stored side capped in weight, so the fleet's estimate follows a provider that changes.
            await ExecuteAsync(connection, tx,
                """
                INSERT INTO provider_latency AS p (provider, n, size, seconds, samples, updated_at) VALUES (@provider, @n, @size, @seconds, @samples, @now)
                ON CONFLICT (provider, n, size) DO UPDATE SET
                    seconds = (p.seconds * min(p.samples, @weight) + excluded.seconds * excluded.samples) / (min(p.samples, @weight) + excluded.samples),
                    samples = p.samples + excluded.samples,
                    updated_at = excluded.updated_at
                """, ct,
                ("provider", o.Provider), ("n", o.N), ("size", o.Size), ("seconds", o.Seconds), ("samples", Math.Max(1, o.Samples)),
                ("now", NowMs()), ("weight", ProviderLatency.MaxStoredWeight));
        }

        await using var read = Command(connection, tx, "SELECT provider, n, size, seconds, samples FROM provider_latency ORDER BY provider, n, size");
        var rows = await ListAsync(read, r => new ProviderLatency(r.GetString(0), r.GetInt32(1), r.GetString(2), r.GetDouble(3), r.GetInt64(4)), ct);
        await tx.CommitAsync(ct);
        return rows;
    }

    /// <summary>The account's settled spend on the UTC day of <paramref name="now"/> and its open reservations (of any day).</summary>
    private static async Task<DailySpend> ReadDailySpendAsync(SqliteConnection connection, SqliteTransaction? tx, string provider, long now, CancellationToken ct)
    {
        await using var command = Command(connection, tx,
            """
            SELECT coalesce((SELECT spent_micros FROM spend_by_day WHERE day = @day AND provider = @provider), 0),
                   coalesce((SELECT sum(reserved_micros) FROM jobs WHERE provider = @provider AND reserved_micros <> 0), 0)
            """, ("day", now / MillisPerDay), ("provider", provider));
        var (spent, reserved) = (await ListAsync(command, r => (Dialect.Money(r, 0), Dialect.Money(r, 1)), ct))[0];
        return new DailySpend(provider, DayOf(now), spent, reserved);
    }

    private static async Task<(long Tat, long? Paused, double Factor)> ReadLimiterAsync(SqliteConnection connection, SqliteTransaction tx, string account, long now, CancellationToken ct)
    {
        await using var read = Command(connection, tx, "SELECT tat, paused_until, factor FROM rate_limits WHERE account = @account", ("account", account));
        var rows = await ListAsync(read, r => (Tat: r.GetInt64(0), Paused: r.IsDBNull(1) ? (long?)null : r.GetInt64(1), Factor: r.GetDouble(2)), ct);
        return rows.Count == 0 ? (now, null, 1.0) : rows[0];
    }

    private static Task<int> WriteLimiterAsync(
        SqliteConnection connection, SqliteTransaction tx, string account, long tat, long granted, long? paused, double factor, CancellationToken ct) =>
        ExecuteAsync(connection, tx,
            """
            INSERT INTO rate_limits (account, tat, granted_at, paused_until, factor) VALUES (@account, @tat, @granted, @paused, @factor)
            ON CONFLICT (account) DO UPDATE SET tat = excluded.tat, granted_at = excluded.granted_at, factor = excluded.factor
            """, ct, ("account", account), ("tat", tat), ("granted", granted), ("paused", paused), ("factor", factor));
}
