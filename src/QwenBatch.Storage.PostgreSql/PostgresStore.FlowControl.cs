using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>
/// Flow control shared by the fleet (IFlowControlStore): the accounts' GCRA rows, the pause after a 429, the daily spend,
/// the learned latencies. Budgets are decided by the feeder's round (PostgresStore.Feed), which reads the same numbers.
/// </summary>
public sealed partial class PostgresStore
{
    public async Task<TimeSpan?> ReserveRequestAsync(RequestReservation reservation, CancellationToken ct)
    {
        var now = _time.GetUtcNow();

        // GCRA with reservations: each request books the next slot (tat advances by one interval, stretched while the
        // adaptive factor is below 1) and is told how long to wait for it. Slots too far ahead are not booked.
        await using var command = _dataSource.CreateCommand(
            """
            INSERT INTO rate_limits AS r (account, tat, granted_at, factor) VALUES (@account, @now + @interval, @now, 1)
            ON CONFLICT (account) DO UPDATE SET
                granted_at = greatest(r.tat, @now, coalesce(r.paused_until, @now)) - @tolerance,
                tat = greatest(r.tat, @now, coalesce(r.paused_until, @now)) + @interval / r.factor,
                factor = least(1.0, r.factor * 1.01)
            WHERE greatest(r.tat, @now, coalesce(r.paused_until, @now)) - @tolerance - @now <= @max_wait
            RETURNING granted_at
            """);
        command.Parameters.AddWithValue("account", reservation.Account);
        command.Parameters.AddWithValue("now", now);
        command.Parameters.AddWithValue("interval", reservation.Interval);
        command.Parameters.AddWithValue("tolerance", reservation.Interval * (reservation.Burst - 1));
        command.Parameters.AddWithValue("max_wait", reservation.MaxWait);
        if (await command.ExecuteScalarAsync(ct) is not DateTime granted)
        {
            return null;
        }

        var wait = new DateTimeOffset(granted, TimeSpan.Zero) - now;
        return wait > TimeSpan.Zero ? wait : TimeSpan.Zero;
    }

    public async Task<RequestSlots> ReserveRequestsAsync(RequestReservation reservation, int count, CancellationToken ct)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(count);
        if (count == 0)
        {
            return new RequestSlots(TimeSpan.Zero, reservation.Interval, 0);
        }

        var now = _time.GetUtcNow();

