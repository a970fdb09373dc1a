using System.Data.Common;
using Microsoft.Data.Sqlite;
using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Server;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>
/// The embedded job store: one SQLite file in WAL mode. Writes are serialized by SQLite's write lock (transactions
/// begin immediately), so several processes on one file stay correct; workers in this process are woken in-process,
/// others by their fallback poll. Times are unix milliseconds, money is integer micro-dollars.
/// </summary>
public sealed partial class SqliteJobStore : IJobStore
{
    private const decimal MicrosPerUsd = 1_000_000m;
    private static readonly SqliteDialect Dialect = new();
    private readonly string _connectionString;
    private readonly TimeProvider _time;
    private readonly object _listenersLock = new();
    private readonly List<WorkSignal> _listeners = [];

    static SqliteJobStore() => SQLitePCL.Batteries_V2.Init();

    public SqliteJobStore(string path, TimeProvider time)
    {
        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        _connectionString = new SqliteConnectionStringBuilder
        {
            DataSource = path,
            Mode = SqliteOpenMode.ReadWriteCreate,
            Pooling = true,
            ForeignKeys = true,
            DefaultTimeout = 30,
        }.ToString();
        _time = time;
    }

    public async Task MigrateAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await ExecuteAsync(connection, null, "PRAGMA journal_mode = WAL", ct);
        await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
        await ExecuteAsync(connection, tx, "CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_at INTEGER NOT NULL)", ct);
        await using var current = Command(connection, tx, "SELECT coalesce(max(version), 0) FROM schema_migrations");
        var applied = (long)(await current.ExecuteScalarAsync(ct))!;
        if (applied > LatestSchemaVersion)
        {
            throw new StoreSchemaTooNewException((int)applied, LatestSchemaVersion);
        }

        foreach (var (version, name, sql) in SqliteMigrations.All.Where(m => m.Version > applied))
        {
            await ExecuteAsync(connection, tx, sql, ct);
            await using var record = Command(connection, tx, "INSERT INTO schema_migrations (version, name, applied_at) VALUES (@v, @n, @at)",
                ("v", version), ("n", name), ("at", Ms(_time.GetUtcNow())));
            await record.ExecuteNonQueryAsync(ct);
        }

