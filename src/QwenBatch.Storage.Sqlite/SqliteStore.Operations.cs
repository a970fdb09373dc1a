using Microsoft.Data.Sqlite;
using QwenBatch.Edits;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>
/// Bulk moves (IEditStore), each in one immediate transaction with its history (counters by trigger): an operator's
/// cancel and requeue, held edits released by a daily budget, and the jobs a lost Hangfire storage took with it.
/// </summary>
public sealed partial class SqliteStore
{
    /// <summary>The history of a queued edit whose Hangfire job was lost with the storage of the process that held it.</summary>
    internal const string ForgottenReason = "its Hangfire job was lost with the previous process's storage; it is fed again";

    /// <summary>The same, for an edit caught submitting.</summary>
    internal const string ForgottenSubmitReason =
        "its Hangfire job was lost with the previous process's storage while submitting; the submit may have reached the provider";

    public async Task<int> RequestCancelAsync(long batchId, CancellationToken ct)
    {
        var now = NowMs();
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        var count = await CancelWhereAsync(connection, tx, "batch_id = @batch", [("batch", batchId)], now, ct);
        await ExecuteAsync(connection, tx, "UPDATE batches SET cancel_requested_at = coalesce(cancel_requested_at, @now) WHERE id = @batch", ct, ("now", now), ("batch", batchId));
        await tx.CommitAsync(ct);
        return count;
    }

    public async Task<int> CancelEditsAsync(IReadOnlyList<long> editIds, CancellationToken ct)
    {
        var (ids, parameters) = InList("e", editIds.Distinct().ToList());
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        var count = await CancelWhereAsync(connection, tx, $"id IN {ids}", parameters, NowMs(), ct);
        await tx.CommitAsync(ct);
        return count;
    }

    public async Task<int> RequeueAsync(long batchId, IReadOnlyList<EditState> states, CancellationToken ct)
    {
        if (states.Count == 0)
        {
            return 0;
        }

        return await RequeueWhereAsync($"batch_id = @batch AND state IN {StateList(states)} AND superseded_by IS NULL", [("batch", batchId)], ct);
    }

    public Task<int> RequeueEditsAsync(IReadOnlyList<long> editIds, CancellationToken ct)
    {
        var (ids, parameters) = InList("e", editIds.Distinct().ToList());
        return RequeueWhereAsync($"id IN {ids} AND state IN ('failed', 'cancelled', 'held')", parameters, ct);
    }

    public async Task<int> ReleaseHeldWithinDailyBudgetAsync(DailyBudgetRelease release, CancellationToken ct)
    {
        var now = NowMs();
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        var day = await ReadDailySpendAsync(connection, tx, release.Provider, now, ct);
        var room = Micros(release.DailyCapUsd) - Micros(day.SpentUsd) - Micros(day.ReservedUsd);
        var price = Micros(release.PricePerImage);

        // Held edits of the account, oldest first, while their costs add up within today's room and each fits its batch
        // budget; the write lock makes the pick and the moves one step. The next feeder round decides each again.
        await using var select = Command(connection, tx,
            """
            SELECT id FROM (
                SELECT j.id, sum(coalesce(json_extract(j.spec, '$.n'), 1) * @price) OVER (ORDER BY j.id) AS running
                FROM jobs j JOIN batches b ON b.id = j.batch_id
                WHERE j.state = 'held' AND j.provider = @provider
                  AND (b.budget_micros IS NULL OR b.spent_micros + b.reserved_micros + coalesce(json_extract(j.spec, '$.n'), 1) * @price <= b.budget_micros))
            WHERE running <= @room ORDER BY id LIMIT @limit
            """, ("price", price), ("provider", release.Provider), ("room", room), ("limit", release.Limit));
        var ids = await ListAsync(select, r => r.GetInt64(0), ct);
        foreach (var id in ids)
        {
            await ExecuteAsync(connection, tx, "UPDATE jobs SET state = 'pending', due_at = @now, updated_at = @now, error = NULL, attempt = 0 WHERE id = @id", ct,
                ("now", now), ("id", id));
            await InsertHistoryAsync(connection, tx, id, now, "held", "pending", release.Reason(day.Day), null, ct);
        }

        await tx.CommitAsync(ct);
        return ids.Count;
    }

