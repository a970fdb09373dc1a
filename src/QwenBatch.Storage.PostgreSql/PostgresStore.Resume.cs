using Npgsql;
using QwenBatch.Batches;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>A resumed import: each manifest id keeps one current edit; a changed row supersedes the old one.</summary>
public sealed partial class PostgresStore
{
    /// <summary>
    /// A resumed batch: the edits are copied into a temporary table of this transaction, then compared with each id's
    /// current edit. The same content is skipped; changed content becomes the id's current edit — a new one, or an older
    /// edit of that very content made current again — and the edit it displaces is superseded: cancelled if it had not
    /// been handed to Hangfire (pending or held), left to finish (keeping its history and files) if it had.
    /// </summary>
    private static async Task<(int Added, int Replaced)> ResumeEditsAsync(NpgsqlConnection connection, long batchId, DateTimeOffset now, IAsyncEnumerable<NewEdit> edits, CancellationToken ct)
    {
        // Imports into one batch take turns, so two of them never both replace the same current edit. Not by locking the
        // batch row: a feeder round holds the edits it took while it waits for that row, and an import holding it and then
        // superseding one of those edits would deadlock with the round. The advisory lock is taken by imports only, and
        // every row lock here comes edits first, batch row after, as in the feeder's round and every transition.
        await ExecuteAsync(connection, $"SELECT pg_advisory_xact_lock({ImportLockClass}, {batchId % int.MaxValue}::int)", ct);

        // The jobs arrive as staged chunks do (encoded by the import, an id named twice refused), into a temporary table
        // shaped like job_chunks, and are unpacked by the server: the client neither decodes nor re-serializes them. Specs
        // stay json (text) here; only the changed rows' become jsonb, when inserted. A job's place in the manifest is its
        // chunk's then its own: no sort needed.
        await ExecuteAsync(connection, "CREATE TEMP TABLE import_chunks (LIKE job_chunks INCLUDING DEFAULTS INCLUDING IDENTITY) ON COMMIT DROP", ct);
        await CopyChunksAsync(connection, "import_chunks", batchId, now, Chunks(edits, EncodedJobs.ChunkSize, ct), ct);
        await ExecuteAsync(connection,
            $"""
            CREATE TEMP TABLE import_jobs ON COMMIT DROP AS
            SELECT (c.id << 32) + r.ord AS ord, r.k AS key, r.h AS content_hash, r.p AS provider, r.s AS spec
            FROM import_chunks c CROSS JOIN LATERAL {ChunkJobs("c", "json")}
            """, ct);

        // The same manifest submitted again (a retried submit, a nightly resubmission) changes nothing: every row is a
        // current job of the same content, as a job row or still staged. Then the import is over, and the staged jobs stay
        // staged — comparing with them unpacked costs a fraction of turning them into rows. A set difference, so the plan
        // hashes both sides whatever the planner guesses about the temporary table.
        await using var unchanged = new NpgsqlCommand(
            $"""
            SELECT NOT EXISTS (
                SELECT key, content_hash FROM import_jobs
                EXCEPT (
                    SELECT key, content_hash FROM jobs WHERE batch_id = @batch AND superseded_by IS NULL
                    UNION ALL
                    SELECT r.k, r.h FROM job_chunks c CROSS JOIN LATERAL {ChunkJobs("c", "json")} WHERE c.batch_id = @batch))
            """, connection);
        unchanged.Parameters.AddWithValue("batch", batchId);
        if ((bool)(await unchanged.ExecuteScalarAsync(ct))!)
        {
            return (0, 0);
        }

        // Something changed, so the comparison below needs every job of the batch as a row: whatever is still staged
        // becomes one first.
        await ExpandBatchAsync(connection, batchId, ct);

        // What changed, in manifest order; a new job's id is drawn here so the job it displaces can point at it.
        await using var changes = new NpgsqlCommand(
            """
            CREATE TEMP TABLE import_changes ON COMMIT DROP AS
            SELECT i.ord, i.key, i.content_hash, i.provider, i.spec, cur.id AS cur_id, known.id AS known_id,
                   (SELECT max(revision) FROM jobs m WHERE m.batch_id = @batch AND m.key = i.key) AS max_revision,
                   CASE WHEN known.id IS NULL THEN nextval(pg_get_serial_sequence('jobs', 'id')) END AS new_id
            FROM import_jobs i
            LEFT JOIN jobs cur ON cur.batch_id = @batch AND cur.key = i.key AND cur.superseded_by IS NULL
            LEFT JOIN jobs known ON known.batch_id = @batch AND known.key = i.key AND known.content_hash = i.content_hash
            WHERE cur.id IS NULL OR cur.content_hash <> i.content_hash
            ORDER BY i.ord
            """, connection);
        changes.Parameters.AddWithValue("batch", batchId);
        await changes.ExecuteNonQueryAsync(ct);

        await using var apply = new NpgsqlCommand(
            $"""
            WITH displaced AS (
                SELECT j.id, j.state, j.reserved_usd, coalesce(c.new_id, c.known_id) AS successor
                FROM jobs j JOIN import_changes c ON j.id = c.cur_id
                FOR UPDATE OF j
            ), superseded AS (
                -- Not handed to Hangfire yet: it must not be submitted any more. Queued, at the provider or finished: it
                -- keeps going (its Hangfire job runs, and what it made stays its own).
                UPDATE jobs j SET superseded_by = d.successor, updated_at = @now,
                    state = CASE WHEN d.state IN ('pending', 'held') THEN 'cancelled' ELSE j.state END,
                    reserved_usd = CASE WHEN d.state IN ('pending', 'held') THEN 0 ELSE j.reserved_usd END,
                    finished_at = CASE WHEN d.state IN ('pending', 'held') THEN @now ELSE j.finished_at END,
                    error = CASE WHEN d.state IN ('pending', 'held') THEN {SupersededError} ELSE j.error END
                FROM displaced d WHERE j.id = d.id
                RETURNING j.id, j.batch_id, d.state AS from_state, j.state AS to_state, d.reserved_usd AS released, d.successor
            ), money AS (
                UPDATE batches SET reserved_usd = reserved_usd - (SELECT coalesce(sum(released), 0) FROM superseded WHERE to_state = 'cancelled')
                WHERE id = @batch
                RETURNING id
            ), {CountMoves("superseded", after: "money")}
            INSERT INTO job_history (job_id, at, from_state, to_state, reason)
            SELECT id, @now, from_state, to_state, 'superseded by job ' || successor || ': its manifest row changed'
                || CASE WHEN to_state = 'cancelled' THEN ', so it will not be submitted' ELSE '; it finishes and keeps its files' END
            FROM superseded
            """, connection);
        apply.Parameters.AddWithValue("batch", batchId);
        apply.Parameters.AddWithValue("now", now);
        var replaced = await apply.ExecuteNonQueryAsync(ct);

        await using var insert = new NpgsqlCommand(
            """
            INSERT INTO jobs (id, batch_id, key, content_hash, state, provider, spec, due_at, created_at, updated_at, revision, replaces)
            OVERRIDING SYSTEM VALUE
            SELECT new_id, @batch, key, content_hash, 'pending', provider, spec::jsonb, @now, @now, @now, coalesce(max_revision, 0) + 1, cur_id
            FROM import_changes WHERE new_id IS NOT NULL ORDER BY ord
            """, connection);
        insert.Parameters.AddWithValue("batch", batchId);
        insert.Parameters.AddWithValue("now", now);
        var added = await insert.ExecuteNonQueryAsync(ct);

        // The row is back to content an older job already has: that job is current again. If it was cancelled only because
        // it had been superseded, it is due again; whatever else it did (succeeded, failed, still running) stands.
        await using var revive = new NpgsqlCommand(
            $"""
            WITH known AS (
                SELECT j.id, j.state, c.cur_id, j.state = 'cancelled' AND j.request_id IS NULL AND j.error LIKE {SupersededPattern} AS requeue
                FROM jobs j JOIN import_changes c ON j.id = c.known_id
                FOR UPDATE OF j
            ), revived AS (
                UPDATE jobs j SET superseded_by = NULL, replaces = k.cur_id, updated_at = @now,
                    state = CASE WHEN k.requeue THEN 'pending' ELSE j.state END,
                    due_at = CASE WHEN k.requeue THEN @now ELSE j.due_at END,
                    attempt = CASE WHEN k.requeue THEN 0 ELSE j.attempt END,
                    error = CASE WHEN k.requeue THEN NULL ELSE j.error END,
                    finished_at = CASE WHEN k.requeue THEN NULL ELSE j.finished_at END
                FROM known k WHERE j.id = k.id
                RETURNING j.id, j.batch_id, k.state AS from_state, j.state AS to_state, k.cur_id
            ), {CountMoves("revived")}
            INSERT INTO job_history (job_id, at, from_state, to_state, reason)
            SELECT id, @now, from_state, to_state, 'current again: its manifest row is back to this content'
                || coalesce(' (replacing job ' || cur_id || ')', '')
            FROM revived
            """, connection);
        revive.Parameters.AddWithValue("now", now);
        added += await revive.ExecuteNonQueryAsync(ct);
        return (added, replaced);
    }

    /// <summary>The first key of the advisory lock a resumed import of a batch holds (the second is the batch's id).</summary>
    private const int ImportLockClass = 0x5177_4261;

    /// <summary>The error of an edit cancelled because a newer one replaced it (SQL), and the pattern that recognizes it.</summary>
    private const string SupersededError = "'superseded by job ' || d.successor || ': its manifest row changed before it was submitted'";

    private const string SupersededPattern = "'superseded by job %'";
}