        // The slots a run of single reservations would book, in one statement: tat advances by count spacings (an interval
        // stretched by the factor as it stood) and the factor recovers as it would have, request by request. The spacing
        // comes back from the row itself (the new tat less where the first slot's spacing began), so it is the one booked
        // even when another process changed the factor a moment before. A first slot inside the burst allowance is told
        // "now", and the others follow it a spacing apart: never earlier than booked.
        await using var command = _dataSource.CreateCommand(
            """
            INSERT INTO rate_limits AS r (account, tat, granted_at, factor) VALUES (@account, @now + @interval * @count, @now - @tolerance, 1)
            ON CONFLICT (account) DO UPDATE SET
                granted_at = greatest(r.tat, @now, coalesce(r.paused_until, @now)) - @tolerance,
                tat = greatest(r.tat, @now, coalesce(r.paused_until, @now)) + (@interval / r.factor) * @count,
                factor = least(1.0, r.factor * power(1.01::float8, @count))
            RETURNING granted_at, tat
            """);
        command.Parameters.AddWithValue("account", reservation.Account);
        command.Parameters.AddWithValue("now", now);
        command.Parameters.AddWithValue("interval", reservation.Interval);
        command.Parameters.AddWithValue("tolerance", reservation.Interval * (reservation.Burst - 1));
        command.Parameters.AddWithValue("count", count);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        var granted = Dialect.Time(reader, 0);
        var tat = Dialect.Time(reader, 1);
        var spacing = (tat - (granted + (reservation.Interval * (reservation.Burst - 1)))) / count;
        var first = granted - now;
        return new RequestSlots(first > TimeSpan.Zero ? first : TimeSpan.Zero, spacing, count);
    }

    public async Task PauseAccountAsync(string account, DateTimeOffset until, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            """
            INSERT INTO rate_limits AS r (account, tat, granted_at, paused_until, factor) VALUES (@account, @until, @now, @until, 0.7)
            ON CONFLICT (account) DO UPDATE SET
                paused_until = greatest(coalesce(r.paused_until, @until), @until),
                factor = greatest(0.1, r.factor * 0.7)
            """);
        command.Parameters.AddWithValue("account", account);
        command.Parameters.AddWithValue("until", until);
        command.Parameters.AddWithValue("now", _time.GetUtcNow());
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<RateLimitState?> GetRateLimitAsync(string account, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("SELECT account, tat, paused_until, factor FROM rate_limits WHERE account = @account");
        command.Parameters.AddWithValue("account", account);
        return (await ListAsync(command, r => new RateLimitState(r.GetString(0), Dialect.Time(r, 1), Dialect.NullableTime(r, 2), r.GetDouble(3)), ct)).SingleOrDefault();
    }

    public async Task<IReadOnlyList<RateLimitState>> GetRateLimitsAsync(CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("SELECT account, tat, paused_until, factor FROM rate_limits ORDER BY account");
        return await ListAsync(command, r => new RateLimitState(r.GetString(0), Dialect.Time(r, 1), Dialect.NullableTime(r, 2), r.GetDouble(3)), ct);
    }

    public async Task<DailySpend> GetDailySpendAsync(string provider, CancellationToken ct)
    {
        var day = Today();
        await using var command = _dataSource.CreateCommand($"SELECT {DaySpentSql("@provider")}, {DayReservedSql("@provider")}");
        command.Parameters.AddWithValue("day", day);
        command.Parameters.AddWithValue("provider", provider);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return new DailySpend(provider, day, reader.GetDecimal(0), reader.GetDecimal(1));
    }

    public async Task<IReadOnlyList<ProviderLatency>> MergeLatenciesAsync(IReadOnlyList<ProviderLatency> observed, CancellationToken ct)
    {
        // One round trip: the upsert (a weighted mean, the stored side capped in weight), then the read of every row,
        // which as a statement of its own sees the upsert.
        await using var command = _dataSource.CreateCommand(
            """
            INSERT INTO provider_latency AS p (provider, n, size, seconds, samples, updated_at)
            SELECT * FROM unnest(@providers::text[], @ns::int[], @sizes::text[], @seconds::float8[], @samples::bigint[]) AS o, (SELECT @now::timestamptz) t
            ORDER BY 1, 2, 3
            ON CONFLICT (provider, n, size) DO UPDATE SET
                seconds = (p.seconds * least(p.samples, @weight) + excluded.seconds * excluded.samples) / (least(p.samples, @weight) + excluded.samples),
                samples = p.samples + excluded.samples,
                updated_at = excluded.updated_at;
            SELECT provider, n, size, seconds, samples FROM provider_latency ORDER BY provider, n, size;
            """);
        command.Parameters.AddWithValue("providers", observed.Select(o => o.Provider).ToArray());
        command.Parameters.AddWithValue("ns", observed.Select(o => o.N).ToArray());
        command.Parameters.AddWithValue("sizes", observed.Select(o => o.Size).ToArray());
        command.Parameters.AddWithValue("seconds", observed.Select(o => o.Seconds).ToArray());
        command.Parameters.AddWithValue("samples", observed.Select(o => Math.Max(1, o.Samples)).ToArray());
        command.Parameters.AddWithValue("now", _time.GetUtcNow());
        command.Parameters.AddWithValue("weight", (long)ProviderLatency.MaxStoredWeight);
        var rows = new List<ProviderLatency>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        do
        {
            while (reader.FieldCount == 5 && await reader.ReadAsync(ct))
            {
                rows.Add(new ProviderLatency(reader.GetString(0), reader.GetInt32(1), reader.GetString(2), reader.GetDouble(3), reader.GetInt64(4)));
            }
        }
        while (await reader.NextResultAsync(ct));

        return rows;
    }

    /// <summary>An account's settled spend on <c>@day</c> (UTC), as a scalar subquery.</summary>
    private static string DaySpentSql(string provider) =>
        $"coalesce((SELECT s.spent_usd FROM spend_by_day s WHERE s.day = @day AND s.provider = {provider}), 0)";

    /// <summary>An account's open reservations, of any day (they settle today or later), as a scalar subquery.</summary>
    private static string DayReservedSql(string provider) =>
        $"coalesce((SELECT sum(o.reserved_usd) FROM jobs o WHERE o.provider = {provider} AND o.reserved_usd <> 0), 0)";
}
