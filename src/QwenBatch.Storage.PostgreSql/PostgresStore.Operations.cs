using Npgsql;
using QwenBatch.Edits;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>
/// Bulk moves (IEditStore), each one guarded statement with its counters and history: an operator's cancel and requeue,
/// held edits released by a daily budget, and the jobs a lost Hangfire storage took with it.
/// </summary>
public sealed partial class PostgresStore
{
    public async Task<int> RequestCancelAsync(long batchId, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);

        // Staged edits are waiting edits too: rows first, so the cancel below takes them with the rest.
        await ExpandBatchAsync(connection, batchId, ct);
        await using var cancel = new NpgsqlCommand(
            $"""
            WITH waiting AS (
                SELECT id, state, reserved_usd FROM jobs WHERE batch_id = @batch AND state IN ('pending', 'held', 'queued') ORDER BY id FOR UPDATE
            ), cancelled AS (
                UPDATE jobs j SET state = 'cancelled', reserved_usd = 0, error = '{CancelledByOperator}', finished_at = @now, updated_at = @now
                FROM waiting WHERE j.id = waiting.id
                RETURNING j.id, j.batch_id, waiting.state AS from_state, j.state AS to_state, waiting.reserved_usd AS released
            ), batch AS (
                UPDATE batches SET cancel_requested_at = coalesce(cancel_requested_at, @now),
                    reserved_usd = reserved_usd - (SELECT coalesce(sum(released), 0) FROM cancelled)
                WHERE id = @batch
                RETURNING id
            ), {CountMoves("cancelled", after: "batch")}, history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason)
                SELECT id, @now, from_state, 'cancelled', '{CancelledByOperator}' FROM cancelled ORDER BY id
            )
            SELECT count(*)::int FROM cancelled
            """, connection);
        cancel.Parameters.AddWithValue("batch", batchId);
        cancel.Parameters.AddWithValue("now", now);
        var cancelled = (int)(await cancel.ExecuteScalarAsync(ct))!;

