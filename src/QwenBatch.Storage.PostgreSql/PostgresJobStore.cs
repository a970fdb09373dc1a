using System.Data.Common;
using Microsoft.Extensions.Logging;
using Npgsql;
using NpgsqlTypes;
using QwenBatch.Batches;
using QwenBatch.Jobs;
using QwenBatch.Server;
using static QwenBatch.Storage.JobRows;

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

    public PostgresJobStore(string connectionString, TimeProvider time, ILogger<PostgresJobStore> logger)
    {
        _dataSource = NpgsqlDataSource.Create(connectionString);

        // The listener gets a connection of its own, outside the pool: a pooled connection is reset when returned and
        // would silently stop listening.
        _listenConnectionString = new NpgsqlConnectionStringBuilder(connectionString) { Pooling = false, KeepAlive = 30 }.ConnectionString;
        _time = time;
        _logger = logger;
    }

    public async Task MigrateAsync(CancellationToken ct)
    {
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await ExecuteAsync(connection, $"SELECT pg_advisory_xact_lock({PostgresMigrations.AdvisoryLockKey})", ct);
        await ExecuteAsync(connection, "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL)", ct);
        await using var current = new NpgsqlCommand("SELECT coalesce(max(version), 0) FROM schema_migrations", connection);
        var applied = (int)(await current.ExecuteScalarAsync(ct))!;
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

    public async Task<BatchImport> ImportBatchAsync(NewBatch batch, IAsyncEnumerable<NewJob> jobs, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var tx = await connection.BeginTransactionAsync(ct);
        await using var insertBatch = new NpgsqlCommand(
            $"INSERT INTO batches (name, source, provider, storage_dir, created_at) VALUES (@name, @source, @provider, @dir, @now) "
            + $"ON CONFLICT (name) DO NOTHING RETURNING {BatchColumns}", connection);
        insertBatch.Parameters.AddWithValue("name", batch.Name);
        insertBatch.Parameters.AddWithValue("source", batch.Source);
        insertBatch.Parameters.AddWithValue("provider", batch.Provider);
        insertBatch.Parameters.AddWithValue("dir", batch.StorageDir);
        insertBatch.Parameters.AddWithValue("now", now);
        var created = (await ListAsync(insertBatch, r => ReadBatch(r, Dialect), ct)).SingleOrDefault();
        var record = created ?? await FindBatchAsync(connection, batch.Name, ct)
            ?? throw new InvalidOperationException($"Batch '{batch.Name}' vanished during import.");

        // The jobs are streamed with binary COPY into a temporary table of this transaction, then moved in one statement
        // that skips rows already imported: COPY itself cannot say ON CONFLICT, and a resumed batch has them.
        await ExecuteAsync(connection, "CREATE TEMP TABLE import_jobs (key text NOT NULL, content_hash text NOT NULL, provider text NOT NULL, spec jsonb NOT NULL) ON COMMIT DROP", ct);
        await using (var copy = await connection.BeginBinaryImportAsync("COPY import_jobs (key, content_hash, provider, spec) FROM STDIN (FORMAT BINARY)", ct))
        {
            await foreach (var job in jobs.WithCancellation(ct))
            {
                await copy.StartRowAsync(ct);
                await copy.WriteAsync(job.Key, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(job.ContentHash, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(job.Provider, NpgsqlDbType.Text, ct);
                await copy.WriteAsync(StoreJson.Write(job.Spec), NpgsqlDbType.Jsonb, ct);
            }

            await copy.CompleteAsync(ct);
        }

        // A temporary table is scanned in the order it was written, so ids follow the manifest's order.
        await using var insertJobs = new NpgsqlCommand(
            """
            INSERT INTO jobs (batch_id, key, content_hash, state, provider, spec, due_at, created_at, updated_at)
            SELECT @batch, key, content_hash, 'pending', provider, spec, @now, @now, @now
            FROM import_jobs
            ON CONFLICT (batch_id, key, content_hash) DO NOTHING
            """, connection);
        insertJobs.Parameters.AddWithValue("batch", record.Id);
        insertJobs.Parameters.AddWithValue("now", now);
        var added = await insertJobs.ExecuteNonQueryAsync(ct);
        if (added > 0)
        {
            await ExecuteAsync(connection, $"SELECT pg_notify('{Channel}', '')", ct);
        }

        await tx.CommitAsync(ct);
        return new BatchImport(record, created is null, added);
    }

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

    public async Task<IReadOnlyList<JobRecord>> ClaimAsync(ClaimRequest request, CancellationToken ct)
    {
        var now = _time.GetUtcNow();

        // One statement: pick due jobs nobody holds, skipping rows another worker is claiming right now, and lease them.
        await using var command = _dataSource.CreateCommand(
            $"""
            UPDATE jobs j SET lease_owner = @owner, lease_expires_at = @until, updated_at = @now
            FROM (
                SELECT id FROM jobs
                WHERE lease_owner IS NULL AND state IN {ClaimableSql} AND due_at <= @now
                  AND (@batch::bigint IS NULL OR batch_id = @batch)
                ORDER BY due_at, id
                LIMIT @limit
                FOR UPDATE SKIP LOCKED
            ) due
            WHERE j.id = due.id
            RETURNING {Prefixed("j.")}
            """);
        command.Parameters.AddWithValue("owner", request.Owner);
        command.Parameters.AddWithValue("until", now + request.LeaseDuration);
        command.Parameters.AddWithValue("now", now);
        command.Parameters.Add(new NpgsqlParameter("batch", NpgsqlDbType.Bigint) { Value = (object?)request.BatchId ?? DBNull.Value });
        command.Parameters.AddWithValue("limit", request.Limit);
        var jobs = await ListAsync(command, r => ReadJob(r, Dialect), ct);
        jobs.Sort((a, b) => a.DueAt != b.DueAt ? a.DueAt.CompareTo(b.DueAt) : a.Id.CompareTo(b.Id));
        return jobs;
    }

    public async Task<bool> TransitionAsync(JobTransition transition, CancellationToken ct)
    {
        var job = transition.Job;
        await using var command = _dataSource.CreateCommand(
            """
            WITH prev AS (
                SELECT id, state FROM jobs
                WHERE id = @id AND lease_owner = @owner AND state = ANY(@from)
                FOR UPDATE
            ), moved AS (
                UPDATE jobs j SET
                    state = @state, request_id = @request_id, attempt = @attempt, accepted_submits = @accepted,
                    uncertain_submits = @uncertain, polls = @polls, due_at = @due_at, outputs = @outputs::jsonb,
                    files = @files::jsonb, cost_usd = @cost, error = @error, submitted_at = @submitted_at,
                    finished_at = @finished_at, updated_at = @now,
                    lease_owner = CASE WHEN @keep THEN j.lease_owner END,
                    lease_expires_at = CASE WHEN @keep THEN j.lease_expires_at END
                FROM prev WHERE j.id = prev.id
                RETURNING j.id, prev.state AS from_state, j.state AS to_state
            ), history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason, server_id)
                SELECT id, @now, from_state, to_state, @reason, @owner FROM moved
                WHERE from_state <> to_state OR @reason::text IS NOT NULL
            )
            SELECT count(*)::int FROM moved
            """);
        var p = command.Parameters;
        p.AddWithValue("id", job.Id);
        p.AddWithValue("owner", transition.Owner);
        p.AddWithValue("from", transition.From.Select(s => s.ToDbName()).ToArray());
        p.AddWithValue("state", job.State.ToDbName());
        p.Add(Text("request_id", job.RequestId));
        p.AddWithValue("attempt", job.Attempt);
        p.AddWithValue("accepted", job.AcceptedSubmits);
        p.AddWithValue("uncertain", job.UncertainSubmits);
        p.AddWithValue("polls", job.Polls);
        p.AddWithValue("due_at", job.DueAt);
        p.AddWithValue("outputs", StoreJson.Write(job.Outputs));
        p.AddWithValue("files", StoreJson.Write(job.Files));
        p.AddWithValue("cost", job.CostUsd);
        p.Add(Text("error", job.Error));
        p.Add(Time("submitted_at", job.SubmittedAt));
        p.Add(Time("finished_at", job.FinishedAt));
        p.AddWithValue("now", _time.GetUtcNow());
        p.AddWithValue("keep", transition.KeepLease);
        p.Add(Text("reason", transition.Reason));
        return (int)(await command.ExecuteScalarAsync(ct))! == 1;
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
        ReturnLeasesAsync("lease_owner IS NOT NULL AND lease_expires_at < @now", null, limit, "lease expired", ct);

    public Task<int> ReleaseLeasesAsync(string serverId, CancellationToken ct) =>
        ReturnLeasesAsync("lease_owner = @owner", serverId, int.MaxValue, "released on shutdown", ct);

    public async Task<DateTimeOffset?> NextDueAtAsync(long? batchId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            $"SELECT min(due_at) FROM jobs WHERE lease_owner IS NULL AND state IN {ClaimableSql} AND (@batch::bigint IS NULL OR batch_id = @batch)");
        command.Parameters.Add(new NpgsqlParameter("batch", NpgsqlDbType.Bigint) { Value = (object?)batchId ?? DBNull.Value });
        var value = await command.ExecuteScalarAsync(ct);
        return value is DateTime dt ? new DateTimeOffset(dt, TimeSpan.Zero) : value as DateTimeOffset?;
    }

    public async Task<BatchProgress> GetProgressAsync(long batchId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("SELECT state, count(*)::int, sum(cost_usd) FROM jobs WHERE batch_id = @batch GROUP BY state");
        command.Parameters.AddWithValue("batch", batchId);
        return await ProgressAsync(batchId, command, Dialect, ct);
    }

    public async Task<JobRecord?> GetJobAsync(long jobId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {JobColumns} FROM jobs WHERE id = @id");
        command.Parameters.AddWithValue("id", jobId);
        return (await ListAsync(command, r => ReadJob(r, Dialect), ct)).SingleOrDefault();
    }

    public async Task<IReadOnlyList<JobRecord>> GetJobsAsync(long batchId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {JobColumns} FROM jobs WHERE batch_id = @batch ORDER BY key, id");
        command.Parameters.AddWithValue("batch", batchId);
        return await ListAsync(command, r => ReadJob(r, Dialect), ct);
    }

    public async Task<IReadOnlyList<JobHistoryEntry>> GetHistoryAsync(long jobId, CancellationToken ct)
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
                connection.Notification += (_, _) => signal.Pulse();
                await ExecuteAsync(connection, $"LISTEN {Channel}", ct);

                // Anything announced while we were not listening is found by looking once.
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
                RETURNING j.id, held.state AS from_state, j.state AS to_state, held.lease_owner
            ), history AS (
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

    private static NpgsqlParameter Text(string name, string? value) => new(name, NpgsqlDbType.Text) { Value = (object?)value ?? DBNull.Value };

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
