using Microsoft.Data.Sqlite;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>The daily budget of provider accounts, decided where batch budgets are: in the reservation.</summary>
public sealed partial class SqliteJobStore
{
    private const long MillisPerDay = 86_400_000;

    public async Task<DailySpend> GetDailySpendAsync(string provider, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return await ReadDailySpendAsync(connection, null, provider, 0, ct);
    }

    public async Task<int> ReleaseHeldWithinDailyBudgetAsync(DailyBudgetRelease release, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        int count;
        await using (var connection = await OpenAsync(ct))
        await using (var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct))
        {
            var day = await ReadDailySpendAsync(connection, tx, release.Provider, 0, ct);
            var room = Micros(release.DailyCapUsd) - Micros(day.SpentUsd) - Micros(day.ReservedUsd);
            var price = Micros(release.PricePerImage);

            // Held jobs of the account, oldest first, while their costs add up within today's room and each fits its batch
            // budget; the write lock makes the pick and the moves one step.
            await using var select = Command(connection, tx,
                """
                SELECT id FROM (
                    SELECT j.id, sum(coalesce(json_extract(j.spec, '$.n'), 1) * @price) OVER (ORDER BY j.id) AS running
                    FROM jobs j JOIN batches b ON b.id = j.batch_id
                    WHERE j.state = 'held' AND j.provider = @provider AND j.lease_owner IS NULL
                      AND (b.budget_micros IS NULL OR b.spent_micros + b.reserved_micros + coalesce(json_extract(j.spec, '$.n'), 1) * @price <= b.budget_micros))
                WHERE running <= @room ORDER BY id LIMIT @limit
                """, ("price", price), ("provider", release.Provider), ("room", room), ("limit", release.Limit));
            var ids = await ListAsync(select, r => r.GetInt64(0), ct);
            var reason = release.Reason(day.Day);
            foreach (var id in ids)
            {
                await using var update = Command(connection, tx,
                    "UPDATE jobs SET state = 'pending', due_at = @now, updated_at = @now, error = NULL, attempt = 0 WHERE id = @id",
                    ("now", Ms(now)), ("id", id));
                await update.ExecuteNonQueryAsync(ct);
                await InsertHistoryAsync(connection, tx, id, Ms(now), "held", "pending", reason, null, ct);
            }

            await tx.CommitAsync(ct);
            count = ids.Count;
        }

        if (count > 0)
        {
            PulseListeners();
        }

        return count;
    }

    public async Task<IReadOnlyList<ProviderLatency>> MergeLatenciesAsync(IReadOnlyList<ProviderLatency> observed, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
        foreach (var o in observed)
        {
            await using var upsert = Command(connection, tx,
                """
                INSERT INTO provider_latency AS p (provider, n, size, seconds, samples, updated_at) VALUES (@provider, @n, @size, @seconds, @samples, @now)
                ON CONFLICT (provider, n, size) DO UPDATE SET
                    seconds = (p.seconds * min(p.samples, @weight) + excluded.seconds * excluded.samples) / (min(p.samples, @weight) + excluded.samples),
                    samples = p.samples + excluded.samples,
                    updated_at = excluded.updated_at
                """,
                ("provider", o.Provider), ("n", o.N), ("size", o.Size), ("seconds", o.Seconds), ("samples", Math.Max(1, o.Samples)),
                ("now", Ms(_time.GetUtcNow())), ("weight", ProviderLatency.MaxStoredWeight));
            await upsert.ExecuteNonQueryAsync(ct);
        }

        await using var read = Command(connection, tx, "SELECT provider, n, size, seconds, samples FROM provider_latency ORDER BY provider, n, size");
        var rows = await ListAsync(read, r => new ProviderLatency(r.GetString(0), r.GetInt32(1), r.GetString(2), r.GetDouble(3), r.GetInt64(4)), ct);
        await tx.CommitAsync(ct);
        return rows;
    }

    /// <summary>The account's settled spend on the store clock's UTC day and its open reservations (but job <paramref name="exceptJob"/>'s).</summary>
    private async Task<DailySpend> ReadDailySpendAsync(SqliteConnection connection, SqliteTransaction? tx, string provider, long exceptJob, CancellationToken ct)
    {
        var dayNumber = Ms(_time.GetUtcNow()) / MillisPerDay;
        await using var command = Command(connection, tx,
            """
            SELECT coalesce((SELECT spent_micros FROM spend_by_day WHERE day = @day AND provider = @provider), 0),
                   coalesce((SELECT sum(reserved_micros) FROM jobs WHERE provider = @provider AND reserved_micros <> 0 AND id <> @id), 0)
            """, ("day", dayNumber), ("provider", provider), ("id", exceptJob));
        var (spent, reserved) = (await ListAsync(command, r => (Dialect.Money(r, 0), Dialect.Money(r, 1)), ct))[0];
        return new DailySpend(provider, DateOnly.FromDayNumber(DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber + (int)dayNumber), spent, reserved);
    }
}