        // The edits already under way are flagged by a statement of their own: one that a worker moved from queued to
        // submitting while the statement above waited for its row lock was still queued in that statement's snapshot, so it
        // was neither cancelled nor flagged there — and would run to the end, paid for. This one sees it, and no edit of the
        // batch can start any more: none is waiting now.
        var flagged = await FlagAsync(connection, "batch_id = @batch", ("batch", batchId), now, ct);
        await tx.CommitAsync(ct);
        return cancelled + flagged;
    }

    public async Task<int> CancelEditsAsync(IReadOnlyList<long> editIds, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);

        // Edit rows first, then batch rows: the lock order of every transition.
        await using var cancel = new NpgsqlCommand(
            $"""
            WITH waiting AS (
                SELECT id, batch_id, state, reserved_usd FROM jobs WHERE id = ANY(@ids) AND state IN ('pending', 'held', 'queued') ORDER BY id FOR UPDATE
            ), cancelled AS (
                UPDATE jobs j SET state = 'cancelled', reserved_usd = 0, error = '{CancelledByOperator}', finished_at = @now, updated_at = @now
                FROM waiting WHERE j.id = waiting.id
                RETURNING j.id, j.batch_id, waiting.state AS from_state, j.state AS to_state, waiting.reserved_usd AS released
            ), money AS (
                UPDATE batches b SET reserved_usd = b.reserved_usd - r.released
                FROM (SELECT batch_id, sum(released) AS released FROM cancelled GROUP BY batch_id ORDER BY batch_id) r
                WHERE b.id = r.batch_id AND r.released <> 0
                RETURNING b.id
            ), {CountMoves("cancelled", after: "money")}, history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason)
                SELECT id, @now, from_state, 'cancelled', '{CancelledByOperator}' FROM cancelled ORDER BY id
            )
            SELECT count(*)::int FROM cancelled
            """, connection);
        cancel.Parameters.AddWithValue("ids", editIds.ToArray());
        cancel.Parameters.AddWithValue("now", now);
        var cancelled = (int)(await cancel.ExecuteScalarAsync(ct))!;
        var flagged = await FlagAsync(connection, "id = ANY(@ids)", ("ids", editIds.ToArray()), now, ct);
        await tx.CommitAsync(ct);
        return cancelled + flagged;
    }

    public Task<int> RequeueAsync(long batchId, IReadOnlyList<EditState> states, CancellationToken ct) =>
        RequeueWhereAsync("batch_id = @batch AND state = ANY(@states) AND superseded_by IS NULL",
            [new NpgsqlParameter("batch", batchId), new NpgsqlParameter("states", states.Select(s => s.ToDbName()).ToArray())], ct);

    public Task<int> RequeueEditsAsync(IReadOnlyList<long> editIds, CancellationToken ct) =>
        RequeueWhereAsync("id = ANY(@ids) AND state IN ('failed', 'cancelled', 'held')", [new NpgsqlParameter("ids", editIds.ToArray())], ct);

    public async Task<int> ReleaseHeldWithinDailyBudgetAsync(DailyBudgetRelease release, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        var day = DateOnly.FromDateTime(now.UtcDateTime);

        // Held edits of the account, oldest first, while their costs add up within today's room and each fits its batch
        // budget. Two feeders releasing at once both pick the same edits; the guarded update lets only one move each, and
        // the next feeder round decides each again under its locks.
        await using var command = _dataSource.CreateCommand(
            $"""
            WITH room AS (
                SELECT @cap - {DaySpentSql("@provider")} - {DayReservedSql("@provider")} AS usd
            ), candidates AS (
                SELECT j.id, sum((j.spec->>'n')::numeric * @price) OVER (ORDER BY j.id) AS running
                FROM jobs j JOIN batches b ON b.id = j.batch_id
                WHERE j.state = 'held' AND j.provider = @provider
                  AND (b.budget_usd IS NULL OR b.spent_usd + b.reserved_usd + (j.spec->>'n')::numeric * @price <= b.budget_usd)
            ), chosen AS (
                SELECT c.id FROM candidates c, room WHERE c.running <= room.usd ORDER BY c.id LIMIT @limit
            ), released AS (
                UPDATE jobs j SET state = 'pending', due_at = @now, updated_at = @now, error = NULL, attempt = 0
                FROM chosen WHERE j.id = chosen.id AND j.state = 'held'
                RETURNING j.id, j.batch_id, 'held'::text AS from_state, j.state AS to_state
            ), {CountMoves("released")}, history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason)
                SELECT id, @now, 'held', 'pending', @reason FROM released ORDER BY id
            )
            SELECT count(*)::int FROM released
            """);
        command.Parameters.AddWithValue("cap", release.DailyCapUsd);
        command.Parameters.AddWithValue("price", release.PricePerImage);
        command.Parameters.AddWithValue("provider", release.Provider);
        command.Parameters.AddWithValue("day", day);
        command.Parameters.AddWithValue("limit", release.Limit);
        command.Parameters.AddWithValue("now", now);
        command.Parameters.AddWithValue("reason", release.Reason(day));
        return (int)(await command.ExecuteScalarAsync(ct))!;
    }

    public async Task<int> ForgetJobsAsync(long? batchId, string by, CancellationToken ct)
    {
        // Every unsettled edit forgets its job. Queued ones go back to the backlog with their reservation released; one
        // caught submitting too, and its submit is counted as uncertain: the provider may have accepted it. An edit at the
        // provider or downloading keeps its state (the poller and a new job carry it on); only its job is forgotten, so its
        // updated_at stays as it was.
        await using var command = _dataSource.CreateCommand(
            $"""
            WITH lost AS (
                SELECT id, batch_id, state, reserved_usd FROM jobs
                WHERE state IN ('pending', 'queued', 'submitting', 'at_provider', 'downloading')
                  AND (hangfire_job IS NOT NULL OR state IN ('queued', 'submitting'))
                  AND (@batch::bigint IS NULL OR batch_id = @batch)
                ORDER BY id FOR UPDATE
            ), forgot AS (
                UPDATE jobs j SET hangfire_job = NULL,
                    state = CASE WHEN l.state IN ('queued', 'submitting') THEN 'pending' ELSE l.state END,
                    uncertain_submits = j.uncertain_submits + CASE WHEN l.state = 'submitting' THEN 1 ELSE 0 END,
                    reserved_usd = CASE WHEN l.state IN ('queued', 'submitting') THEN 0 ELSE j.reserved_usd END,
                    due_at = CASE WHEN l.state IN ('queued', 'submitting') THEN least(j.due_at, @now) ELSE j.due_at END,
                    updated_at = CASE WHEN l.state IN ('queued', 'submitting') THEN @now ELSE j.updated_at END
                FROM lost l WHERE j.id = l.id
                RETURNING j.id, j.batch_id, l.state AS from_state, j.state AS to_state, l.reserved_usd - j.reserved_usd AS released
            ), money AS (
                UPDATE batches b SET reserved_usd = b.reserved_usd - r.released
                FROM (SELECT batch_id, sum(released) AS released FROM forgot GROUP BY batch_id ORDER BY batch_id) r
                WHERE b.id = r.batch_id AND r.released <> 0
                RETURNING b.id
            ), {CountMoves("forgot", after: "money")}, history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason, server_id)
                SELECT id, @now, from_state, to_state,
                    CASE WHEN from_state = 'submitting' THEN @submit_reason ELSE @reason END, @by
                FROM forgot WHERE from_state <> to_state ORDER BY id
            )
            SELECT count(*)::int FROM forgot
            """);
        command.Parameters.Add(BatchId(batchId));
        command.Parameters.AddWithValue("by", by);
        command.Parameters.AddWithValue("reason", ForgottenReason);
        command.Parameters.AddWithValue("submit_reason", ForgottenSubmitReason);
        command.Parameters.AddWithValue("now", _time.GetUtcNow());
        return (int)(await command.ExecuteScalarAsync(ct))!;
    }

    /// <summary>The history of a queued edit whose Hangfire job was lost with the storage of the process that held it.</summary>
    internal const string ForgottenReason = "its Hangfire job was lost with the previous process's storage; it is fed again";

    /// <summary>The same, for an edit caught submitting.</summary>
    internal const string ForgottenSubmitReason =
        "its Hangfire job was lost with the previous process's storage while submitting; the submit may have reached the provider";

    /// <summary>
    /// Flags the matching edits under way (submitting or at the provider) for the provider's cancel; one at the provider is
    /// due at once, for the poller. Their updated_at stays: a submit's is how long it has been on its way.
    /// </summary>
    private static async Task<int> FlagAsync(NpgsqlConnection connection, string filter, (string Name, object Value) parameter, DateTimeOffset now, CancellationToken ct)
    {
        await using var flag = new NpgsqlCommand(
            $"""
            UPDATE jobs SET cancel_requested = true, due_at = CASE WHEN state = 'at_provider' THEN least(due_at, @now) ELSE due_at END
            WHERE {filter} AND state IN ('submitting', 'at_provider') AND NOT cancel_requested
            """, connection);
        flag.Parameters.AddWithValue(parameter.Name, parameter.Value);
        flag.Parameters.AddWithValue("now", now);
        return await flag.ExecuteNonQueryAsync(ct);
    }

    /// <summary>
    /// Returns the matching edits to pending, due now, with fresh attempts, no request id and nothing reserved; each keeps
    /// its Hangfire job (the feeder enqueues it again). Their batches are no longer being cancelled.
    /// </summary>
    private async Task<int> RequeueWhereAsync(string filter, NpgsqlParameter[] parameters, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            $"""
            WITH again AS (
                SELECT id, batch_id, state, reserved_usd FROM jobs WHERE {filter} ORDER BY id FOR UPDATE
            ), requeued AS (
                UPDATE jobs j SET state = 'pending', attempt = 0, polls = 0, request_id = NULL, outputs = '[]', error = NULL,
                    cancel_requested = false, reserved_usd = 0, due_at = @now, finished_at = NULL, updated_at = @now
                FROM again WHERE j.id = again.id
                RETURNING j.id, j.batch_id, again.state AS from_state, j.state AS to_state, again.reserved_usd AS released
            ), batch AS (
                UPDATE batches b SET cancel_requested_at = NULL,
                    reserved_usd = b.reserved_usd - (SELECT coalesce(sum(released), 0) FROM requeued r WHERE r.batch_id = b.id)
                WHERE b.id IN (SELECT batch_id FROM requeued)
                RETURNING b.id
            ), {CountMoves("requeued", after: "batch")}, history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason)
                SELECT id, @now, from_state, 'pending', 'requeued by an operator' FROM requeued ORDER BY id
            )
            SELECT count(*)::int FROM requeued
            """);
        command.Parameters.AddRange(parameters);
        command.Parameters.AddWithValue("now", _time.GetUtcNow());
        return (int)(await command.ExecuteScalarAsync(ct))!;
    }
}