        await tx.CommitAsync(ct);
    }

    public async Task<BatchImport> ImportBatchAsync(NewBatch batch, IAsyncEnumerable<NewEdit> jobs, CancellationToken ct)
    {
        var now = Ms(_time.GetUtcNow());
        BatchImport result;
        bool wake;
        await using (var connection = await OpenAsync(ct))
        await using (var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct))
        {
            await using var insertBatch = Command(connection, tx,
                "INSERT INTO batches (name, source, provider, storage_dir, created_at, budget_micros) VALUES (@name, @source, @provider, @dir, @now, @budget) ON CONFLICT (name) DO NOTHING",
                ("name", batch.Name), ("source", batch.Source), ("provider", batch.Provider), ("dir", batch.StorageDir), ("now", now),
                ("budget", batch.BudgetUsd is { } b ? Micros(b) : null));
            var created = await insertBatch.ExecuteNonQueryAsync(ct) == 1;
            var released = 0;
            if (!created && batch.BudgetUsd is { } budget)
            {
                // A resume with a budget replaces the old one; held jobs get another look against it.
                await using var rebudget = Command(connection, tx, "UPDATE batches SET budget_micros = @budget WHERE name = @name", ("budget", Micros(budget)), ("name", batch.Name));
                await rebudget.ExecuteNonQueryAsync(ct);
                await using var held = Command(connection, tx,
                    "SELECT j.id FROM jobs j JOIN batches b ON b.id = j.batch_id WHERE b.name = @name AND j.state = 'held'", ("name", batch.Name));
                foreach (var id in await ListAsync(held, r => r.GetInt64(0), ct))
                {
                    await using var release = Command(connection, tx, "UPDATE jobs SET state = 'pending', due_at = @now, updated_at = @now, error = NULL WHERE id = @id", ("now", now), ("id", id));
                    await release.ExecuteNonQueryAsync(ct);
                    await InsertHistoryAsync(connection, tx, id, now, "held", "pending", $"budget set to {budget.ToString(System.Globalization.CultureInfo.InvariantCulture)} USD", null, ct);
                    released++;
                }
            }
            await using var find = Command(connection, tx, $"SELECT {SqliteBatchColumns} FROM batches WHERE name = @name", ("name", batch.Name));
            var record = (await ListAsync(find, r => ReadBatch(r, Dialect), ct)).Single();

            int added, replaced;
            try
            {
                (added, replaced) = await ImportJobsAsync(connection, tx, record.Id, now, created, jobs, ct);
            }
            catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteConstraint && ex.Message.Contains("UNIQUE", StringComparison.Ordinal))
            {
                throw new DuplicateJobKeyException($"Batch '{batch.Name}': an import named one job id twice; ids must be unique within a batch. Nothing was imported.", ex);
            }

            await tx.CommitAsync(ct);
            result = new BatchImport(record, !created, added, replaced);
            wake = added + released > 0;
        }

        if (wake)
        {
            PulseListeners();
        }

        return result;
    }

    public async Task<BatchRecord?> FindBatchAsync(string name, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {SqliteBatchColumns} FROM batches WHERE name = @name", ("name", name));
        return (await ListAsync(command, r => ReadBatch(r, Dialect), ct)).SingleOrDefault();
    }

    public async Task<BatchRecord?> GetBatchAsync(long batchId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {SqliteBatchColumns} FROM batches WHERE id = @id", ("id", batchId));
        return (await ListAsync(command, r => ReadBatch(r, Dialect), ct)).SingleOrDefault();
    }

    public async Task<IReadOnlyList<EditRecord>> ClaimAsync(ClaimRequest request, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        await using var connection = await OpenAsync(ct);

        // Under SQLite's write lock (an immediate transaction) no other writer can claim the same rows in between, nor
        // count a provider's in-flight tasks while we take its last free places.
        await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
        var caps = request.MaxInFlight ?? new Dictionary<string, int>();
        var capped = string.Join(", ", caps.Keys.Select((_, i) => $"@cap{i}"));
        var capParameters = caps.Keys.Select((p, i) => ($"cap{i}", (object?)p)).ToArray();
        var jobs = await ClaimWhereAsync(connection, tx, request, now,
            caps.Count == 0 ? "1 = 1" : $"(state <> 'pending' OR provider NOT IN ({capped}))", request.Limit, capParameters, ct);
        foreach (var (provider, cap) in caps)
        {
            await using var count = Command(connection, tx,
                "SELECT count(*) FROM jobs WHERE provider = @provider AND (state IN ('submitting', 'at_provider') OR (state = 'pending' AND lease_owner IS NOT NULL))",
                ("provider", provider));
            var room = Math.Min(cap - (int)(long)(await count.ExecuteScalarAsync(ct))!, request.Limit - jobs.Count);
            if (room > 0)
            {
                jobs.AddRange(await ClaimWhereAsync(connection, tx, request, now, "state = 'pending' AND provider = @provider", room, [("provider", provider)], ct));
            }
        }

        await tx.CommitAsync(ct);
        jobs.Sort((a, b) => a.DueAt != b.DueAt ? a.DueAt.CompareTo(b.DueAt) : a.Id.CompareTo(b.Id));
        return jobs;
    }

    private static async Task<List<EditRecord>> ClaimWhereAsync(
        SqliteConnection connection, SqliteTransaction tx, ClaimRequest request, DateTimeOffset now, string filter, int limit,
        (string Name, object? Value)[] extra, CancellationToken ct)
    {
        await using var command = Command(connection, tx,
            $"""
            UPDATE jobs SET lease_owner = @owner, lease_expires_at = @until, updated_at = @now
            WHERE id IN (
                SELECT id FROM jobs
                WHERE lease_owner IS NULL AND state IN {ClaimableSql} AND due_at <= @now
                  AND (@batch IS NULL OR batch_id = @batch) AND {filter}
                ORDER BY due_at, id
                LIMIT @limit)
            RETURNING {SqliteJobColumns}
            """,
            [("owner", request.Owner), ("until", Ms(now + request.LeaseDuration)), ("now", Ms(now)), ("batch", request.BatchId), ("limit", limit), .. extra]);
        return await ListAsync(command, r => ReadJob(r, Dialect), ct);
    }

    public async Task<bool> TransitionAsync(EditTransition transition, CancellationToken ct) =>
        (await TransitionManyAsync([transition], ct))[0];

    public async Task<IReadOnlyList<bool>> TransitionManyAsync(IReadOnlyList<EditTransition> transitions, CancellationToken ct)
    {
        var now = Ms(_time.GetUtcNow());
        await using var connection = await OpenAsync(ct);
        await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
        var moved = new bool[transitions.Count];
        for (var i = 0; i < transitions.Count; i++)
        {
            moved[i] = await TransitionAsync(connection, tx, transitions[i], now, ct);
        }

        await tx.CommitAsync(ct);
        return moved;
    }

    private static async Task<bool> TransitionAsync(SqliteConnection connection, SqliteTransaction tx, EditTransition transition, long now, CancellationToken ct)
    {
        var job = transition.Job;
        var from = string.Join(", ", transition.From.Select(s => $"'{s.ToDbName()}'"));
        await using var guard = Command(connection, tx, $"SELECT state, batch_id, cost_micros, reserved_micros FROM jobs WHERE id = @id AND lease_owner = @owner AND state IN ({from})",
            ("id", job.Id), ("owner", transition.Owner));
        var rows = await ListAsync(guard, r => (State: r.GetString(0), Batch: r.GetInt64(1), Cost: r.GetInt64(2), Reserved: r.GetInt64(3)), ct);
        if (rows.Count == 0)
        {
            return false;
        }

        var (previous, batchId, previousCost, previousReserved) = rows[0];
        if (Micros(job.ReservedUsd) > previousReserved)
        {
            // A move that raises the job's reservation (a submit's, taken in its move to 'submitting') must fit the batch
            // budget. SQLite has one writer at a time, and a transaction whose reads went stale before its first write fails
            // instead of writing, so the check cannot race.
            await using var budget = Command(connection, tx, "SELECT budget_micros, spent_micros, reserved_micros FROM batches WHERE id = @batch", ("batch", batchId));
            var (limit, spentSoFar, reservedSoFar) = (await ListAsync(budget, r => (r.IsDBNull(0) ? (long?)null : r.GetInt64(0), r.GetInt64(1), r.GetInt64(2)), ct))[0];
            var raise = Micros(job.CostUsd) - previousCost + (Micros(job.ReservedUsd) - previousReserved);
            if (limit is { } cap && spentSoFar + reservedSoFar + raise > cap)
            {
                return false;
            }
        }

        await using var update = Command(connection, tx,
            """
            UPDATE jobs SET
                state = @state, request_id = @request_id, attempt = @attempt, accepted_submits = @accepted,
                uncertain_submits = @uncertain, polls = @polls,
                due_at = CASE WHEN cancel_requested THEN min(@due_at, @now) ELSE @due_at END, outputs = @outputs, files = @files,
                cost_micros = @cost, reserved_micros = @reserved, error = @error, submitted_at = @submitted_at,
                started_at = @started_at, finished_at = @finished_at, updated_at = @now,
                lease_owner = CASE WHEN @keep THEN lease_owner END,
                lease_expires_at = CASE WHEN @keep THEN lease_expires_at END
            WHERE id = @id
            """,
            ("id", job.Id), ("state", job.State.ToDbName()), ("request_id", job.RequestId), ("attempt", job.Attempt),
            ("accepted", job.AcceptedSubmits), ("uncertain", job.UncertainSubmits), ("polls", job.Polls), ("due_at", Ms(job.DueAt)),
            ("outputs", StoreJson.Write(job.Outputs)), ("files", StoreJson.Write(job.Files)), ("cost", Micros(job.CostUsd)),
            ("error", job.Error), ("submitted_at", Ms(job.SubmittedAt)), ("finished_at", Ms(job.FinishedAt)), ("now", now),
            ("keep", transition.KeepLease), ("reserved", Micros(job.ReservedUsd)), ("started_at", Ms(job.StartedAt)));
        await update.ExecuteNonQueryAsync(ct);
        var spent = Micros(job.CostUsd) - previousCost;
        var reserved = Micros(job.ReservedUsd) - previousReserved;
        if (spent != 0 || reserved != 0)
        {
            // The batch's money counters move in the same transaction as the job, so they never drift.
            await using var money = Command(connection, tx, "UPDATE batches SET spent_micros = spent_micros + @spent, reserved_micros = reserved_micros + @reserved WHERE id = @batch",
                ("spent", spent), ("reserved", reserved), ("batch", batchId));
            await money.ExecuteNonQueryAsync(ct);
        }

        // A state the job passed through unwritten (EditTransition.Via) gets its entry first.
        if (transition.Via is { } via)
        {
            if (previous != via.ToDbName() || transition.ViaReason is not null)
            {
                await InsertHistoryAsync(connection, tx, job.Id, now, previous, via.ToDbName(), transition.ViaReason, transition.Owner, ct);
            }

            previous = via.ToDbName();
        }

        if (previous != job.State.ToDbName() || transition.Reason is not null)
        {
            await InsertHistoryAsync(connection, tx, job.Id, now, previous, job.State.ToDbName(), transition.Reason, transition.Owner, ct);
        }

        return true;
    }

    public async Task<IReadOnlyList<BatchRecord>> GetBatchesAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {SqliteBatchColumns} FROM batches ORDER BY id DESC");
        return await ListAsync(command, r => ReadBatch(r, Dialect), ct);
    }

    public async Task<BudgetVerdict> TryReserveBudgetAsync(BudgetReservation reservation, CancellationToken ct)
    {
        var (jobId, owner, amount, dailyCap) = reservation;
        await using var connection = await OpenAsync(ct);

        // An immediate transaction holds SQLite's write lock: no other reservation or settlement can come in between the
        // reads below and the write, in this process or another.
        await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
        await using var read = Command(connection, tx,
            """
            SELECT j.batch_id, j.reserved_micros, b.budget_micros, b.spent_micros, b.reserved_micros, j.provider
            FROM jobs j JOIN batches b ON b.id = j.batch_id WHERE j.id = @id AND j.lease_owner = @owner
            """, ("id", jobId), ("owner", owner));
        var rows = await ListAsync(read, r => (Batch: r.GetInt64(0), Held: r.GetInt64(1), Budget: r.IsDBNull(2) ? (long?)null : r.GetInt64(2), Spent: r.GetInt64(3), Reserved: r.GetInt64(4), Provider: r.GetString(5)), ct);
        if (rows.Count == 0)
        {
            return new BudgetVerdict(BudgetRefusal.NotLeased);
        }

        var (batch, held, budget, spent, reserved, provider) = rows[0];
        var delta = Micros(amount) - held;
        if (budget is { } limit && spent + reserved + delta > limit)
        {
            return new BudgetVerdict(BudgetRefusal.BatchBudget);
        }

        var verdict = BudgetVerdict.Granted;
        if (dailyCap is { } cap)
        {
            // The daily cap: settled today (UTC) + every other open reservation of the account + this one.
            var day = await ReadDailySpendAsync(connection, tx, provider, jobId, ct);
            verdict = verdict with { Day = day.Day, DaySpentUsd = day.SpentUsd, DayReservedUsd = day.ReservedUsd };
            if (Micros(day.SpentUsd) + Micros(day.ReservedUsd) + Micros(amount) > Micros(cap))
            {
                return verdict with { Refusal = BudgetRefusal.DailyBudget };
            }
        }

        await using var job = Command(connection, tx, "UPDATE jobs SET reserved_micros = @amount WHERE id = @id", ("amount", Micros(amount)), ("id", jobId));
        await job.ExecuteNonQueryAsync(ct);
        await using var counted = Command(connection, tx, "UPDATE batches SET reserved_micros = reserved_micros + @delta WHERE id = @batch", ("delta", delta), ("batch", batch));
        await counted.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        return verdict;
    }

    public async Task<TimeSpan?> ReserveRequestAsync(RequestReservation reservation, CancellationToken ct)
    {
        var now = Ms(_time.GetUtcNow());
        var interval = reservation.Interval.TotalMilliseconds;
        var tolerance = interval * (reservation.Burst - 1);
        await using var connection = await OpenAsync(ct);
        await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
        await using var read = Command(connection, tx, "SELECT tat, paused_until, factor FROM rate_limits WHERE account = @account", ("account", reservation.Account));
        var rows = await ListAsync(read, r => (Tat: r.GetInt64(0), Paused: r.IsDBNull(1) ? (long?)null : r.GetInt64(1), Factor: r.GetDouble(2)), ct);
        var (tat, paused, factor) = rows.Count == 0 ? (now, (long?)null, 1.0) : rows[0];

        // GCRA with reservations, as in the PostgreSQL store: book the next slot and say how long to wait for it.
        var start = Math.Max(Math.Max(tat, now), paused ?? now);
        var granted = start - tolerance;
        if (granted - now > reservation.MaxWait.TotalMilliseconds)
        {
            return null;
        }

        await using var write = Command(connection, tx,
            """
            INSERT INTO rate_limits (account, tat, granted_at, paused_until, factor) VALUES (@account, @tat, @granted, @paused, @factor)
            ON CONFLICT (account) DO UPDATE SET tat = excluded.tat, granted_at = excluded.granted_at, factor = excluded.factor
            """,
            ("account", reservation.Account), ("tat", start + (long)Math.Round(interval / factor)), ("granted", (long)granted), ("paused", paused),
            ("factor", Math.Min(1.0, factor * 1.01)));
        await write.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
        return TimeSpan.FromMilliseconds(Math.Max(0, granted - now));
    }

    public async Task PauseAccountAsync(string account, DateTimeOffset until, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            """
            INSERT INTO rate_limits (account, tat, granted_at, paused_until, factor) VALUES (@account, @until, @now, @until, 0.7)
            ON CONFLICT (account) DO UPDATE SET paused_until = max(coalesce(paused_until, @until), @until), factor = max(0.1, factor * 0.7)
            """,
            ("account", account), ("until", Ms(until)), ("now", Ms(_time.GetUtcNow())));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<RateLimitState?> GetRateLimitAsync(string account, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "SELECT account, tat, paused_until, factor FROM rate_limits WHERE account = @account", ("account", account));
        return (await ListAsync(command, r => new RateLimitState(r.GetString(0), Dialect.Time(r, 1), Dialect.NullableTime(r, 2), r.GetDouble(3)), ct)).SingleOrDefault();
    }

    public async Task<int> RequestCancelAsync(long batchId, CancellationToken ct)
    {
        var now = Ms(_time.GetUtcNow());
        int count;
        await using (var connection = await OpenAsync(ct))
        await using (var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct))
        {
            await using var waiting = Command(connection, tx, "SELECT id, state, reserved_micros FROM jobs WHERE batch_id = @batch AND state IN ('pending', 'held')", ("batch", batchId));
            var jobs = await ListAsync(waiting, r => (Id: r.GetInt64(0), State: r.GetString(1), Reserved: r.GetInt64(2)), ct);
            foreach (var (id, state, _) in jobs)
            {
                await using var cancel = Command(connection, tx,
                    """
                    UPDATE jobs SET state = 'cancelled', reserved_micros = 0, lease_owner = NULL, lease_expires_at = NULL,
                        error = 'cancelled by an operator', finished_at = @now, updated_at = @now WHERE id = @id
                    """, ("now", now), ("id", id));
                await cancel.ExecuteNonQueryAsync(ct);
                await InsertHistoryAsync(connection, tx, id, now, state, "cancelled", "cancelled by an operator", null, ct);
            }

            await using var flag = Command(connection, tx,
                "UPDATE jobs SET cancel_requested = 1, due_at = min(due_at, @now), updated_at = @now WHERE batch_id = @batch AND state IN ('submitting', 'at_provider') AND cancel_requested = 0",
                ("now", now), ("batch", batchId));
            var flagged = await flag.ExecuteNonQueryAsync(ct);
            await using var batch = Command(connection, tx,
                "UPDATE batches SET cancel_requested_at = coalesce(cancel_requested_at, @now), reserved_micros = reserved_micros - @released WHERE id = @batch",
                ("now", now), ("released", jobs.Sum(j => j.Reserved)), ("batch", batchId));
            await batch.ExecuteNonQueryAsync(ct);
            await tx.CommitAsync(ct);
            count = jobs.Count + flagged;
        }

        PulseListeners();
        return count;
    }

    public async Task<int> RequeueAsync(long batchId, IReadOnlyList<EditState> states, CancellationToken ct)
    {
        var now = Ms(_time.GetUtcNow());
        var names = string.Join(", ", states.Select(s => $"'{s.ToDbName()}'"));
        int count;
        await using (var connection = await OpenAsync(ct))
        await using (var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct))
        {
            await using var again = Command(connection, tx, $"SELECT id, state FROM jobs WHERE batch_id = @batch AND state IN ({names}) AND lease_owner IS NULL AND superseded_by IS NULL", ("batch", batchId));
            var jobs = await ListAsync(again, r => (Id: r.GetInt64(0), State: r.GetString(1)), ct);
            foreach (var (id, state) in jobs)
            {
                await using var requeue = Command(connection, tx,
                    """
                    UPDATE jobs SET state = 'pending', attempt = 0, polls = 0, request_id = NULL, outputs = '[]', error = NULL,
                        cancel_requested = 0, due_at = @now, finished_at = NULL, updated_at = @now WHERE id = @id
                    """, ("now", now), ("id", id));
                await requeue.ExecuteNonQueryAsync(ct);
                await InsertHistoryAsync(connection, tx, id, now, state, "pending", "requeued by an operator", null, ct);
            }

            if (jobs.Count > 0)
            {
                await using var batch = Command(connection, tx, "UPDATE batches SET cancel_requested_at = NULL WHERE id = @batch", ("batch", batchId));
                await batch.ExecuteNonQueryAsync(ct);
            }

            await tx.CommitAsync(ct);
            count = jobs.Count;
        }

        if (count > 0)
        {
            PulseListeners();
        }

        return count;
    }

    public async Task HeartbeatAsync(string serverId, TimeSpan leaseDuration, CancellationToken ct)
    {
        var now = _time.GetUtcNow();
        await using var connection = await OpenAsync(ct);
        await using var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct);
        await using var beat = Command(connection, tx, "UPDATE servers SET heartbeat_at = @now WHERE id = @id", ("now", Ms(now)), ("id", serverId));
        await beat.ExecuteNonQueryAsync(ct);
        await using var renew = Command(connection, tx, "UPDATE jobs SET lease_expires_at = @until WHERE lease_owner = @id", ("until", Ms(now + leaseDuration)), ("id", serverId));
        await renew.ExecuteNonQueryAsync(ct);
        await tx.CommitAsync(ct);
    }

    public Task<int> RescueExpiredLeasesAsync(int limit, CancellationToken ct) =>
        ReturnLeasesAsync("lease_owner IS NOT NULL AND lease_expires_at < @now", null, limit, RescueReason, ct);

    public Task<int> ReleaseLeasesAsync(string serverId, CancellationToken ct) =>
        ReturnLeasesAsync("lease_owner = @owner", serverId, int.MaxValue, "released on shutdown", ct);

    public async Task<DateTimeOffset?> NextDueAtAsync(long? batchId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            $"SELECT min(due_at) FROM jobs WHERE lease_owner IS NULL AND state IN {ClaimableSql} AND (@batch IS NULL OR batch_id = @batch)",
            ("batch", batchId));
        return await command.ExecuteScalarAsync(ct) is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
    }

    public Task<BatchProgress> GetProgressAsync(long batchId, CancellationToken ct) => ProgressFromCountersAsync(batchId, ct);

    public async Task<DateTimeOffset?> GetFirstSubmitAsync(long batchId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "SELECT min(submitted_at) FROM jobs WHERE batch_id = @batch", ("batch", batchId));
        return await command.ExecuteScalarAsync(ct) is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
    }

    public async Task<EditRecord?> GetJobAsync(long jobId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {SqliteJobColumns} FROM jobs WHERE id = @id", ("id", jobId));
        return (await ListAsync(command, r => ReadJob(r, Dialect), ct)).SingleOrDefault();
    }

    public async Task<IReadOnlyList<EditRecord>> GetJobsAsync(long batchId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {SqliteJobColumns} FROM jobs WHERE batch_id = @batch ORDER BY key, id", ("batch", batchId));
        return await ListAsync(command, r => ReadJob(r, Dialect), ct);
    }

    public async Task<IReadOnlyList<EditHistoryEntry>> GetHistoryAsync(long jobId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "SELECT job_id, at, from_state, to_state, reason, server_id FROM job_history WHERE job_id = @id ORDER BY id", ("id", jobId));
        return await ListAsync(command, r => ReadHistory(r, Dialect), ct);
    }

    public async Task RegisterServerAsync(ServerInfo server, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            """
            INSERT INTO servers (id, host, pid, concurrency, started_at, heartbeat_at) VALUES (@id, @host, @pid, @concurrency, @started, @beat)
            ON CONFLICT (id) DO UPDATE SET heartbeat_at = excluded.heartbeat_at
            """,
            ("id", server.Id), ("host", server.Host), ("pid", server.ProcessId), ("concurrency", server.Concurrency),
            ("started", Ms(server.StartedAt)), ("beat", Ms(server.HeartbeatAt)));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task RemoveServerAsync(string serverId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "DELETE FROM servers WHERE id = @id", ("id", serverId));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<int> RemoveServersSilentSinceAsync(DateTimeOffset before, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "DELETE FROM servers WHERE heartbeat_at < @before", ("before", Ms(before)));
        return await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<ServerInfo>> GetServersAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "SELECT id, host, pid, concurrency, started_at, heartbeat_at FROM servers ORDER BY started_at, id");
        return await ListAsync(command, r => new ServerInfo(r.GetString(0), r.GetString(1), r.GetInt32(2), r.GetInt32(3), Dialect.Time(r, 4), Dialect.Time(r, 5)), ct);
    }

    public async Task ListenAsync(WorkSignal signal, CancellationToken ct)
    {
        lock (_listenersLock)
        {
            _listeners.Add(signal);
        }

        try
        {
            await Task.Delay(Timeout.Infinite, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            // Stopped listening, as asked.
        }
        finally
        {
            lock (_listenersLock)
            {
                _listeners.Remove(signal);
            }
        }
    }

    public ValueTask DisposeAsync()
    {
        // Only this file's pool: clearing every pool would pull connections from under other stores in the process.
        using var connection = new SqliteConnection(_connectionString);
        SqliteConnection.ClearPool(connection);
        return ValueTask.CompletedTask;
    }

    private const string SqliteJobColumns =
        "id, batch_id, key, content_hash, state, provider, spec, request_id, attempt, accepted_submits, uncertain_submits, polls, "
        + "due_at, lease_owner, lease_expires_at, outputs, files, cost_micros, error, created_at, submitted_at, finished_at, "
        + "reserved_micros, cancel_requested, started_at, revision, replaces, superseded_by";

    private const string SqliteBatchColumns =
        "id, name, source, provider, storage_dir, created_at, budget_micros, spent_micros, reserved_micros, cancel_requested_at, failure";

    private async Task<int> ReturnLeasesAsync(string condition, string? owner, int limit, string why, CancellationToken ct)
    {
        var now = Ms(_time.GetUtcNow());
        int count;
        await using (var connection = await OpenAsync(ct))
        await using (var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct))
        {
            await using var select = Command(connection, tx, $"SELECT id, state, lease_owner FROM jobs WHERE {condition} ORDER BY id LIMIT @limit",
                ("now", now), ("owner", owner), ("limit", limit));
            var held = await ListAsync(select, r => (Id: r.GetInt64(0), State: r.GetString(1), Owner: r.GetString(2)), ct);
            foreach (var (id, state, leaseOwner) in held)
            {
                // A job caught in 'submitting' may have been accepted by the provider: back to pending, counted as uncertain.
                var submitting = state == EditState.Submitting.ToDbName();
                var to = submitting ? EditState.Pending.ToDbName() : state;
                await using var update = Command(connection, tx,
                    """
                    UPDATE jobs SET state = @to, uncertain_submits = uncertain_submits + @uncertain, lease_owner = NULL,
                        lease_expires_at = NULL, due_at = min(due_at, @now), updated_at = @now
                    WHERE id = @id
                    """,
                    ("to", to), ("uncertain", submitting ? 1 : 0), ("now", now), ("id", id));
                await update.ExecuteNonQueryAsync(ct);
                var reason = $"{why} (held by {leaseOwner}){(submitting ? "; the submit may have reached the provider" : "")}";
                await InsertHistoryAsync(connection, tx, id, now, state, to, reason, leaseOwner, ct);
            }

            await tx.CommitAsync(ct);
            count = held.Count;
        }

        if (count > 0)
        {
            PulseListeners();
        }

        return count;
    }

    private static async Task InsertHistoryAsync(SqliteConnection connection, SqliteTransaction tx, long jobId, long at, string? from, string to, string? reason, string? server, CancellationToken ct)
    {
        await using var history = Command(connection, tx,
            "INSERT INTO job_history (job_id, at, from_state, to_state, reason, server_id) VALUES (@job, @at, @from, @to, @reason, @server)",
            ("job", jobId), ("at", at), ("from", from), ("to", to), ("reason", reason), ("server", server));
        await history.ExecuteNonQueryAsync(ct);
    }

    private void PulseListeners()
    {
        lock (_listenersLock)
        {
            foreach (var listener in _listeners)
            {
                listener.Pulse();
            }
        }
    }

    private async Task<SqliteConnection> OpenAsync(CancellationToken ct)
    {
        var connection = new SqliteConnection(_connectionString);
        await connection.OpenAsync(ct);
        return connection;
    }

    private static SqliteCommand Command(SqliteConnection connection, SqliteTransaction? tx, string sql, params (string Name, object? Value)[] parameters)
    {
        var command = connection.CreateCommand();
        command.CommandText = sql;
        command.Transaction = tx;
        foreach (var (name, value) in parameters)
        {
            command.Parameters.AddWithValue("@" + name, value ?? DBNull.Value);
        }

        return command;
    }

    private static async Task ExecuteAsync(SqliteConnection connection, SqliteTransaction? tx, string sql, CancellationToken ct)
    {
        await using var command = Command(connection, tx, sql);
        await command.ExecuteNonQueryAsync(ct);
    }

    private static long Ms(DateTimeOffset time) => time.ToUnixTimeMilliseconds();

    private static long? Ms(DateTimeOffset? time) => time?.ToUnixTimeMilliseconds();

    private static long Micros(decimal usd) => (long)decimal.Round(usd * MicrosPerUsd);

    private sealed class SqliteDialect : RowDialect
    {
        public override DateTimeOffset Time(DbDataReader reader, int ordinal) => DateTimeOffset.FromUnixTimeMilliseconds(reader.GetInt64(ordinal));

        public override decimal Money(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? 0m : reader.GetInt64(ordinal) / MicrosPerUsd;

        public override bool Bool(DbDataReader reader, int ordinal) => reader.GetInt64(ordinal) != 0;
    }
}
