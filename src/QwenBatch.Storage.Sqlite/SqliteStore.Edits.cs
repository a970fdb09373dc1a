using Microsoft.Data.Sqlite;
using QwenBatch.Edits;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>The edits' progress (IEditStore): reads, guarded transitions, Hangfire job bindings, due times.</summary>
public sealed partial class SqliteStore
{
    public async Task<EditRecord?> GetEditAsync(long editId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {SqliteEditColumns} FROM jobs WHERE id = @id", ("id", editId));
        return (await ReadEditsAsync(command, ct)).SingleOrDefault();
    }

    public async Task<IReadOnlyList<EditRecord>> GetEditsAsync(long batchId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {SqliteEditColumns} FROM jobs WHERE batch_id = @batch ORDER BY key, id", ("batch", batchId));
        return await ReadEditsAsync(command, ct);
    }

    public async Task<IReadOnlyList<EditHistoryEntry>> GetHistoryAsync(long editId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "SELECT job_id, at, from_state, to_state, reason, server_id FROM job_history WHERE job_id = @id ORDER BY id", ("id", editId));
        return await ListAsync(command, r => ReadHistory(r, Dialect), ct);
    }

    public async Task<IReadOnlyList<bool>> TransitionManyAsync(IReadOnlyList<EditTransition> transitions, CancellationToken ct)
    {
        if (transitions.Select(t => t.Edit.Id).Distinct().Count() != transitions.Count)
        {
            throw new ArgumentException("One transaction of transitions writes each edit once.", nameof(transitions));
        }

        var now = NowMs();
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        var moved = new bool[transitions.Count];
        for (var i = 0; i < transitions.Count; i++)
        {
            moved[i] = await TransitionAsync(connection, tx, transitions[i], now, ct);
        }

        await tx.CommitAsync(ct);
        return moved;
    }

    /// <summary>
    /// One guarded write: the edit must be in one of the expected states (read under the write lock, so nothing moves it
    /// between the read and the write). The counters and the day's spend follow through the row triggers; the batch's
    /// money in the same transaction.
    /// </summary>
    private static async Task<bool> TransitionAsync(SqliteConnection connection, SqliteTransaction tx, EditTransition transition, long now, CancellationToken ct)
    {
        var edit = transition.Edit;
        await using var guard = Command(connection, tx,
            $"SELECT state, batch_id, cost_micros, reserved_micros FROM jobs WHERE id = @id AND state IN {StateList(transition.From)}", ("id", edit.Id));
        var rows = await ListAsync(guard, r => (State: r.GetString(0), Batch: r.GetInt64(1), Cost: r.GetInt64(2), Reserved: r.GetInt64(3)), ct);
        if (rows.Count == 0)
        {
            return false;
        }

        var (previous, batchId, previousCost, previousReserved) = rows[0];

        // Every column a step may change; never hangfire_job, which only the binding writes. A cancel asked for while the
        // step ran is acted on at once, not at the next poll.
        await ExecuteAsync(connection, tx,
            """
            UPDATE jobs SET
                state = @state, request_id = @request_id, attempt = @attempt, accepted_submits = @accepted,
                uncertain_submits = @uncertain, polls = @polls,
                due_at = CASE WHEN cancel_requested THEN min(@due_at, @now) ELSE @due_at END, outputs = @outputs, files = @files,
                cost_micros = @cost, reserved_micros = @reserved, error = @error, submitted_at = @submitted_at,
                started_at = @started_at, finished_at = @finished_at, updated_at = @now
            WHERE id = @id
            """, ct,
            ("id", edit.Id), ("state", edit.State.ToDbName()), ("request_id", edit.RequestId), ("attempt", edit.Attempt),
            ("accepted", edit.AcceptedSubmits), ("uncertain", edit.UncertainSubmits), ("polls", edit.Polls), ("due_at", Ms(edit.DueAt)),
            ("outputs", StoreJson.Write(edit.Outputs)), ("files", StoreJson.Write(edit.Files)), ("cost", Micros(edit.CostUsd)),
            ("error", edit.Error), ("submitted_at", Ms(edit.SubmittedAt)), ("finished_at", Ms(edit.FinishedAt)), ("now", now),
            ("reserved", Micros(edit.ReservedUsd)), ("started_at", Ms(edit.StartedAt)));
        var spent = Micros(edit.CostUsd) - previousCost;
        var reserved = Micros(edit.ReservedUsd) - previousReserved;
        if (spent != 0 || reserved != 0)
        {
            await ExecuteAsync(connection, tx, "UPDATE batches SET spent_micros = spent_micros + @spent, reserved_micros = reserved_micros + @reserved WHERE id = @batch", ct,
                ("spent", spent), ("reserved", reserved), ("batch", batchId));
        }

        if (previous != edit.State.ToDbName() || transition.Reason is not null)
        {
            await InsertHistoryAsync(connection, tx, edit.Id, now, previous, edit.State.ToDbName(), transition.Reason, transition.By, ct);
        }

        return true;
    }

    public async Task<int> BindJobsAsync(IReadOnlyList<JobBinding> bindings, CancellationToken ct)
    {
        var now = NowMs();
        var bound = 0;
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        foreach (var binding in bindings.DistinctBy(b => b.EditId))
        {
            // Guarded: only an edit with no job, or with the very job being replaced, takes the new one.
            bound += await ExecuteAsync(connection, tx,
                "UPDATE jobs SET hangfire_job = @job, updated_at = @now WHERE id = @id AND (hangfire_job IS NULL OR hangfire_job = @replacing)", ct,
                ("id", binding.EditId), ("job", binding.JobId), ("replacing", binding.Replacing), ("now", now));
        }

        await tx.CommitAsync(ct);
        return bound;
    }

    public async Task<NextDue> NextDueAsync(long? batchId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            """
            SELECT (SELECT min(due_at) FROM jobs WHERE state = 'pending' AND superseded_by IS NULL AND (@batch IS NULL OR batch_id = @batch)),
                   (SELECT min(due_at) FROM jobs WHERE state = 'at_provider' AND (@batch IS NULL OR batch_id = @batch))
            """, ("batch", batchId));
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return new NextDue(Dialect.NullableTime(reader, 0), Dialect.NullableTime(reader, 1));
    }

    public async Task<IReadOnlyList<EditRecord>> FindStillAsync(StillQuery query, CancellationToken ct)
    {
        if (query.States.Count == 0 || query.Limit <= 0)
        {
            return [];
        }

        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            $"""
            SELECT {SqliteEditColumns} FROM jobs
            WHERE state IN {StateList(query.States.Distinct())} AND updated_at < @before AND (@batch IS NULL OR batch_id = @batch)
            ORDER BY updated_at, id
            LIMIT @limit
            """, ("before", Ms(query.Before)), ("batch", query.BatchId), ("limit", query.Limit));
        return await ReadEditsAsync(command, ct);
    }
}
