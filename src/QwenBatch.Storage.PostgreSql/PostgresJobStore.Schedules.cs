using Npgsql;
using QwenBatch.Retention;
using QwenBatch.Schedules;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>Schedules, their once-only occurrences, and chunked retention (migration 4).</summary>
public sealed partial class PostgresJobStore
{
    private const string ScheduleColumns =
        "name, cron, time_zone, manifest, provider, storage_root, budget_usd, catch_up, paused, next_at, last_run_at, last_batch, last_error";

    public async Task<bool> AddScheduleAsync(ScheduleDefinition schedule, DateTimeOffset nextAt, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            """
            INSERT INTO schedules (name, cron, time_zone, manifest, provider, storage_root, budget_usd, catch_up, next_at, created_at)
            VALUES (@name, @cron, @tz, @manifest, @provider, @root, @budget, @catch_up, @next, @now)
            ON CONFLICT (name) DO NOTHING
            """);
        var p = command.Parameters;
        p.AddWithValue("name", schedule.Name);
        p.AddWithValue("cron", schedule.Cron);
        p.AddWithValue("tz", schedule.TimeZone);
        p.AddWithValue("manifest", schedule.Manifest);
        p.AddWithValue("provider", schedule.Provider);
        p.AddWithValue("root", schedule.StorageRoot);
        p.Add(Money("budget", schedule.BudgetUsd));
        p.AddWithValue("catch_up", schedule.CatchUp.ToDbName());
        p.AddWithValue("next", nextAt);
        p.AddWithValue("now", _time.GetUtcNow());
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task<IReadOnlyList<ScheduleRecord>> GetSchedulesAsync(CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {ScheduleColumns} FROM schedules ORDER BY name");
        return await ListAsync(command, r => new ScheduleRecord(
            new ScheduleDefinition(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), r.GetString(4), r.GetString(5),
                Dialect.NullableMoney(r, 6), CatchUpPolicies.Parse(r.GetString(7))),
            Dialect.Time(r, 9), r.GetBoolean(8), Dialect.NullableTime(r, 10), r.IsDBNull(11) ? null : r.GetString(11), r.IsDBNull(12) ? null : r.GetString(12)), ct);
    }

    public async Task<bool> RemoveScheduleAsync(string name, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("DELETE FROM schedules WHERE name = @name");
        command.Parameters.AddWithValue("name", name);
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task<bool> SetSchedulePausedAsync(string name, bool paused, DateTimeOffset nextAt, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            "UPDATE schedules SET paused = @paused, next_at = CASE WHEN @paused THEN next_at ELSE @next END WHERE name = @name");
        command.Parameters.AddWithValue("name", name);
        command.Parameters.AddWithValue("paused", paused);
        command.Parameters.AddWithValue("next", nextAt);
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task<bool> ClaimOccurrenceAsync(OccurrenceClaim claim, CancellationToken ct)
    {
        // One statement: the insert of (schedule, occurrence) is the claim; only the winner also moves next_at, and never
        // backwards (a slow worker's stale view must not rewind a schedule another worker already advanced).
        await using var command = _dataSource.CreateCommand(
            """
            WITH claimed AS (
                INSERT INTO schedule_runs (schedule, occurrence, owner, claimed_at, lease_expires_at)
                SELECT name, @occurrence, @owner, @now, @lease_end FROM schedules WHERE name = @name
                ON CONFLICT (schedule, occurrence) DO NOTHING
                RETURNING schedule),
            advanced AS (
                UPDATE schedules SET next_at = greatest(next_at, @next), last_run_at = @now
                WHERE name IN (SELECT schedule FROM claimed))
            SELECT count(*)::int FROM claimed
            """);
        var now = _time.GetUtcNow();
        var p = command.Parameters;
        p.AddWithValue("name", claim.Schedule);
        p.AddWithValue("occurrence", claim.Occurrence);
        p.AddWithValue("owner", claim.Owner);
        p.AddWithValue("next", claim.NextAt);
        p.AddWithValue("now", now);
        p.AddWithValue("lease_end", now + claim.Lease);
        return (int)(await command.ExecuteScalarAsync(ct))! == 1;
    }

    public async Task<IReadOnlyList<AbandonedOccurrence>> ReclaimOccurrencesAsync(string owner, TimeSpan lease, int limit, CancellationToken ct)
    {
        // Claim with one statement, as jobs are: the row lock and the re-checked guard give each open occurrence to one caller.
        await using var command = _dataSource.CreateCommand(
            """
            UPDATE schedule_runs r SET owner = @owner, lease_expires_at = @lease_end
            FROM (SELECT schedule, occurrence FROM schedule_runs
                  WHERE finished_at IS NULL AND lease_expires_at < @now
                  ORDER BY lease_expires_at LIMIT @limit FOR UPDATE SKIP LOCKED) due
            WHERE r.schedule = due.schedule AND r.occurrence = due.occurrence AND r.finished_at IS NULL AND r.lease_expires_at < @now
            RETURNING r.schedule, r.occurrence
            """);
        var now = _time.GetUtcNow();
        command.Parameters.AddWithValue("owner", owner);
        command.Parameters.AddWithValue("now", now);
        command.Parameters.AddWithValue("lease_end", now + lease);
        command.Parameters.AddWithValue("limit", limit);
        return await ListAsync(command, r => new AbandonedOccurrence(r.GetString(0), Dialect.Time(r, 1)), ct);
    }

    public async Task<bool> SkipOccurrencesAsync(string name, DateTimeOffset expected, DateTimeOffset nextAt, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("UPDATE schedules SET next_at = @next WHERE name = @name AND next_at = @expected");
        command.Parameters.AddWithValue("name", name);
        command.Parameters.AddWithValue("expected", expected);
        command.Parameters.AddWithValue("next", nextAt);
        return await command.ExecuteNonQueryAsync(ct) == 1;
    }

    public async Task RecordOccurrenceAsync(ScheduleOutcome outcome, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            """
            WITH run AS (
                UPDATE schedule_runs SET batch_name = @batch, error = @error, finished_at = @at, lease_expires_at = NULL
                WHERE schedule = @name AND occurrence = @occurrence)
            UPDATE schedules SET last_run_at = @at, last_batch = coalesce(@batch, last_batch), last_error = @error WHERE name = @name
            """);
        var p = command.Parameters;
        p.AddWithValue("name", outcome.Schedule);
        p.AddWithValue("occurrence", outcome.Occurrence);
        p.AddWithValue("at", outcome.At);
        p.Add(Text("batch", outcome.BatchName));
        p.Add(Text("error", outcome.Error));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<ScheduleOutcome>> GetOccurrencesAsync(string name, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            "SELECT schedule, occurrence, claimed_at, batch_name, error FROM schedule_runs WHERE schedule = @name ORDER BY occurrence DESC");
        command.Parameters.AddWithValue("name", name);
        return await ListAsync(command, r => new ScheduleOutcome(r.GetString(0), Dialect.Time(r, 1), Dialect.Time(r, 2),
            r.IsDBNull(3) ? null : r.GetString(3), r.IsDBNull(4) ? null : r.GetString(4)), ct);
    }

    public async Task<long?> FindExpiredBatchAsync(DateTimeOffset cutoff, CancellationToken ct)
    {
        // Finished means every job terminal (held jobs may still be released by a budget), read from the counters rather
        // than the jobs; the recency check reads the batch's jobs once per batch, not once per chunk.
        await using var find = _dataSource.CreateCommand(
            """
            SELECT b.id FROM batches b
            WHERE b.created_at < @cutoff
              AND NOT EXISTS (SELECT 1 FROM batch_state_counts c WHERE c.batch_id = b.id AND c.count <> 0
                              AND c.state NOT IN ('succeeded', 'failed', 'cancelled'))
              AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id AND j.updated_at >= @cutoff)
            ORDER BY b.created_at, b.id
            LIMIT 1
            """);
        find.Parameters.AddWithValue("cutoff", cutoff);
        return await find.ExecuteScalarAsync(ct) is long id ? id : null;
    }

    public async Task<RetentionStep> PurgeBatchChunkAsync(long batchId, DateTimeOffset cutoff, int chunk, CancellationToken ct)
    {
        // History goes with its jobs (ON DELETE CASCADE); the counters follow through the delete trigger.
        await using var jobs = _dataSource.CreateCommand(
            """
            DELETE FROM jobs WHERE id IN (
                SELECT id FROM jobs WHERE batch_id = @batch AND state IN ('succeeded', 'failed', 'cancelled') AND updated_at < @cutoff
                LIMIT @chunk)
            """);
        jobs.Parameters.AddWithValue("batch", batchId);
        jobs.Parameters.AddWithValue("cutoff", cutoff);
        jobs.Parameters.AddWithValue("chunk", chunk);
        var deleted = await jobs.ExecuteNonQueryAsync(ct);
        if (deleted > 0)
        {
            return new RetentionStep(deleted, null, null);
        }

        await using var batch = _dataSource.CreateCommand(
            "DELETE FROM batches b WHERE id = @batch AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = b.id) RETURNING name, storage_dir");
        batch.Parameters.AddWithValue("batch", batchId);
        var gone = (await ListAsync(batch, r => (Name: r.GetString(0), Dir: r.GetString(1)), ct)).SingleOrDefault();
        return new RetentionStep(0, gone.Name, gone.Dir);
    }

    public async Task SetContinuationAsync(long batchId, Continuations.Continuation then, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("UPDATE batches SET then_manifest = @manifest, then_webhook = @webhook WHERE id = @id");
        command.Parameters.AddWithValue("id", batchId);
        command.Parameters.Add(Text("manifest", then.Manifest));
        command.Parameters.Add(Text("webhook", then.Webhook));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<Continuations.ClaimedContinuation>> ClaimContinuationsAsync(Continuations.ContinuationClaim claim, CancellationToken ct)
    {
        // Settled from the counters: jobs exist and none is in a state that can still move without an operator. Claimable:
        // never claimed, or claimed under a lease that expired without a result (the claimer died).
        await using var command = _dataSource.CreateCommand(
            """
            UPDATE batches b SET then_claimed_at = @now, then_lease_expires_at = @lease_end
            WHERE b.then_result IS NULL AND (b.then_claimed_at IS NULL OR b.then_lease_expires_at < @now) AND b.id IN (
                SELECT x.id FROM batches x
                WHERE x.then_result IS NULL AND (x.then_claimed_at IS NULL OR x.then_lease_expires_at < @now)
                  AND (x.then_manifest IS NOT NULL OR x.then_webhook IS NOT NULL)
                  AND (@batch::bigint IS NULL OR x.id = @batch)
                  AND EXISTS (SELECT 1 FROM batch_state_counts c WHERE c.batch_id = x.id AND c.count <> 0)
                  AND NOT EXISTS (SELECT 1 FROM batch_state_counts c WHERE c.batch_id = x.id AND c.count <> 0
                                  AND c.state NOT IN ('succeeded', 'failed', 'cancelled', 'held'))
                ORDER BY x.id LIMIT @limit FOR UPDATE SKIP LOCKED)
            RETURNING id, name, provider, storage_dir, then_manifest, then_webhook
            """);
        var now = _time.GetUtcNow();
        command.Parameters.AddWithValue("now", now);
        command.Parameters.AddWithValue("lease_end", now + claim.Lease);
        command.Parameters.AddWithValue("limit", claim.Limit);
        command.Parameters.Add(new NpgsqlParameter<long?>("batch", NpgsqlTypes.NpgsqlDbType.Bigint) { TypedValue = claim.BatchId });
        return await ListAsync(command, r => new Continuations.ClaimedContinuation(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3),
            new Continuations.Continuation(r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5))), ct);
    }

    public async Task<Batches.BatchRecord> CreateFailedBatchAsync(Batches.NewBatch batch, string failure, CancellationToken ct)
    {
        // No jobs, so no counters: the batch is settled from the start, and retention removes it like any finished batch.
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var insert = new NpgsqlCommand(
            """
            INSERT INTO batches (name, source, provider, storage_dir, created_at, budget_usd, failure)
            VALUES (@name, @source, @provider, @dir, @now, @budget, @failure)
            ON CONFLICT (name) DO NOTHING
            """, connection);
        insert.Parameters.AddWithValue("name", batch.Name);
        insert.Parameters.AddWithValue("source", batch.Source);
        insert.Parameters.AddWithValue("provider", batch.Provider);
        insert.Parameters.AddWithValue("dir", batch.StorageDir);
        insert.Parameters.AddWithValue("now", _time.GetUtcNow());
        insert.Parameters.Add(Money("budget", batch.BudgetUsd));
        insert.Parameters.AddWithValue("failure", failure);
        await insert.ExecuteNonQueryAsync(ct);
        return (await FindBatchAsync(connection, batch.Name, ct))!;
    }

    public async Task RecordContinuationAsync(long batchId, string result, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("UPDATE batches SET then_result = @result WHERE id = @id");
        command.Parameters.AddWithValue("id", batchId);
        command.Parameters.AddWithValue("result", result);
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<(Continuations.Continuation Then, DateTimeOffset? ClaimedAt, string? Result)?> GetContinuationAsync(long batchId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("SELECT then_manifest, then_webhook, then_claimed_at, then_result FROM batches WHERE id = @id");
        command.Parameters.AddWithValue("id", batchId);
        var rows = await ListAsync(command, r => (new Continuations.Continuation(r.IsDBNull(0) ? null : r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1)),
            Dialect.NullableTime(r, 2), r.IsDBNull(3) ? null : r.GetString(3)), ct);
        return rows.Count == 0 ? null : rows[0];
    }
}
