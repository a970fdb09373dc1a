using Microsoft.Data.Sqlite;
using QwenBatch.Retention;
using QwenBatch.Schedules;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>Schedules, their once-only occurrences, and chunked retention (migration 4).</summary>
public sealed partial class SqliteJobStore
{
    private const string ScheduleColumns =
        "name, cron, time_zone, manifest, provider, storage_root, budget_micros, catch_up, paused, next_at, last_run_at, last_batch, last_error";

    public async Task<bool> AddScheduleAsync(ScheduleDefinition schedule, DateTimeOffset nextAt, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            """
            INSERT INTO schedules (name, cron, time_zone, manifest, provider, storage_root, budget_micros, catch_up, next_at, created_at)
            VALUES (@name, @cron, @tz, @manifest, @provider, @root, @budget, @catch_up, @next, @now)
            ON CONFLICT (name) DO NOTHING
            """,
            ("name", schedule.Name), ("cron", schedule.Cron), ("tz", schedule.TimeZone), ("manifest", schedule.Manifest),
            ("provider", schedule.Provider), ("root", schedule.StorageRoot), ("budget", schedule.BudgetUsd is { } b ? Micros(b) : null),
            ("catch_up", schedule.CatchUp.ToDbName()), ("next", Ms(nextAt)), ("now", Ms(_time.GetUtcNow())));
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task<IReadOnlyList<ScheduleRecord>> GetSchedulesAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {ScheduleColumns} FROM schedules ORDER BY name");
        return await ListAsync(command, r => new ScheduleRecord(
            new ScheduleDefinition(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5),
                Dialect.NullableMoney(r, 6), CatchUpPolicies.Parse(r.GetString(7))),
            Dialect.Time(r, 9), Dialect.Bool(r, 8), Dialect.NullableTime(r, 10), r.IsDBNull(11) ? null : r.GetString(11), r.IsDBNull(12) ? null : r.GetString(12)), ct);
    }

    public async Task<bool> RemoveScheduleAsync(string name, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "DELETE FROM schedules WHERE name = @name", ("name", name));
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task<bool> SetSchedulePausedAsync(string name, bool paused, DateTimeOffset nextAt, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            "UPDATE schedules SET paused = @paused, next_at = CASE WHEN @paused THEN next_at ELSE @next END WHERE name = @name",
            ("name", name), ("paused", paused ? 1 : 0), ("next", Ms(nextAt)));
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task<bool> ClaimOccurrenceAsync(OccurrenceClaim claim, CancellationToken ct)
    {
        // The insert of (schedule, occurrence) is the claim; the transaction holds SQLite's write lock, so the loser's
        // insert is ignored and it moves nothing. next_at never goes backwards.
        await using var connection = await OpenAsync(ct);
        await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
        var clock = _time.GetUtcNow();
        var now = Ms(clock);
        await using var insert = Command(connection, tx,
            """
            INSERT INTO schedule_runs (schedule, occurrence, owner, claimed_at, lease_expires_at)
            SELECT name, @occurrence, @owner, @now, @lease_end FROM schedules WHERE name = @name
            ON CONFLICT (schedule, occurrence) DO NOTHING
            """,
            ("name", claim.Schedule), ("occurrence", Ms(claim.Occurrence)), ("owner", claim.Owner), ("now", now), ("lease_end", Ms(clock + claim.Lease)));
        var won = await insert.ExecuteNonQueryAsync(ct) == 1;
        if (won)
        {
            await using var advance = Command(connection, tx, "UPDATE schedules SET next_at = max(next_at, @next), last_run_at = @now WHERE name = @name",
                ("name", claim.Schedule), ("next", Ms(claim.NextAt)), ("now", now));
            await advance.ExecuteNonQueryAsync(ct);
        }

        await tx.CommitAsync(ct);
        return won;
    }

    public async Task<IReadOnlyList<AbandonedOccurrence>> ReclaimOccurrencesAsync(string owner, TimeSpan lease, int limit, CancellationToken ct)
    {
        // One UPDATE under SQLite's write lock: the guard on the expired lease gives each open occurrence to one caller.
        await using var connection = await OpenAsync(ct);
        var now = _time.GetUtcNow();
        await using var command = Command(connection, null,
            """
            UPDATE schedule_runs SET owner = @owner, lease_expires_at = @lease_end
            WHERE finished_at IS NULL AND lease_expires_at < @now AND rowid IN (
                SELECT rowid FROM schedule_runs WHERE finished_at IS NULL AND lease_expires_at < @now ORDER BY lease_expires_at LIMIT @limit)
            RETURNING schedule, occurrence
            """, ("owner", owner), ("now", Ms(now)), ("lease_end", Ms(now + lease)), ("limit", limit));
        return await ListAsync(command, r => new AbandonedOccurrence(r.GetString(0), Dialect.Time(r, 1)), ct);
    }

    public async Task<bool> SkipOccurrencesAsync(string name, DateTimeOffset expected, DateTimeOffset nextAt, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "UPDATE schedules SET next_at = @next WHERE name = @name AND next_at = @expected",
            ("name", name), ("expected", Ms(expected)), ("next", Ms(nextAt)));
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task RecordOccurrenceAsync(ScheduleOutcome outcome, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
        await using var run = Command(connection, tx, "UPDATE schedule_runs SET batch_name = @batch, error = @error, finished_at = @at, lease_expires_at = NULL WHERE schedule = @name AND occurrence = @occurrence",
            ("name", outcome.Schedule), ("occurrence", Ms(outcome.Occurrence)), ("batch", outcome.BatchName), ("error", outcome.Error), ("at", Ms(outcome.At)));
        await run.ExecuteNonQueryAsync(ct);
        await using var schedule = Command(connection, tx,
            "UPDATE schedules SET last_run_at = @at, last_batch = coalesce(@batch, last_batch), last_error = @error WHERE name = @name",
            ("name", outcome.Schedule), ("at", Ms(outcome.At)), ("batch", outcome.BatchName), ("error", outcome.Error));
        await schedule.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
    }

    public async Task<IReadOnlyList<ScheduleOutcome>> GetOccurrencesAsync(string name, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            "SELECT schedule, occurrence, claimed_at, batch_name, error FROM schedule_runs WHERE schedule = @name ORDER BY occurrence DESC", ("name", name));
        return await ListAsync(command, r => new ScheduleOutcome(r.GetString(0), Dialect.Time(r, 1), Dialect.Time(r, 2),
            r.IsDBNull(3) ? null : r.GetString(3), r.IsDBNull(4) ? null : r.GetString(4)), ct);
    }

    public async Task<long?> FindExpiredBatchAsync(DateTimeOffset cutoff, CancellationToken ct)
    {
        // As on PostgreSQL: terminal states from the counters, recency from the batch's jobs once per batch.
        await using var connection = await OpenAsync(ct);
        await using var find = Command(connection, null,
            """
            SELECT b.id FROM batches b
            WHERE b.created_at < @cutoff
              AND NOT EXISTS (SELECT 1 FROM batch_state_counts c WHERE c.batch_id = b.id AND c.count <> 0
                              AND c.state NOT IN ('succeeded', 'failed', 'cancelled'))
              AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id AND j.updated_at >= @cutoff)
            ORDER BY b.created_at, b.id
            LIMIT 1
            """, ("cutoff", Ms(cutoff)));
        return await find.ExecuteScalarAsync(ct) is long id ? id : null;
    }

    public async Task<RetentionStep> PurgeBatchChunkAsync(long batchId, DateTimeOffset cutoff, int chunk, CancellationToken ct)
    {
        // Each step is one short write transaction, so other writers wait at most one chunk.
        await using var connection = await OpenAsync(ct);
        await using var jobs = Command(connection, null,
            """
            DELETE FROM jobs WHERE id IN (
                SELECT id FROM jobs WHERE batch_id = @batch AND state IN ('succeeded', 'failed', 'cancelled') AND updated_at < @cutoff
                LIMIT @chunk)
            """, ("batch", batchId), ("cutoff", Ms(cutoff)), ("chunk", chunk));
        var deleted = await jobs.ExecuteNonQueryAsync(ct);
        if (deleted > 0)
        {
            return new RetentionStep(deleted, null, null);
        }

        await using var batch = Command(connection, null,
            "DELETE FROM batches WHERE id = @batch AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = @batch) RETURNING name, storage_dir", ("batch", batchId));
        var gone = (await ListAsync(batch, r => (Name: r.GetString(0), Dir: r.GetString(1)), ct)).SingleOrDefault();
        return new RetentionStep(0, gone.Name, gone.Dir);
    }

    public async Task SetContinuationAsync(long batchId, Continuations.Continuation then, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "UPDATE batches SET then_manifest = @manifest, then_webhook = @webhook WHERE id = @id",
            ("id", batchId), ("manifest", then.Manifest), ("webhook", then.Webhook));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<Continuations.ClaimedContinuation>> ClaimContinuationsAsync(Continuations.ContinuationClaim claim, CancellationToken ct)
    {
        // One UPDATE under SQLite's write lock: the guard (no result, and unclaimed or its lease expired) lets one process
        // claim each continuation.
        await using var connection = await OpenAsync(ct);
        var now = _time.GetUtcNow();
        await using var command = Command(connection, null,
            """
            UPDATE batches SET then_claimed_at = @now, then_lease_expires_at = @lease_end
            WHERE then_result IS NULL AND (then_claimed_at IS NULL OR then_lease_expires_at < @now) AND id IN (
                SELECT x.id FROM batches x
                WHERE x.then_result IS NULL AND (x.then_claimed_at IS NULL OR x.then_lease_expires_at < @now)
                  AND (x.then_manifest IS NOT NULL OR x.then_webhook IS NOT NULL)
                  AND (@batch IS NULL OR x.id = @batch)
                  AND EXISTS (SELECT 1 FROM batch_state_counts c WHERE c.batch_id = x.id AND c.count <> 0)
                  AND NOT EXISTS (SELECT 1 FROM batch_state_counts c WHERE c.batch_id = x.id AND c.count <> 0
                                  AND c.state NOT IN ('succeeded', 'failed', 'cancelled', 'held'))
                ORDER BY x.id LIMIT @limit)
            RETURNING id, name, provider, storage_dir, then_manifest, then_webhook
            """, ("now", Ms(now)), ("lease_end", Ms(now + claim.Lease)), ("limit", claim.Limit), ("batch", claim.BatchId));
        return await ListAsync(command, r => new Continuations.ClaimedContinuation(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3),
            new Continuations.Continuation(r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5))), ct);
    }

    public async Task<Batches.BatchRecord> CreateFailedBatchAsync(Batches.NewBatch batch, string failure, CancellationToken ct)
    {
        // No jobs, so no counters: the batch is settled from the start, and retention removes it like any finished batch.
        await using var connection = await OpenAsync(ct);
        await using var insert = Command(connection, null,
            """
            INSERT INTO batches (name, source, provider, storage_dir, created_at, budget_micros, failure)
            VALUES (@name, @source, @provider, @dir, @now, @budget, @failure)
            ON CONFLICT (name) DO NOTHING
            """,
            ("name", batch.Name), ("source", batch.Source), ("provider", batch.Provider), ("dir", batch.StorageDir), ("now", Ms(_time.GetUtcNow())),
            ("budget", batch.BudgetUsd is { } b ? Micros(b) : null), ("failure", failure));
        await insert.ExecuteNonQueryAsync(ct);
        await using var find = Command(connection, null, $"SELECT {SqliteBatchColumns} FROM batches WHERE name = @name", ("name", batch.Name));
        return (await ListAsync(find, r => ReadBatch(r, Dialect), ct)).Single();
    }

    public async Task RecordContinuationAsync(long batchId, string result, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "UPDATE batches SET then_result = @result WHERE id = @id", ("id", batchId), ("result", result));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<(Continuations.Continuation Then, DateTimeOffset? ClaimedAt, string? Result)?> GetContinuationAsync(long batchId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "SELECT then_manifest, then_webhook, then_claimed_at, then_result FROM batches WHERE id = @id", ("id", batchId));
        var rows = await ListAsync(command, r => (new Continuations.Continuation(r.IsDBNull(0) ? null : r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1)),
            Dialect.NullableTime(r, 2), r.IsDBNull(3) ? null : r.GetString(3)), ct);
        return rows.Count == 0 ? null : rows[0];
    }
}
