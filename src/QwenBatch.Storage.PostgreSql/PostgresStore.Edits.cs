using Npgsql;
using NpgsqlTypes;
using QwenBatch.Edits;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>The edits' progress (IEditStore): reads, guarded transitions, Hangfire job bindings, due times.</summary>
public sealed partial class PostgresStore
{
    public async Task<EditRecord?> GetEditAsync(long editId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {EditColumns} FROM jobs WHERE id = @id");
        command.Parameters.AddWithValue("id", editId);
        return (await ListAsync(command, r => ReadEdit(r, Dialect), ct)).SingleOrDefault();
    }

    public async Task<IReadOnlyList<EditRecord>> GetEditsAsync(long batchId, CancellationToken ct)
    {
        await ExpandBatchAsync(batchId, ct);
        await using var command = _dataSource.CreateCommand($"SELECT {EditColumns} FROM jobs WHERE batch_id = @batch ORDER BY key, id");
        command.Parameters.AddWithValue("batch", batchId);
        return await ListAsync(command, r => ReadEdit(r, Dialect), ct);
    }

    public async Task<IReadOnlyList<EditHistoryEntry>> GetHistoryAsync(long editId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("SELECT job_id, at, from_state, to_state, reason, server_id FROM job_history WHERE job_id = @id ORDER BY id");
        command.Parameters.AddWithValue("id", editId);
        return await ListAsync(command, r => ReadHistory(r, Dialect), ct);
    }

