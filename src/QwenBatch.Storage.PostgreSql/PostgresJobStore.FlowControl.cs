using Npgsql;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>The daily budget of provider accounts, decided where batch budgets are: in the reservation.</summary>
public sealed partial class PostgresJobStore
{
    /// <summary>The provider account of the job being reserved: read from the job itself.</summary>
    private const string JobProvider = "(SELECT provider FROM jobs WHERE id = @id)";

    /// <summary>An account's spend today and its open reservations (of any batch, not yet settled, but job @id's), as one row.</summary>
    private static string DaySql(string provider) => $"""
        coalesce((SELECT s.spent_usd FROM spend_by_day s WHERE s.day = @day AND s.provider = {provider}), 0) AS spent,
        coalesce((SELECT sum(o.reserved_usd) FROM jobs o WHERE o.provider = {provider} AND o.reserved_usd <> 0 AND o.id <> @id), 0) AS reserved
        """;

    public async Task<DailySpend> GetDailySpendAsync(string provider, CancellationToken ct)
    {
        var day = Today();
        await using var command = _dataSource.CreateCommand($"SELECT {DaySql("@provider")}");
        command.Parameters.AddWithValue("day", day);
        command.Parameters.AddWithValue("provider", provider);
        command.Parameters.AddWithValue("id", 0L);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return new DailySpend(provider, day, reader.GetDecimal(0), reader.GetDecimal(1));
    }

    public async Task<int> ReleaseHeldWithinDailyBudgetAsync(DailyBudgetRelease release, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        var day = DateOnly.FromDateTime(now.UtcDateTime);

        // Held jobs of the account, oldest first, while their costs add up within today's room and each fits its batch
        // budget. Two workers releasing at once both pick the same jobs; the guarded update lets only one move each.
        await using var command = _dataSource.CreateCommand(
            $"""
            WITH room AS (
                SELECT @cap - spent - reserved AS usd FROM (SELECT {DaySql("@provider")}) d
            ), candidates AS (
                SELECT j.id, sum((j.spec->>'n')::numeric * @price) OVER (ORDER BY j.id) AS running
                FROM jobs j JOIN batches b ON b.id = j.batch_id
                WHERE j.state = 'held' AND j.provider = @provider AND j.lease_owner IS NULL
                  AND (b.budget_usd IS NULL OR b.spent_usd + b.reserved_usd + (j.spec->>'n')::numeric * @price <= b.budget_usd)
            ), chosen AS (
                SELECT c.id FROM candidates c, room WHERE c.running <= room.usd ORDER BY c.id LIMIT @limit
            ), released AS (
                UPDATE jobs j SET state = 'pending', due_at = @now, updated_at = @now, error = NULL, attempt = 0
                FROM chosen WHERE j.id = chosen.id AND j.state = 'held' AND j.lease_owner IS NULL
                RETURNING j.id, j.batch_id, 'held'::text AS from_state, j.state AS to_state
            ), {CountMoves("released")}, history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason)
                SELECT id, @now, 'held', 'pending', @reason FROM released
            ), notify AS (
                SELECT pg_notify('{Channel}', '') FROM released LIMIT 1
            )
            SELECT (SELECT count(*) FROM released)::int + 0 * (SELECT count(*) FROM notify)::int
            """);
        command.Parameters.AddWithValue("cap", release.DailyCapUsd);
        command.Parameters.AddWithValue("price", release.PricePerImage);
        command.Parameters.AddWithValue("provider", release.Provider);
        command.Parameters.AddWithValue("day", day);
        command.Parameters.AddWithValue("id", 0L);
        command.Parameters.AddWithValue("limit", release.Limit);
        command.Parameters.AddWithValue("now", now);
        command.Parameters.AddWithValue("reason", release.Reason(day));
        return (int)(await command.ExecuteScalarAsync(ct))!;
    }

