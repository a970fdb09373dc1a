using System.Data.Common;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Server;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>
/// The job store on PostgreSQL: claims with <c>FOR UPDATE SKIP LOCKED</c>, guarded transitions that write history in
/// the same statement, and LISTEN/NOTIFY to wake idle workers in every process.
/// </summary>
public sealed partial class PostgresJobStore : IJobStore
{
    public const string Channel = "qwenbatch_jobs";

    private static readonly PostgresDialect Dialect = new();
    private readonly NpgsqlDataSource _dataSource;
    private readonly string _listenConnectionString;
    private readonly TimeProvider _time;
    private readonly ILogger<PostgresJobStore> _logger;
    private readonly int _stagedChunkSize;

    /// <param name="listenConnectionString">
    /// Where to LISTEN when <paramref name="connectionString"/> goes through PgBouncer in transaction mode, which cannot
    /// carry LISTEN: a direct connection to PostgreSQL. Without it, the main connection string is used.
    /// </param>
    /// <param name="stagedChunkSize">Jobs per staged chunk of a large import (see PostgresJobStore.Staging); tests make it small.</param>
    public PostgresJobStore(
        string connectionString, TimeProvider time, ILogger<PostgresJobStore> logger, string? listenConnectionString = null, int stagedChunkSize = DefaultStagedChunkSize)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(stagedChunkSize, 1);
        _stagedChunkSize = stagedChunkSize;
        // No reset on close: Npgsql would otherwise send DISCARD ALL each time a pooled connection is reused, a statement
        // (and a commit) per store call, half of the engine's traffic. The store keeps no session state on pooled
        // connections (temporary tables drop at commit, locks are transaction-scoped, LISTEN has its own connection), so
        // there is nothing to reset; keep it so: session settings only with SET LOCAL inside a transaction.
        _dataSource = NpgsqlDataSource.Create(Pooled(connectionString));