    public async Task<IReadOnlyList<bool>> TransitionManyAsync(IReadOnlyList<EditTransition> transitions, CancellationToken ct)
    {
        if (transitions.Count == 0)
        {
            return [];
        }

        if (transitions.Select(t => t.Edit.Id).Distinct().Count() != transitions.Count)
        {
            throw new ArgumentException("One transaction of transitions writes each edit once.", nameof(transitions));
        }

        // One statement for the whole group: edit rows are locked in id order, then batch rows, then counters, the order of
        // every statement that moves edits, so groups written by different processes cannot deadlock.
        //
        // Its plan is the prepared generic one. Left to choose, PostgreSQL kept planning it afresh for every group (a custom
        // plan for each array length: 7 % of its CPU in the engine benchmark's profile); the plan does not depend on the
        // values. Set for this transaction only: a batch's commands share one implicit transaction, so the setting ends
        // with it and no pooled connection keeps it.
        await using var batch = _dataSource.CreateBatch();
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)"));
        var command = new NpgsqlBatchCommand(
            $$"""
            WITH input AS (
                SELECT * FROM unnest(@id, @from, @state, @request_id, @attempt, @accepted, @uncertain, @polls, @due_at,
                                     @outputs, @files, @cost, @reserved, @error, @submitted_at, @started_at, @finished_at, @reason, @moved_by)
                    AS i(id, from_states, state, request_id, attempt, accepted, uncertain, polls, due_at,
                         outputs, files, cost, reserved, error, submitted_at, started_at, finished_at, reason, moved_by)
            ), prev AS (
                -- The guard: the edit is in one of the expected states, as last committed (a row another transaction moved
                -- is read again once its lock is granted).
                SELECT j.id, j.batch_id, j.state, j.cost_usd, j.reserved_usd FROM jobs j JOIN input i ON i.id = j.id
                WHERE j.state = ANY(string_to_array(i.from_states, ','))
                ORDER BY j.id
                FOR UPDATE OF j
            ), moved AS (
                -- Every column a step may change; never hangfire_job, which only the binding writes.
                UPDATE jobs j SET
                    state = i.state, request_id = i.request_id, attempt = i.attempt, accepted_submits = i.accepted,
                    uncertain_submits = i.uncertain, polls = i.polls,
                    -- A cancel asked for while this step ran is acted on at once, not at the next poll.
                    due_at = CASE WHEN j.cancel_requested THEN least(i.due_at, @now) ELSE i.due_at END,
                    outputs = i.outputs::jsonb, files = i.files::jsonb, cost_usd = i.cost, reserved_usd = i.reserved,
                    error = i.error, submitted_at = i.submitted_at, started_at = i.started_at, finished_at = i.finished_at,
                    updated_at = @now
                FROM prev, input i WHERE j.id = prev.id AND i.id = prev.id
                RETURNING j.id, prev.batch_id, j.provider, prev.state AS from_state, j.state AS to_state, i.reason, i.moved_by,
                          j.cost_usd - prev.cost_usd AS spent, j.reserved_usd - prev.reserved_usd AS reserved
            ), money AS (
                -- The batches' money moves in the same statement as the edits, so it never drifts.
                UPDATE batches b SET spent_usd = b.spent_usd + m.spent, reserved_usd = b.reserved_usd + m.reserved
                FROM (SELECT batch_id, sum(spent) AS spent, sum(reserved) AS reserved FROM moved GROUP BY batch_id ORDER BY batch_id) m
                WHERE b.id = m.batch_id AND (m.spent <> 0 OR m.reserved <> 0)
                RETURNING b.id
            ), {{CountMoves("moved", after: "money")}}, spent_today AS (
                -- Settled cost per UTC day of the move and provider (the reports' spend, the daily budgets).
                INSERT INTO spend_by_day AS s (day, provider, spent_usd)
                SELECT (@now::timestamptz AT TIME ZONE 'UTC')::date, provider, sum(spent) FROM moved WHERE spent <> 0
                GROUP BY provider ORDER BY provider
                ON CONFLICT (day, provider) DO UPDATE SET spent_usd = s.spent_usd + excluded.spent_usd
            ), history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason, server_id)
                SELECT id, @now, from_state, to_state, reason, moved_by FROM moved
                WHERE from_state <> to_state OR reason IS NOT NULL
                ORDER BY id
            )
            SELECT id FROM moved
            """);
        batch.BatchCommands.Add(command);
        var p = command.Parameters;
        var edits = transitions.Select(t => t.Edit).ToArray();
        p.AddWithValue("id", edits.Select(e => e.Id).ToArray());
        p.AddWithValue("from", transitions.Select(t => string.Join(',', t.From.Select(s => s.ToDbName()))).ToArray());
        p.AddWithValue("state", edits.Select(e => e.State.ToDbName()).ToArray());
        p.Add(Array("request_id", NpgsqlDbType.Text, edits.Select(e => (object?)e.RequestId)));
        p.AddWithValue("attempt", edits.Select(e => e.Attempt).ToArray());
        p.AddWithValue("accepted", edits.Select(e => e.AcceptedSubmits).ToArray());
        p.AddWithValue("uncertain", edits.Select(e => e.UncertainSubmits).ToArray());
        p.AddWithValue("polls", edits.Select(e => e.Polls).ToArray());
        p.AddWithValue("due_at", edits.Select(e => e.DueAt).ToArray());
        p.AddWithValue("outputs", edits.Select(e => StoreJson.Write(e.Outputs)).ToArray());
        p.AddWithValue("files", edits.Select(e => StoreJson.Write(e.Files)).ToArray());
        p.AddWithValue("cost", edits.Select(e => e.CostUsd).ToArray());
        p.AddWithValue("reserved", edits.Select(e => e.ReservedUsd).ToArray());
        p.Add(Array("error", NpgsqlDbType.Text, edits.Select(e => (object?)e.Error)));
        p.Add(Array("submitted_at", NpgsqlDbType.TimestampTz, edits.Select(e => (object?)e.SubmittedAt)));
        p.Add(Array("started_at", NpgsqlDbType.TimestampTz, edits.Select(e => (object?)e.StartedAt)));
        p.Add(Array("finished_at", NpgsqlDbType.TimestampTz, edits.Select(e => (object?)e.FinishedAt)));
        p.Add(Array("reason", NpgsqlDbType.Text, transitions.Select(t => (object?)t.Reason)));
        p.AddWithValue("moved_by", transitions.Select(t => t.By).ToArray());
        p.AddWithValue("now", _time.GetUtcNow());
        var moved = new HashSet<long>();
        await using (var reader = await batch.ExecuteReaderAsync(ct))
        {
            await reader.NextResultAsync(ct);
            while (await reader.ReadAsync(ct))
            {
                moved.Add(reader.GetInt64(0));
            }
        }