    public async Task<int> ForgetJobsAsync(long? batchId, string by, CancellationToken ct)
    {
        // As on PostgreSQL: every unsettled edit forgets its job; queued ones go back to the backlog with their reservation
        // released, and one caught submitting too, its submit counted as uncertain. The others keep their state.
        var now = NowMs();
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        await using var lost = Command(connection, tx,
            """
            SELECT id, batch_id, state, reserved_micros FROM jobs
            WHERE state IN ('pending', 'queued', 'submitting', 'at_provider', 'downloading')
              AND (hangfire_job IS NOT NULL OR state IN ('queued', 'submitting'))
              AND (@batch IS NULL OR batch_id = @batch)
            ORDER BY id
            """, ("batch", batchId));
        var edits = await ListAsync(lost, r => (Id: r.GetInt64(0), Batch: r.GetInt64(1), State: r.GetString(2), Reserved: r.GetInt64(3)), ct);
        foreach (var (id, batch, state, reserved) in edits)
        {
            if (state is not ("queued" or "submitting"))
            {
                await ExecuteAsync(connection, tx, "UPDATE jobs SET hangfire_job = NULL WHERE id = @id", ct, ("id", id));
                continue;
            }

            var submitting = state == "submitting";
            await ExecuteAsync(connection, tx,
                """
                UPDATE jobs SET hangfire_job = NULL, state = 'pending', uncertain_submits = uncertain_submits + @uncertain, reserved_micros = 0,
                    due_at = min(due_at, @now), updated_at = @now
                WHERE id = @id
                """, ct, ("id", id), ("uncertain", submitting ? 1 : 0), ("now", now));
            await MoveReservedAsync(connection, tx, batch, -reserved, ct);
            await InsertHistoryAsync(connection, tx, id, now, state, "pending", submitting ? ForgottenSubmitReason : ForgottenReason, by, ct);
        }

        await tx.CommitAsync(ct);
        return edits.Count;
    }

    /// <summary>
    /// Waiting edits (pending, held, queued) matching <paramref name="filter"/> end cancelled, their reservations released;
    /// edits under way (submitting, at the provider) are flagged for the provider's cancel, one at the provider due at once.
    /// A flag leaves updated_at as it was: a submit's is how long it has been on its way.
    /// </summary>
    private static async Task<int> CancelWhereAsync(
        SqliteConnection connection, SqliteTransaction tx, string filter, (string Name, object? Value)[] parameters, long now, CancellationToken ct)
    {
        await using var waiting = Command(connection, tx, $"SELECT id, batch_id, state, reserved_micros FROM jobs WHERE {filter} AND state IN ('pending', 'held', 'queued')", parameters);
        var edits = await ListAsync(waiting, r => (Id: r.GetInt64(0), Batch: r.GetInt64(1), State: r.GetString(2), Reserved: r.GetInt64(3)), ct);
        foreach (var (id, batch, state, reserved) in edits)
        {
            await ExecuteAsync(connection, tx,
                $"UPDATE jobs SET state = 'cancelled', reserved_micros = 0, error = '{CancelledByOperator}', finished_at = @now, updated_at = @now WHERE id = @id", ct,
                ("now", now), ("id", id));
            await MoveReservedAsync(connection, tx, batch, -reserved, ct);
            await InsertHistoryAsync(connection, tx, id, now, state, "cancelled", CancelledByOperator, null, ct);
        }

        var flagged = await ExecuteAsync(connection, tx,
            $"""
            UPDATE jobs SET cancel_requested = 1, due_at = CASE WHEN state = 'at_provider' THEN min(due_at, @now) ELSE due_at END
            WHERE {filter} AND state IN ('submitting', 'at_provider') AND cancel_requested = 0
            """, ct, [("now", now), .. parameters]);
        return edits.Count + flagged;
    }

    /// <summary>
    /// Returns the matching edits to pending, due now, with fresh attempts, no request id and nothing reserved; each keeps
    /// its Hangfire job (the feeder enqueues it again). Their batches are no longer being cancelled.
    /// </summary>
    private async Task<int> RequeueWhereAsync(string filter, (string Name, object? Value)[] parameters, CancellationToken ct)
    {
        var now = NowMs();
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        await using var again = Command(connection, tx, $"SELECT id, batch_id, state, reserved_micros FROM jobs WHERE {filter}", parameters);
        var edits = await ListAsync(again, r => (Id: r.GetInt64(0), Batch: r.GetInt64(1), State: r.GetString(2), Reserved: r.GetInt64(3)), ct);
        foreach (var (id, batch, state, reserved) in edits)
        {
            await ExecuteAsync(connection, tx,
                """
                UPDATE jobs SET state = 'pending', attempt = 0, polls = 0, request_id = NULL, outputs = '[]', error = NULL,
                    cancel_requested = 0, reserved_micros = 0, due_at = @now, finished_at = NULL, updated_at = @now WHERE id = @id
                """, ct, ("now", now), ("id", id));
            await MoveReservedAsync(connection, tx, batch, -reserved, ct);
            await ExecuteAsync(connection, tx, "UPDATE batches SET cancel_requested_at = NULL WHERE id = @batch", ct, ("batch", batch));
            await InsertHistoryAsync(connection, tx, id, now, state, "pending", "requeued by an operator", null, ct);
        }

        await tx.CommitAsync(ct);
        return edits.Count;
    }
}