        // The listener gets a connection of its own, outside the pool: a pooled connection is reset when returned and
        // would silently stop listening.
        _listenConnectionString = new NpgsqlConnectionStringBuilder(listenConnectionString ?? connectionString) { Pooling = false, KeepAlive = 30 }.ConnectionString;
        _time = time;
        _logger = logger;
    }

    /// <summary>Statements each pooled connection keeps prepared (Npgsql's <c>Max Auto Prepare</c>) unless the connection string says.</summary>
    public const int AutoPreparedStatements = 64;

    /// <summary>The pool's connection string: no reset on close, and statements prepared unless the user said otherwise.</summary>
    internal static string Pooled(string connectionString)
    {
        var pooled = new NpgsqlConnectionStringBuilder(connectionString) { NoResetOnClose = true };

        // Statements used again and again (transitions, claims, heartbeats) are prepared on each pooled connection: parsing,
        // analysing and planning the transition statement cost PostgreSQL more than running it (a third of the machine's
        // CPU in the engine benchmark's profile). Behind PgBouncer in transaction mode older than 1.21 (no prepared
        // statements), the connection string says "Max Auto Prepare=0", and that is kept.
        var said = new DbConnectionStringBuilder { ConnectionString = connectionString }.Keys.Cast<string>()
            .Any(key => string.Equals(key.Replace(" ", "", StringComparison.Ordinal), "MaxAutoPrepare", StringComparison.OrdinalIgnoreCase));
        if (!said)
        {
            pooled.MaxAutoPrepare = AutoPreparedStatements;
        }

        return pooled.ConnectionString;
    }

    public async Task MigrateAsync(CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);

        // A short statement_timeout meant for the workers' ordinary statements (connection string Options) must not fail a
        // start: waiting here for another process's migration, or migrating a big table, legitimately takes longer.
        // Found by the database-fault test: a worker starting beside another exited 1 on "canceling statement".
        await ExecuteAsync(connection, "SET LOCAL statement_timeout = 0", ct);
        await ExecuteAsync(connection, $"SELECT pg_advisory_xact_lock({PostgresMigrations.AdvisoryLockKey})", ct);
        await ExecuteAsync(connection, "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)", ct);
        await using var current = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM schema_migrations", connection);
        var applied = (int)(await current.ExecuteScalarAsync(ct))!;
        if (applied > LatestSchemaVersion)
        {
            throw new StoreSchemaTooNewException(applied, LatestSchemaVersion);
        }

        foreach (var (version, name, sql) in PostgresMigrations.All.Where(m => m.Version > applied))
        {
            await ExecuteAsync(connection, sql, ct);
            await using var record = new NpgsqlCommand("INSERT INTO schema_migrations (version, name, applied_at) VALUES (@v, @n, @at)", connection);
            record.Parameters.AddWithValue("v", version);
            record.Parameters.AddWithValue("n", name);
            record.Parameters.AddWithValue("at", _time.GetUtcNow());
            await record.ExecuteNonQueryAsync(ct);
            LogMigrated(version, name);
        }

        await tx.CommitAsync(ct);
    }

    public async Task<BatchImport> ImportBatchAsync(NewBatch batch, IAsyncEnumerable<NewEdit> jobs, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);

        // The resumed import's comparisons run on rows the planner has no statistics for yet (a temporary table, a batch
        // imported a moment ago), so it guesses costs high enough to compile them with LLVM: measured 0.37 s of JIT for a
        // 0.1 s query, per statement, on a 100k-row resume. Not worth it for statements that run once.
        await ExecuteAsync(connection, "SET LOCAL jit = off", ct);
        await using var insertBatch = new NpgsqlCommand(
            $"INSERT INTO batches (name, source, provider, storage_dir, created_at, budget_usd) VALUES (@name, @source, @provider, @dir, @now, @budget) "
            + $"ON CONFLICT (name) DO NOTHING RETURNING {BatchColumns}", connection);
        insertBatch.Parameters.AddWithValue("name", batch.Name);
        insertBatch.Parameters.AddWithValue("source", batch.Source);
        insertBatch.Parameters.AddWithValue("provider", batch.Provider);
        insertBatch.Parameters.AddWithValue("dir", batch.StorageDir);
        insertBatch.Parameters.AddWithValue("now", now);
        insertBatch.Parameters.Add(Money("budget", batch.BudgetUsd));
        var created = (await ListAsync(insertBatch, r => ReadBatch(r, Dialect), ct)).SingleOrDefault();
        var record = created ?? await FindBatchAsync(connection, batch.Name, ct)
            ?? throw new InvalidOperationException($"Batch '{batch.Name}' vanished during import.");
        var released = 0;
        if (created is null && batch.BudgetUsd is { } budget)
        {
            // A resume with a budget replaces the old one; held jobs get another look against it.
            await using var rebudget = new NpgsqlCommand(
                $"""
                WITH b AS (UPDATE batches SET budget_usd = @budget WHERE id = @batch RETURNING id),
                held AS (
                    UPDATE jobs SET state = 'pending', due_at = @now, updated_at = @now, error = NULL
                    WHERE batch_id = @batch AND state = 'held' RETURNING id, batch_id, 'held'::text AS from_state, state AS to_state),
                {CountMoves("held", after: "b")},
                history AS (
                    INSERT INTO job_history (job_id, at, from_state, to_state, reason)
                    SELECT id, @now, 'held', 'pending', 'budget set to ' || @budget::text || ' USD' FROM held)
                SELECT count(*)::int FROM held
                """, connection);
            rebudget.Parameters.AddWithValue("budget", budget);
            rebudget.Parameters.AddWithValue("batch", record.Id);
            rebudget.Parameters.AddWithValue("now", now);
            released = (int)(await rebudget.ExecuteScalarAsync(ct))!;
            record = record with { BudgetUsd = budget };
        }

        int added;
        var replaced = 0;
        try
        {
            if (created is not null)
            {
                // A batch made by this very import has no rows that could conflict: the jobs go straight in with binary COPY
                // (into jobs, or staged when more than a chunk), and a duplicate id is refused.
                added = await CopyNewBatchAsync(connection, record.Id, now, jobs, ct);
            }
            else
            {
                (added, replaced) = await ResumeJobsAsync(connection, record.Id, now, jobs, ct);
            }
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            throw new DuplicateJobKeyException($"Batch '{batch.Name}': an import named one job id twice; ids must be unique within a batch. Nothing was imported.", ex);
        }

        if (added + released > 0)
        {
            await ExecuteAsync(connection, $"SELECT pg_notify('{Channel}', '')", ct);
        }

        await tx.CommitAsync(ct);
        return new BatchImport(record, created is null, added, replaced);
    }

    /// <summary>Streams <paramref name="jobs"/> with binary COPY into jobs (a small new batch); returns how many were written.</summary>
    private static async Task<int> CopyJobsAsync(NpgsqlConnection connection, long batchId, DateTimeOffset now, IAsyncEnumerable<NewEdit> jobs, CancellationToken ct)
    {
        var count = 0;
        await using var copy = await connection.BeginBinaryImportAsync(
            "COPY jobs (batch_id, key, content_hash, state, provider, spec, due_at, created_at, updated_at) FROM STDIN (FORMAT BINARY)", ct);
        await foreach (var job in jobs.WithCancellation(ct))
        {
            await copy.StartRowAsync(ct);
            await copy.WriteAsync(batchId, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(job.Key, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(job.ContentHash, NpgsqlDbType.Text, ct);
            await copy.WriteAsync("pending", NpgsqlDbType.Text, ct);
            await copy.WriteAsync(job.Provider, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(StoreJson.Write(job.Spec), NpgsqlDbType.Jsonb, ct);
            await copy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
            await copy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
            await copy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
            count++;
        }

        await copy.CompleteAsync(ct);
        return count;
    }

    /// <summary>
    /// A resumed batch: the jobs are copied into a temporary table of this transaction, then compared with each id's current
    /// job. The same content is skipped; changed content becomes the id's current job — a new job, or an older job of that
    /// very content made current again — and the job it displaces is superseded: cancelled if it never reached the
    /// provider, left to finish (keeping its history and files) if it did.
    /// </summary>
    private static async Task<(int Added, int Replaced)> ResumeJobsAsync(NpgsqlConnection connection, long batchId, DateTimeOffset now, IAsyncEnumerable<NewEdit> jobs, CancellationToken ct)
    {
        // Imports into one batch take turns, so two of them never both replace the same current job.
        await ExecuteAsync(connection, $"SELECT id FROM batches WHERE id = {batchId} FOR UPDATE", ct);

        // The jobs arrive as staged chunks do (encoded by the import, an id named twice refused), into a temporary table
        // shaped like job_chunks, and are unpacked by the server: the client neither decodes nor re-serializes them. Specs
        // stay json (text) here; only the changed rows' become jsonb, when inserted. A job's place in the manifest is its
        // chunk's then its own: no sort needed.
        await ExecuteAsync(connection, "CREATE TEMP TABLE import_chunks (LIKE job_chunks INCLUDING DEFAULTS INCLUDING IDENTITY) ON COMMIT DROP", ct);
        await CopyChunksAsync(connection, "import_chunks", batchId, now, Chunks(jobs, EncodedJobs.ChunkSize, ct), ct);
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
                -- Not yet at the provider: it must not be submitted any more. At the provider or finished: it keeps going.
                UPDATE jobs j SET superseded_by = d.successor, updated_at = @now,
                    state = CASE WHEN d.state IN ('pending', 'held') THEN 'cancelled' ELSE j.state END,
                    reserved_usd = CASE WHEN d.state IN ('pending', 'held') THEN 0 ELSE j.reserved_usd END,
                    lease_owner = CASE WHEN d.state IN ('pending', 'held') THEN NULL ELSE j.lease_owner END,
                    lease_expires_at = CASE WHEN d.state IN ('pending', 'held') THEN NULL ELSE j.lease_expires_at END,
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

    /// <summary>The error of a job cancelled because a newer job replaced it (SQL), and the pattern that recognizes it.</summary>
    private const string SupersededError = "'superseded by job ' || d.successor || ': its manifest row changed before it was submitted'";

    private const string SupersededPattern = "'superseded by job %'";

    public async Task<BatchRecord?> FindBatchAsync(string name, CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return await FindBatchAsync(connection, name, ct);
    }

    public async Task<BatchRecord?> GetBatchAsync(long batchId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {BatchColumns} FROM batches WHERE id = @id");
        command.Parameters.AddWithValue("id", batchId);
        return (await ListAsync(command, r => ReadBatch(r, Dialect), ct)).SingleOrDefault();
    }

    public async Task<IReadOnlyList<EditRecord>> ClaimAsync(ClaimRequest request, CancellationToken ct)
    {
        var jobs = await ClaimOnceAsync(request, ct);
        if (jobs.Count < request.Limit && await TryExpandForClaimAsync(request.BatchId, request.Limit - jobs.Count, ct))
        {
            jobs.AddRange(await ClaimOnceAsync(request with { Limit = request.Limit - jobs.Count }, ct));
        }

        jobs.Sort((a, b) => a.DueAt != b.DueAt ? a.DueAt.CompareTo(b.DueAt) : a.Id.CompareTo(b.Id));
        return jobs;
    }

    private async Task<List<EditRecord>> ClaimOnceAsync(ClaimRequest request, CancellationToken ct)
    {
        if (request.MaxInFlight is { Count: > 0 } caps)
        {
            return await ClaimWithinCapsAsync(request, caps, ct);
        }

        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        return await ClaimWhereAsync(connection, request, _time.GetUtcNow(), "TRUE", request.Limit, null, [], ct);
    }

    public async Task<bool> TransitionAsync(EditTransition transition, CancellationToken ct) =>
        (await TransitionManyAsync([transition], ct))[0];

    public async Task<IReadOnlyList<bool>> TransitionManyAsync(IReadOnlyList<EditTransition> transitions, CancellationToken ct)
    {
        if (transitions.Select(t => t.Job.Id).Distinct().Count() != transitions.Count)
        {
            throw new ArgumentException("A group commit writes each job once.", nameof(transitions));
        }

        // One statement for the whole group: the counters move once and take their locks in (batch, state) order like
        // every other statement, so groups written by different processes cannot deadlock on them; job rows are locked in
        // id order, then batch rows, then counters, the order of every transition and reservation.
        //
        // Its plan is the prepared generic one. Left to choose, PostgreSQL kept planning it afresh for every group (a custom
        // plan for each array length: 7 % of its CPU in the engine benchmark's profile, and 0.3–0.4 ms of PostgreSQL CPU
        // per job measured with and without); the plan does not depend on the values. Set for this transaction only: a
        // batch's commands share one implicit transaction, so the setting ends with it and no pooled connection keeps it.
        await using var batch = _dataSource.CreateBatch();
        batch.BatchCommands.Add(new NpgsqlBatchCommand("SELECT set_config('plan_cache_mode', 'force_generic_plan', true)"));
        var command = new NpgsqlBatchCommand(
            $$"""
            WITH input AS (
                SELECT * FROM unnest(@id, @owner, @from, @state, @request_id, @attempt, @accepted, @uncertain, @polls, @due_at,
                                     @outputs, @files, @cost, @reserved, @error, @submitted_at, @started_at, @finished_at, @keep, @reason,
                                     @via, @via_reason)
                    AS i(id, owner, from_states, state, request_id, attempt, accepted, uncertain, polls, due_at,
                         outputs, files, cost, reserved, error, submitted_at, started_at, finished_at, keep, reason, via, via_reason)
            ), prev AS (
                SELECT j.id, j.batch_id, j.state, j.cost_usd, j.reserved_usd FROM jobs j JOIN input i ON i.id = j.id
                WHERE j.lease_owner = i.owner AND j.state = ANY(string_to_array(i.from_states, ','))
                ORDER BY j.id
                FOR UPDATE OF j
            ), raising AS (
                -- A move that raises a job's reservation (a submit's, taken in its move to 'submitting') must fit the
                -- batch budget. The locked rows are read as last committed, so concurrent reservations cannot both pass.
                SELECT b.id, b.budget_usd, b.spent_usd, b.reserved_usd FROM batches b
                WHERE b.budget_usd IS NOT NULL
                  AND b.id IN (SELECT p.batch_id FROM prev p JOIN input i ON i.id = p.id WHERE i.reserved > p.reserved_usd)
                ORDER BY b.id
                FOR UPDATE OF b
            ), over AS (
                -- A group's moves of one batch are counted together: if they do not all fit, its raising moves miss (and
                -- their steps ask for an exact verdict one by one).
                SELECT r.id FROM raising r JOIN prev p ON p.batch_id = r.id JOIN input i ON i.id = p.id
                GROUP BY r.id, r.budget_usd, r.spent_usd, r.reserved_usd
                HAVING r.spent_usd + r.reserved_usd + sum((i.cost - p.cost_usd) + (i.reserved - p.reserved_usd)) > r.budget_usd
            ), moved AS (
                UPDATE jobs j SET
                    state = i.state, request_id = i.request_id, attempt = i.attempt, accepted_submits = i.accepted,
                    uncertain_submits = i.uncertain, polls = i.polls,
                    -- A cancel asked for while this step ran is acted on at once, not at the next poll.
                    due_at = CASE WHEN j.cancel_requested THEN least(i.due_at, @now) ELSE i.due_at END,
                    outputs = i.outputs::jsonb, files = i.files::jsonb, cost_usd = i.cost, reserved_usd = i.reserved,
                    error = i.error, submitted_at = i.submitted_at, started_at = i.started_at, finished_at = i.finished_at,
                    updated_at = @now,
                    lease_owner = CASE WHEN i.keep THEN j.lease_owner END,
                    lease_expires_at = CASE WHEN i.keep THEN j.lease_expires_at END
                FROM prev, input i WHERE j.id = prev.id AND i.id = prev.id
                  AND NOT (i.reserved > prev.reserved_usd AND prev.batch_id IN (SELECT id FROM over))
                RETURNING j.id, prev.batch_id, j.provider, prev.state AS from_state, j.state AS to_state, j.finished_at, i.reason, i.owner, i.via, i.via_reason,
                          j.cost_usd - prev.cost_usd AS spent, j.reserved_usd - prev.reserved_usd AS reserved
            ), money AS (
                -- The batches' money counters move in the same statement as the jobs, so they never drift.
                UPDATE batches b SET spent_usd = b.spent_usd + m.spent, reserved_usd = b.reserved_usd + m.reserved
                FROM (SELECT batch_id, sum(spent) AS spent, sum(reserved) AS reserved FROM moved GROUP BY batch_id ORDER BY batch_id) m
                WHERE b.id = m.batch_id AND (m.spent <> 0 OR m.reserved <> 0)
                RETURNING b.id
            ), {{CountMoves("moved", after: "money")}}, spent_today AS (
                -- Settled cost per UTC day of the move and provider (the dashboard's spend, the daily budgets).
                INSERT INTO spend_by_day AS s (day, provider, spent_usd)
                SELECT (@now::timestamptz AT TIME ZONE 'UTC')::date, provider, sum(spent) FROM moved WHERE spent <> 0
                GROUP BY provider ORDER BY provider
                ON CONFLICT (day, provider) DO UPDATE SET spent_usd = s.spent_usd + excluded.spent_usd
            ), outcomes AS (
                -- Succeeded and failed per UTC hour (the overview's graph). Only transitions finish jobs that way, so the
                -- row trigger that counted them (a function call per finished job) is gone with migration 11.
                INSERT INTO job_outcomes_by_hour AS o (hour, state, count)
                SELECT date_trunc('hour', coalesce(finished_at, @now), 'UTC'), to_state, count(*) FROM moved
                WHERE to_state IN ('succeeded', 'failed') AND from_state <> to_state
                GROUP BY 1, 2 ORDER BY 1, 2
                ON CONFLICT (hour, state) DO UPDATE SET count = o.count + excluded.count
            ), history AS (
                -- A state the job passed through unwritten (EditTransition.Via) gets its entry first.
                INSERT INTO job_history (job_id, at, from_state, to_state, reason, server_id)
                SELECT m.id, @now, h.from_state, h.to_state, h.reason, m.owner FROM moved m
                CROSS JOIN LATERAL (
                    SELECT 1, m.from_state, m.via, m.via_reason WHERE m.via IS NOT NULL
                    UNION ALL
                    SELECT 2, coalesce(m.via, m.from_state), m.to_state, m.reason
                ) h(n, from_state, to_state, reason)
                WHERE h.from_state <> h.to_state OR h.reason IS NOT NULL
                ORDER BY m.id, h.n
            )
            SELECT id FROM moved
            """);
        batch.BatchCommands.Add(command);
        var p = command.Parameters;
        var jobs = transitions.Select(t => t.Job).ToArray();
        p.AddWithValue("id", jobs.Select(j => j.Id).ToArray());
        p.AddWithValue("owner", transitions.Select(t => t.Owner).ToArray());
        p.AddWithValue("from", transitions.Select(t => string.Join(',', t.From.Select(s => s.ToDbName()))).ToArray());
        p.AddWithValue("state", jobs.Select(j => j.State.ToDbName()).ToArray());
        p.Add(Array("request_id", NpgsqlDbType.Text, jobs.Select(j => (object?)j.RequestId)));
        p.AddWithValue("attempt", jobs.Select(j => j.Attempt).ToArray());
        p.AddWithValue("accepted", jobs.Select(j => j.AcceptedSubmits).ToArray());
        p.AddWithValue("uncertain", jobs.Select(j => j.UncertainSubmits).ToArray());
        p.AddWithValue("polls", jobs.Select(j => j.Polls).ToArray());
        p.AddWithValue("due_at", jobs.Select(j => j.DueAt).ToArray());
        p.AddWithValue("outputs", jobs.Select(j => StoreJson.Write(j.Outputs)).ToArray());
        p.AddWithValue("files", jobs.Select(j => StoreJson.Write(j.Files)).ToArray());
        p.AddWithValue("cost", jobs.Select(j => j.CostUsd).ToArray());
        p.AddWithValue("reserved", jobs.Select(j => j.ReservedUsd).ToArray());
        p.Add(Array("error", NpgsqlDbType.Text, jobs.Select(j => (object?)j.Error)));
        p.Add(Array("submitted_at", NpgsqlDbType.TimestampTz, jobs.Select(j => (object?)j.SubmittedAt)));
        p.Add(Array("started_at", NpgsqlDbType.TimestampTz, jobs.Select(j => (object?)j.StartedAt)));
        p.Add(Array("finished_at", NpgsqlDbType.TimestampTz, jobs.Select(j => (object?)j.FinishedAt)));
        p.AddWithValue("keep", transitions.Select(t => t.KeepLease).ToArray());
        p.Add(Array("reason", NpgsqlDbType.Text, transitions.Select(t => (object?)t.Reason)));
        p.Add(Array("via", NpgsqlDbType.Text, transitions.Select(t => (object?)t.Via?.ToDbName())));
        p.Add(Array("via_reason", NpgsqlDbType.Text, transitions.Select(t => (object?)t.ViaReason)));
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

        return jobs.Select(j => moved.Contains(j.Id)).ToArray();
    }

    public async Task<IReadOnlyList<BatchRecord>> GetBatchesAsync(CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {BatchColumns} FROM batches ORDER BY id DESC");
        return await ListAsync(command, r => ReadBatch(r, Dialect), ct);
    }

    public async Task<BudgetVerdict> TryReserveBudgetAsync(BudgetReservation reservation, CancellationToken ct)
    {
        if (reservation.DailyCapUsd is not null)
        {
            return await TryReserveWithinDailyBudgetAsync(reservation, ct);
        }

        // Job row first, then batch row: the same lock order as every transition, so the two never deadlock.
        await using var command = _dataSource.CreateCommand(
            """
            WITH j AS (
                SELECT id, batch_id, reserved_usd FROM jobs WHERE id = @id AND lease_owner = @owner FOR UPDATE
            ), b AS (
                SELECT b.id, b.budget_usd, b.spent_usd, b.reserved_usd FROM batches b JOIN j ON b.id = j.batch_id FOR UPDATE OF b
            ), ok AS (
                SELECT j.id, j.batch_id, @amount - j.reserved_usd AS delta FROM j, b
                WHERE b.budget_usd IS NULL OR b.spent_usd + b.reserved_usd + (@amount - j.reserved_usd) <= b.budget_usd
            ), reserved AS (
                UPDATE jobs SET reserved_usd = @amount FROM ok WHERE jobs.id = ok.id RETURNING jobs.id
            ), counted AS (
                UPDATE batches SET reserved_usd = batches.reserved_usd + ok.delta FROM ok WHERE batches.id = ok.batch_id
            )
            SELECT (SELECT count(*)::int FROM j), (SELECT count(*)::int FROM reserved)
            """);
        command.Parameters.AddWithValue("id", reservation.JobId);
        command.Parameters.AddWithValue("owner", reservation.Owner);
        command.Parameters.AddWithValue("amount", reservation.Amount);
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        return reader.GetInt32(0) == 0 ? new BudgetVerdict(BudgetRefusal.NotLeased)
            : reader.GetInt32(1) == 1 ? BudgetVerdict.Granted
            : new BudgetVerdict(BudgetRefusal.BatchBudget);
    }

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

    public async Task<int> RequestCancelAsync(long batchId, CancellationToken ct)
    {
        // Staged jobs are waiting jobs too: made rows first, so the cancel below takes them with the rest.
        await ExpandBatchAsync(batchId, ct);
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var now = _time.GetUtcNow();
        await using var cancel = new NpgsqlCommand(
            $"""
            WITH waiting AS (
                SELECT id, state, reserved_usd FROM jobs WHERE batch_id = @batch AND state IN ('pending', 'held') FOR UPDATE
            ), cancelled AS (
                UPDATE jobs j SET state = 'cancelled', reserved_usd = 0, lease_owner = NULL, lease_expires_at = NULL,
                    error = 'cancelled by an operator', finished_at = @now, updated_at = @now
                FROM waiting WHERE j.id = waiting.id
                RETURNING j.id, j.batch_id, waiting.state AS from_state, j.state AS to_state, waiting.reserved_usd AS released
            ), batch AS (
                UPDATE batches SET cancel_requested_at = coalesce(cancel_requested_at, @now),
                    reserved_usd = reserved_usd - (SELECT coalesce(sum(released), 0) FROM cancelled)
                WHERE id = @batch
                RETURNING id
            ), {CountMoves("cancelled", after: "batch")}, history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason)
                SELECT id, @now, from_state, 'cancelled', 'cancelled by an operator' FROM cancelled
            )
            SELECT count(*)::int FROM cancelled
            """, connection, tx);
        cancel.Parameters.AddWithValue("batch", batchId);
        cancel.Parameters.AddWithValue("now", now);
        var cancelled = (int)(await cancel.ExecuteScalarAsync(ct))!;

        // The jobs already running are flagged for their cancel step by a statement of their own: one that a worker moved
        // from pending to submitting while the statement above waited for its row lock was still pending in that
        // statement's snapshot, so it was neither cancelled nor flagged there — and ran to the end, paid for. This one sees
        // it, and no job of the batch can start any more: none is waiting now.
        await using var flag = new NpgsqlCommand(
            $"""
            WITH flagged AS (
                UPDATE jobs SET cancel_requested = true, due_at = least(due_at, @now), updated_at = @now
                WHERE batch_id = @batch AND state IN ('submitting', 'at_provider') AND NOT cancel_requested
                RETURNING id
            ), notify AS (
                SELECT pg_notify('{Channel}', '') FROM flagged LIMIT 1
            )
            SELECT (SELECT count(*) FROM flagged)::int + 0 * (SELECT count(*) FROM notify)::int
            """, connection, tx);
        flag.Parameters.AddWithValue("batch", batchId);
        flag.Parameters.AddWithValue("now", now);
        var flagged = (int)(await flag.ExecuteScalarAsync(ct))!;
        await tx.CommitAsync(ct);
        return cancelled + flagged;
    }

    public async Task<int> RequeueAsync(long batchId, IReadOnlyList<EditState> states, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            $"""
            WITH again AS (
                SELECT id, state FROM jobs WHERE batch_id = @batch AND state = ANY(@states) AND lease_owner IS NULL AND superseded_by IS NULL FOR UPDATE
            ), requeued AS (
                UPDATE jobs j SET state = 'pending', attempt = 0, polls = 0, request_id = NULL, outputs = '[]', error = NULL,
                    cancel_requested = false, due_at = @now, finished_at = NULL, updated_at = @now
                FROM again WHERE j.id = again.id
                RETURNING j.id, j.batch_id, again.state AS from_state, j.state AS to_state
            ), batch AS (
                UPDATE batches SET cancel_requested_at = NULL WHERE id = @batch AND EXISTS (SELECT 1 FROM requeued)
                RETURNING id
            ), {CountMoves("requeued", after: "batch")}, history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason)
                SELECT id, @now, from_state, 'pending', 'requeued by an operator' FROM requeued
            ), notify AS (
                SELECT pg_notify('{Channel}', '') FROM requeued LIMIT 1
            )
            SELECT (SELECT count(*) FROM requeued)::int + 0 * (SELECT count(*) FROM notify)::int
            """);
        command.Parameters.AddWithValue("batch", batchId);
        command.Parameters.AddWithValue("states", states.Select(x => x.ToDbName()).ToArray());
        command.Parameters.AddWithValue("now", _time.GetUtcNow());
        return (int)(await command.ExecuteScalarAsync(ct))!;
    }

    public async Task HeartbeatAsync(string serverId, TimeSpan leaseDuration, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        await using var batch = _dataSource.CreateBatch();
        var beat = new NpgsqlBatchCommand("UPDATE servers SET heartbeat_at = @now WHERE id = @id");
        beat.Parameters.AddWithValue("now", now);
        beat.Parameters.AddWithValue("id", serverId);
        var renew = new NpgsqlBatchCommand("UPDATE jobs SET lease_expires_at = @until WHERE lease_owner = @id");
        renew.Parameters.AddWithValue("until", now + leaseDuration);
        renew.Parameters.AddWithValue("id", serverId);
        batch.BatchCommands.Add(beat);
        batch.BatchCommands.Add(renew);
        await batch.ExecuteNonQueryAsync(ct);
    }

    public Task<int> RescueExpiredLeasesAsync(int limit, CancellationToken ct) =>
        ReturnLeasesAsync("lease_owner IS NOT NULL AND lease_expires_at < @now", null, limit, RescueReason, ct);

    public Task<int> ReleaseLeasesAsync(string serverId, CancellationToken ct) =>
        ReturnLeasesAsync("lease_owner = @owner", serverId, int.MaxValue, "released on shutdown", ct);

    public async Task<DateTimeOffset?> NextDueAtAsync(long? batchId, CancellationToken ct)
    {
        // Staged jobs are due from their import on. Chunks still there mean the next claim must look for them, whatever
        // this process last found (an expansion it saw in progress may have been rolled back).
        await using var command = _dataSource.CreateCommand(
            $"""
            SELECT (SELECT min(due_at) FROM jobs WHERE lease_owner IS NULL AND state IN {ClaimableSql} AND (@batch::bigint IS NULL OR batch_id = @batch)),
                   (SELECT min(due_at) FROM job_chunks WHERE @batch::bigint IS NULL OR batch_id = @batch)
            """);
        command.Parameters.Add(new NpgsqlParameter("batch", NpgsqlDbType.Bigint) { Value = (object?)batchId ?? DBNull.Value });
        await using var reader = await command.ExecuteReaderAsync(ct);
        await reader.ReadAsync(ct);
        var due = Dialect.NullableTime(reader, 0);
        if (Dialect.NullableTime(reader, 1) is not { } staged)
        {
            return due;
        }

        ForgetNothingStaged(batchId);
        return due is { } d && d < staged ? d : staged;
    }

    public Task<BatchProgress> GetProgressAsync(long batchId, CancellationToken ct) => ProgressFromCountersAsync(batchId, ct);

    public async Task<DateTimeOffset?> GetFirstSubmitAsync(long batchId, CancellationToken ct)
    {
        // Staged jobs were never submitted: nothing to expand.
        await using var command = _dataSource.CreateCommand("SELECT min(submitted_at) FROM jobs WHERE batch_id = @batch");
        command.Parameters.AddWithValue("batch", batchId);
        var value = await command.ExecuteScalarAsync(ct);
        return value is DateTime dt ? new DateTimeOffset(dt, TimeSpan.Zero) : value as DateTimeOffset?;
    }

    public async Task<EditRecord?> GetJobAsync(long jobId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {JobColumns} FROM jobs WHERE id = @id");
        command.Parameters.AddWithValue("id", jobId);
        return (await ListAsync(command, r => ReadJob(r, Dialect), ct)).SingleOrDefault();
    }

    public async Task<IReadOnlyList<EditRecord>> GetJobsAsync(long batchId, CancellationToken ct)
    {
        await ExpandBatchAsync(batchId, ct);
        await using var command = _dataSource.CreateCommand($"SELECT {JobColumns} FROM jobs WHERE batch_id = @batch ORDER BY key, id");
        command.Parameters.AddWithValue("batch", batchId);
        return await ListAsync(command, r => ReadJob(r, Dialect), ct);
    }

    public async Task<IReadOnlyList<EditHistoryEntry>> GetHistoryAsync(long jobId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("SELECT job_id, at, from_state, to_state, reason, server_id FROM job_history WHERE job_id = @id ORDER BY id");
        command.Parameters.AddWithValue("id", jobId);
        return await ListAsync(command, r => ReadHistory(r, Dialect), ct);
    }

    public async Task RegisterServerAsync(ServerInfo server, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            """
            INSERT INTO servers (id, host, pid, concurrency, started_at, heartbeat_at) VALUES (@id, @host, @pid, @concurrency, @started, @beat)
            ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
            """);
        command.Parameters.AddWithValue("id", server.Id);
        command.Parameters.AddWithValue("host", server.Host);
        command.Parameters.AddWithValue("pid", server.ProcessId);
        command.Parameters.AddWithValue("concurrency", server.Concurrency);
        command.Parameters.AddWithValue("started", server.StartedAt);
        command.Parameters.AddWithValue("beat", server.HeartbeatAt);
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task RemoveServerAsync(string serverId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("DELETE FROM servers WHERE id = @id");
        command.Parameters.AddWithValue("id", serverId);
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<int> RemoveServersSilentSinceAsync(DateTimeOffset before, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("DELETE FROM servers WHERE heartbeat_at < @before");
        command.Parameters.AddWithValue("before", before);
        return await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<ServerInfo>> GetServersAsync(CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("SELECT id, host, pid, concurrency, started_at, heartbeat_at FROM servers ORDER BY started_at, id");
        return await ListAsync(command, r => new ServerInfo(r.GetString(0), r.GetString(1), r.GetInt32(2), r.GetInt32(3), Dialect.Time(r, 4), Dialect.Time(r, 5)), ct);
    }

    public async Task ListenAsync(WorkSignal signal, CancellationToken ct)
    {
        var backoff = TimeSpan.FromSeconds(1);
        while (!ct.IsCancellationRequested)
        {
            try
            {
                await using var connection = new NpgsqlConnection(_listenConnectionString);
                await connection.OpenAsync(ct);
                connection.Notification += (_, e) =>
                {
                    if (e.Payload == StagedPayload)
                    {
                        SignalStaged();
                    }

                    signal.Pulse();
                };
                await ExecuteAsync(connection, $"LISTEN {Channel}", ct);

                // Anything announced while we were not listening is found by looking once.
                SignalStaged();
                signal.Pulse();
                backoff = TimeSpan.FromSeconds(1);
                while (true)
                {
                    await connection.WaitAsync(ct);
                }
            }
            catch (OperationCanceledException) when (ct.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is NpgsqlException or IOException or TimeoutException)
            {
                // Until we listen again, workers still find work through their fallback poll.
                LogListenerLost(ex, backoff);
                await Task.Delay(backoff, _time, ct);
                backoff = TimeSpan.FromTicks(Math.Min(backoff.Ticks * 2, TimeSpan.FromSeconds(30).Ticks));
            }
        }
    }

    public ValueTask DisposeAsync() => _dataSource.DisposeAsync();

    /// <summary>
    /// A claim that keeps each capped provider within its MaxInFlight: the provider's limiter row is locked while its
    /// in-flight tasks are counted and its pending jobs claimed, so two workers cannot both take the last free place.
    /// </summary>
    private async Task<List<EditRecord>> ClaimWithinCapsAsync(ClaimRequest request, IReadOnlyDictionary<string, int> caps, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        var capped = caps.Keys.Order(StringComparer.Ordinal).ToArray();
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        var allowance = new Dictionary<string, int>();
        foreach (var provider in capped)
        {
            await using var lockRow = new NpgsqlCommand(
                """
                INSERT INTO rate_limits (account, tat, granted_at) VALUES (@provider, @now, @now) ON CONFLICT (account) DO NOTHING;
                SELECT 1 FROM rate_limits WHERE account = @provider FOR UPDATE;
                """, connection);
            lockRow.Parameters.AddWithValue("provider", provider);
            lockRow.Parameters.AddWithValue("now", now);
            await lockRow.ExecuteNonQueryAsync(ct);
            await using var count = new NpgsqlCommand(
                "SELECT count(*)::int FROM jobs WHERE provider = @provider AND (state IN ('submitting', 'at_provider') OR (state = 'pending' AND lease_owner IS NOT NULL))",
                connection);
            count.Parameters.AddWithValue("provider", provider);
            allowance[provider] = Math.Max(0, caps[provider] - (int)(await count.ExecuteScalarAsync(ct))!);
        }

        var claimed = await ClaimWhereAsync(connection, request, now, "(state <> 'pending' OR NOT (provider = ANY(@capped)))", request.Limit, null, capped, ct);
        foreach (var provider in capped)
        {
            var room = Math.Min(allowance[provider], request.Limit - claimed.Count);
            if (room > 0)
            {
                claimed.AddRange(await ClaimWhereAsync(connection, request, now, "state = 'pending' AND provider = @provider", room, provider, capped, ct));
            }
        }

        await tx.CommitAsync(ct);
        claimed.Sort((a, b) => a.DueAt != b.DueAt ? a.DueAt.CompareTo(b.DueAt) : a.Id.CompareTo(b.Id));
        return claimed;
    }

    /// <summary>
    /// One statement: picks due jobs nobody holds (and that pass <paramref name="filter"/>), skipping rows another worker
    /// is claiming right now, and leases them.
    /// </summary>
    private static async Task<List<EditRecord>> ClaimWhereAsync(
        NpgsqlConnection connection, ClaimRequest request, DateTimeOffset now, string filter, int limit, string? provider, string[] capped, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(
            $"""
            UPDATE jobs j SET lease_owner = @owner, lease_expires_at = @until, updated_at = @now
            FROM (
                SELECT id FROM jobs
                WHERE lease_owner IS NULL AND state IN {ClaimableSql} AND due_at <= @now
                  AND (@batch::bigint IS NULL OR batch_id = @batch) AND {filter}
                ORDER BY due_at, id
                LIMIT @limit
                FOR UPDATE SKIP LOCKED
            ) due
            WHERE j.id = due.id
            RETURNING {Prefixed("j.")}
            """, connection);
        command.Parameters.AddWithValue("owner", request.Owner);
        command.Parameters.AddWithValue("until", now + request.LeaseDuration);
        command.Parameters.AddWithValue("now", now);
        command.Parameters.Add(new NpgsqlParameter("batch", NpgsqlDbType.Bigint) { Value = (object?)request.BatchId ?? DBNull.Value });
        command.Parameters.AddWithValue("limit", limit);
        command.Parameters.AddWithValue("capped", capped);
        command.Parameters.Add(Text("provider", provider));
        return await ListAsync(command, r => ReadJob(r, Dialect), ct);
    }

    private async Task<int> ReturnLeasesAsync(string condition, string? owner, int limit, string why, CancellationToken ct)
    {
        // A job caught in 'submitting' may or may not have been accepted by the provider: it goes back to pending and
        // the uncertain submit is counted, so the report can show the window was hit.
        await using var command = _dataSource.CreateCommand(
            $"""
            WITH held AS (
                SELECT id, state, lease_owner FROM jobs WHERE {condition}
                ORDER BY id LIMIT @limit FOR UPDATE SKIP LOCKED
            ), returned AS (
                UPDATE jobs j SET
                    state = CASE WHEN held.state = 'submitting' THEN 'pending' ELSE held.state END,
                    uncertain_submits = j.uncertain_submits + CASE WHEN held.state = 'submitting' THEN 1 ELSE 0 END,
                    lease_owner = NULL, lease_expires_at = NULL,
                    due_at = CASE WHEN j.due_at < @now THEN j.due_at ELSE @now END, updated_at = @now
                FROM held WHERE j.id = held.id
                RETURNING j.id, j.batch_id, held.state AS from_state, j.state AS to_state, held.lease_owner
            ), {CountMoves("returned")}, history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason, server_id)
                SELECT id, @now, from_state, to_state,
                       '{why} (held by ' || lease_owner || ')'
                       || CASE WHEN from_state = 'submitting' THEN '; the submit may have reached the provider' ELSE '' END,
                       lease_owner
                FROM returned
            ), notify AS (
                SELECT pg_notify('{Channel}', '') FROM returned LIMIT 1
            )
            SELECT (SELECT count(*) FROM returned)::int + 0 * (SELECT count(*) FROM notify)::int
            """);
        command.Parameters.AddWithValue("now", _time.GetUtcNow());
        command.Parameters.AddWithValue("limit", limit);
        if (owner is not null)
        {
            command.Parameters.AddWithValue("owner", owner);
        }

        return (int)(await command.ExecuteScalarAsync(ct))!;
    }

    private static async Task<BatchRecord?> FindBatchAsync(NpgsqlConnection connection, string name, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand($"SELECT {BatchColumns} FROM batches WHERE name = @name", connection);
        command.Parameters.AddWithValue("name", name);
        return (await ListAsync(command, r => ReadBatch(r, Dialect), ct)).SingleOrDefault();
    }

    private static async Task ExecuteAsync(NpgsqlConnection connection, string sql, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand(sql, connection);
        await command.ExecuteNonQueryAsync(ct);
    }

    private static string Prefixed(string alias) => string.Join(", ", JobColumns.Split(", ").Select(c => alias + c));

    /// <summary>An array parameter whose elements may be null (SQL NULL).</summary>
    private static NpgsqlParameter Array(string name, NpgsqlDbType element, IEnumerable<object?> values) =>
        new(name, NpgsqlDbType.Array | element) { Value = values.Select(v => v ?? DBNull.Value).ToArray() };

    private static NpgsqlParameter Text(string name, string? value) => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };

    private static NpgsqlParameter Money(string name, decimal? value) => new(name, NpgsqlDbType.Numeric) { Value = (object?)value ?? DBNull.Value };

    private static NpgsqlParameter Time(string name, DateTimeOffset? value) => new(name, NpgsqlDbType.TimestampTz) { Value = (object?)value ?? DBNull.Value };

    [LoggerMessage(Level = LogLevel.Information, Message = "Applied migration {Version}: {Name}")]
    private partial void LogMigrated(int version, string name);

    [LoggerMessage(Level = LogLevel.Warning, Message = "Lost the LISTEN connection; reconnecting in {Backoff}")]
    private partial void LogListenerLost(Exception ex, TimeSpan backoff);

    private sealed class PostgresDialect : RowDialect
    {
        public override DateTimeOffset Time(DbDataReader reader, int ordinal) => reader.GetFieldValue<DateTimeOffset>(ordinal);

        public override decimal Money(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? 0m : reader.GetDecimal(ordinal);
    }
}