        return edits.Select(e => moved.Contains(e.Id)).ToArray();
    }

    public async Task<int> BindJobsAsync(IReadOnlyList<JobBinding> bindings, CancellationToken ct)
    {
        if (bindings.Count == 0)
        {
            return 0;
        }

        // Guarded like a transition: only an edit with no job, or with the very job being replaced, takes the new one, so
        // two processes binding the same edit (each having enqueued a job) cannot both win.
        await using var command = _dataSource.CreateCommand(
            """
            UPDATE jobs j SET hangfire_job = b.job, updated_at = @now
            FROM (SELECT DISTINCT ON (id) id, job, replacing FROM unnest(@ids, @jobs, @replacing) AS u(id, job, replacing) ORDER BY id) b
            WHERE j.id = b.id AND (j.hangfire_job IS NULL OR j.hangfire_job = b.replacing)
            """);
        command.Parameters.AddWithValue("ids", bindings.Select(b => b.EditId).ToArray());
        command.Parameters.AddWithValue("jobs", bindings.Select(b => b.JobId).ToArray());
        command.Parameters.Add(Array("replacing", NpgsqlDbType.Text, bindings.Select(b => (object?)b.Replacing)));
        command.Parameters.AddWithValue("now", _time.GetUtcNow());
        return await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<NextDue> NextDueAsync(long? batchId, CancellationToken ct)
    {
        // Staged edits are pending from their import on. Chunks still there mean the next feeder round must look for them,
        // whatever this process last found (an import by another process, an expansion that was rolled back).
        await using var command = _dataSource.CreateCommand(
            """
            SELECT (SELECT min(due_at) FROM jobs WHERE state = 'pending' AND superseded_by IS NULL AND (@batch::bigint IS NULL OR batch_id = @batch)),
                   (SELECT min(due_at) FROM job_chunks WHERE @batch::bigint IS NULL OR batch_id = @batch),
                   (SELECT min(due_at) FROM jobs WHERE state = 'at_provider' AND (@batch::bigint IS NULL OR batch_id = @batch))
            """);
        command.Parameters.Add(BatchId(batchId));
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        var pending = Dialect.NullableTime(reader, 0);
        var atProvider = Dialect.NullableTime(reader, 2);
        if (Dialect.NullableTime(reader, 1) is { } staged)
        {
            ForgetNothingStaged(batchId);
            pending = pending is { } due && due < staged ? due : staged;
        }

        return new NextDue(pending, atProvider);
    }

    public async Task<IReadOnlyList<EditRecord>> FindStillAsync(StillQuery query, CancellationToken ct)
    {
        if (query.States.Count == 0 || query.Limit <= 0)
        {
            return [];
        }

        // The states as constants, so the planner can use the partial index of the states that need a worker (jobs_still).
        await using var command = _dataSource.CreateCommand(
            $"""
            SELECT {EditColumns} FROM jobs
            WHERE state IN {StateList(query.States.Distinct())} AND updated_at < @before AND (@batch::bigint IS NULL OR batch_id = @batch)
            ORDER BY updated_at, id
            LIMIT @limit
            """);
        command.Parameters.AddWithValue("before", query.Before);
        command.Parameters.Add(BatchId(query.BatchId));
        command.Parameters.AddWithValue("limit", query.Limit);
        return await ListAsync(command, r => ReadEdit(r, Dialect), ct);
    }
}