    /// <summary>
    /// The reservation when the account has a daily budget. The daily cap is enforced here, in the one place reservations
    /// are decided, in four statements of one transaction (one round trip):
    /// 1. lock the job row, then its batch row — the lock order of every transition, so they never deadlock;
    /// 2–3. create and lock the account's spend_by_day row of today (UTC). Every reservation of the account, and every
    ///    settlement (the counters trigger updates that row), queues on this lock, so the sum read next cannot miss one;
    /// 4. in a fresh snapshot (read committed: each statement takes a new one, after the lock was granted) add the day's
    ///    spend, every open reservation of the account and this amount, compare with the cap and the batch budget, and
    ///    reserve only when both hold. Open reservations count whatever day they were made: they settle today or later.
    /// </summary>
    private async Task<BudgetVerdict> TryReserveWithinDailyBudgetAsync(BudgetReservation reservation, CancellationToken ct)
    {
        var day = Today();
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await using var batch = new NpgsqlBatch(connection, tx);
        batch.BatchCommands.Add(Statement(reservation, day,
            """
            WITH j AS (
                SELECT id, batch_id FROM jobs WHERE id = @id AND lease_owner = @owner FOR UPDATE
            ), b AS (
                SELECT b.id FROM batches b JOIN j ON b.id = j.batch_id FOR UPDATE OF b
            )
            SELECT count(*) FROM j, b
            """));
        batch.BatchCommands.Add(Statement(reservation, day,
            "INSERT INTO spend_by_day (day, provider, spent_usd) SELECT @day, provider, 0 FROM jobs WHERE id = @id ON CONFLICT (day, provider) DO NOTHING"));
        batch.BatchCommands.Add(Statement(reservation, day, $"SELECT 1 FROM spend_by_day WHERE day = @day AND provider = {JobProvider} FOR UPDATE"));
        batch.BatchCommands.Add(Statement(reservation, day,
            $"""
            WITH j AS (
                SELECT id, batch_id, reserved_usd FROM jobs WHERE id = @id AND lease_owner = @owner
            ), b AS (
                SELECT b.id, b.budget_usd, b.spent_usd, b.reserved_usd FROM batches b JOIN j ON b.id = j.batch_id
            ), verdict AS (
                SELECT j.id, j.batch_id, @amount - j.reserved_usd AS delta, d.spent, d.reserved,
                    CASE WHEN b.budget_usd IS NOT NULL AND b.spent_usd + b.reserved_usd + (@amount - j.reserved_usd) > b.budget_usd THEN 'batch'
                         -- The daily cap: settled today + every other open reservation of the account + this one.
                         WHEN d.spent + d.reserved + @amount > @cap THEN 'daily' END AS refusal
                FROM j, b, (SELECT {DaySql(JobProvider)}) d
            ), reserved AS (
                UPDATE jobs SET reserved_usd = @amount FROM verdict v WHERE jobs.id = v.id AND v.refusal IS NULL RETURNING jobs.id
            ), counted AS (
                UPDATE batches SET reserved_usd = batches.reserved_usd + v.delta FROM verdict v WHERE batches.id = v.batch_id AND v.refusal IS NULL
            )
            SELECT refusal, spent, reserved FROM verdict
            """));

        BudgetVerdict verdict = new(BudgetRefusal.NotLeased);
        await using (var reader = await batch.ExecuteReaderAsync(ct))
        {
            do
            {
                if (reader.FieldCount == 3 && reader.GetName(0) == "refusal" && await reader.ReadAsync(ct))
                {
                    verdict = new BudgetVerdict(
                        reader.IsDBNull(0) ? BudgetRefusal.None : reader.GetString(0) == "batch" ? BudgetRefusal.BatchBudget : BudgetRefusal.DailyBudget,
                        day, reader.GetDecimal(1), reader.GetDecimal(2));
                }
            }
            while (await reader.NextResultAsync(ct));
        }

        await tx.CommitAsync(ct);
        return verdict;
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

    private static NpgsqlBatchCommand Statement(BudgetReservation reservation, DateOnly day, string sql)
    {
        var command = new NpgsqlBatchCommand(sql);
        command.Parameters.AddWithValue("id", reservation.JobId);
        command.Parameters.AddWithValue("owner", reservation.Owner);
        command.Parameters.AddWithValue("amount", reservation.Amount);
        command.Parameters.AddWithValue("cap", reservation.DailyCapUsd!.Value);
        command.Parameters.AddWithValue("day", day);
        return command;
    }

    private DateOnly Today() => DateOnly.FromDateTime(_time.GetUtcNow().UtcDateTime);
}
