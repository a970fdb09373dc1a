using Npgsql;
using NpgsqlTypes;
using QwenBatch.Edits;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>The dashboard's queries: counters (migration 3), keyset pages and bulk operations on a selection.</summary>
public sealed partial class PostgresJobStore
{
    public int LatestSchemaVersion => PostgresMigrations.All[^1].Version;

    public async Task<int> GetSchemaVersionAsync(CancellationToken ct)
    {
        // Two statements: a query naming a missing table fails when planned, whatever a CASE around it says.
        await using var exists = _dataSource.CreateCommand("SELECT to_regclass('schema_migrations') IS NOT NULL");
        if (!(bool)(await exists.ExecuteScalarAsync(ct))!)
        {
            return 0;
        }

        await using var command = _dataSource.CreateCommand("SELECT coalesce(max(version), 0) FROM schema_migrations");
        return (int)(await command.ExecuteScalarAsync(ct))!;
    }

    public async Task<IReadOnlyList<BatchStateCount>> GetStateCountsAsync(CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("SELECT batch_id, state, count FROM batch_state_counts WHERE count <> 0 ORDER BY batch_id, state");
        return await ListAsync(command, r => new BatchStateCount(r.GetInt64(0), EditStates.Parse(r.GetString(1)), r.GetInt64(2)), ct);
    }

    public async Task<IReadOnlyList<ProviderSpend>> GetSpendAsync(DateOnly? day, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            "SELECT provider, sum(spent_usd) FROM spend_by_day WHERE @day::date IS NULL OR day = @day GROUP BY provider ORDER BY provider");
        command.Parameters.Add(new NpgsqlParameter("day", NpgsqlDbType.Date) { Value = (object?)day ?? DBNull.Value });
        return await ListAsync(command, r => new ProviderSpend(r.GetString(0), r.GetDecimal(1)), ct);
    }

    public async Task<IReadOnlyList<RateLimitState>> GetRateLimitsAsync(CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("SELECT account, tat, paused_until, factor FROM rate_limits ORDER BY account");
        return await ListAsync(command, r => new RateLimitState(r.GetString(0), Dialect.Time(r, 1), Dialect.NullableTime(r, 2), r.GetDouble(3)), ct);
    }

    public async Task<IReadOnlyList<EditRecord>> QueryJobsAsync(EditQuery query, CancellationToken ct)
    {
        await ExpandForListAsync(query.BatchId, ct);
        // Newest first by id: the (state, id) index serves a state page, (batch_id, state, id) a batch's, the primary key the
        // rest; no OFFSET.
        const string Filters = """
            (@state::text IS NULL OR state = @state)
              AND (@batch::bigint IS NULL OR batch_id = @batch)
              AND (@provider::text IS NULL OR provider = @provider)
              AND (@before::bigint IS NULL OR id < @before)
            """;

        // The text, in key or prompt, through job_search and its trigram indexes (migration 7) as a semi-join, so the planner
        // may walk the page's index and probe job_search per job (a common word) or start from the few matches (a rare one);
        // a job whose id is the text joins by UNION ALL, as an OR would turn the semi-join into a subplan over every match.
        var sql = query.LikePattern is null
            ? $"SELECT {JobColumns} FROM jobs WHERE {Filters} ORDER BY id DESC LIMIT @limit"
            : $"""
              SELECT {JobColumns} FROM (
                  SELECT * FROM jobs WHERE {Filters} AND id = @text_id
                  UNION ALL
                  (SELECT * FROM jobs WHERE {Filters} AND id IS DISTINCT FROM @text_id AND id IN (
                       SELECT job_id FROM job_search
                       WHERE (key ILIKE @key_probe AND (key || '') ILIKE @like) OR prompt ILIKE @like)
                   ORDER BY id DESC LIMIT @limit)
              ) found
              ORDER BY id DESC
              LIMIT @limit
              """;
        await using var command = _dataSource.CreateCommand(sql);
        var p = command.Parameters;
        p.Add(Text("state", query.State?.ToDbName()));
        p.Add(new NpgsqlParameter("batch", NpgsqlDbType.Bigint) { Value = (object?)query.BatchId ?? DBNull.Value });
        p.Add(Text("provider", string.IsNullOrWhiteSpace(query.Provider) ? null : query.Provider));
        p.Add(Text("like", query.LikePattern));
        p.Add(Text("key_probe", KeyProbe(query.Text) ?? query.LikePattern));
        p.Add(new NpgsqlParameter("text_id", NpgsqlDbType.Bigint) { Value = (object?)query.TextAsId ?? DBNull.Value });
        p.Add(new NpgsqlParameter("before", NpgsqlDbType.Bigint) { Value = (object?)query.BeforeId ?? DBNull.Value });
        p.AddWithValue("limit", query.Limit);
        return await ListAsync(command, r => ReadJob(r, Dialect), ct);
    }

    /// <summary>
    /// What the key's trigram index (migration 7, on job_search) is asked for. The keys of a batch mostly share a prefix ("product-",
    /// "row-") whose trigrams are in every key, and GIN reads each trigram's whole posting list: 100 ms for
    /// "product-0154317" on a million jobs. The most distinctive run of letters and digits (most digits, then longest; at
    /// least 3 characters, or it has no trigram) finds a superset of the same rows in about 1 ms, and the whole pattern is
    /// still checked on each of them — written <c>key || ''</c> so the planner leaves it out of the index scan. Null when
    /// no run is better than the whole text.
    /// </summary>
    internal static string? KeyProbe(string? text)
    {
        var runs = Runs().Matches(text ?? "").Select(m => m.Value).ToList();
        if (runs.Count == 0 || (runs.Count == 1 && runs[0].Length == text!.Trim().Length))
        {
            return null;
        }

        var best = runs.OrderByDescending(r => r.Count(char.IsDigit)).ThenByDescending(r => r.Length).First();
        return "%" + best + "%";
    }

    [System.Text.RegularExpressions.GeneratedRegex(@"[\p{L}\p{N}]{3,}")]
    private static partial System.Text.RegularExpressions.Regex Runs();

    public async Task<int> RequeueJobsAsync(IReadOnlyList<long> jobIds, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            $"""
            WITH again AS (
                SELECT id, batch_id, state FROM jobs
                WHERE id = ANY(@ids) AND state IN ('failed', 'cancelled', 'held') AND lease_owner IS NULL
                ORDER BY id FOR UPDATE
            ), requeued AS (
                UPDATE jobs j SET state = 'pending', attempt = 0, polls = 0, request_id = NULL, outputs = '[]', error = NULL,
                    cancel_requested = false, due_at = @now, finished_at = NULL, updated_at = @now
                FROM again WHERE j.id = again.id
                RETURNING j.id, j.batch_id, again.state AS from_state, j.state AS to_state
            ), batch AS (
                UPDATE batches SET cancel_requested_at = NULL WHERE id IN (SELECT batch_id FROM requeued)
                RETURNING id
            ), {CountMoves("requeued", after: "batch")}, history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason)
                SELECT id, @now, from_state, 'pending', 'requeued by an operator' FROM requeued
            ), notify AS (
                SELECT pg_notify('{Channel}', '') FROM requeued LIMIT 1
            )
            SELECT (SELECT count(*) FROM requeued)::int + 0 * (SELECT count(*) FROM notify)::int
            """);
        command.Parameters.AddWithValue("ids", jobIds.ToArray());
        command.Parameters.AddWithValue("now", _time.GetUtcNow());
        return (int)(await command.ExecuteScalarAsync(ct))!;
    }

    public async Task<int> CancelJobsAsync(IReadOnlyList<long> jobIds, CancellationToken ct)
    {
        // Job rows first, then batch rows: the lock order of every transition.
        await using var command = _dataSource.CreateCommand(
            $"""
            WITH waiting AS (
                SELECT id, batch_id, state, reserved_usd FROM jobs WHERE id = ANY(@ids) AND state IN ('pending', 'held') ORDER BY id FOR UPDATE
            ), cancelled AS (
                UPDATE jobs j SET state = 'cancelled', reserved_usd = 0, lease_owner = NULL, lease_expires_at = NULL,
                    error = 'cancelled by an operator', finished_at = @now, updated_at = @now
                FROM waiting WHERE j.id = waiting.id
                RETURNING j.id, j.batch_id, waiting.state AS from_state, j.state AS to_state, waiting.reserved_usd AS released
            ), flagged AS (
                UPDATE jobs SET cancel_requested = true, due_at = least(due_at, @now), updated_at = @now
                WHERE id = ANY(@ids) AND state IN ('submitting', 'at_provider') AND NOT cancel_requested
                RETURNING id
            ), money AS (
                UPDATE batches b SET reserved_usd = b.reserved_usd - r.released
                FROM (SELECT batch_id, sum(released) AS released FROM cancelled GROUP BY batch_id) r
                WHERE b.id = r.batch_id AND r.released <> 0
                RETURNING b.id
            ), {CountMoves("cancelled", after: "money")}, history AS (
                INSERT INTO job_history (job_id, at, from_state, to_state, reason)
                SELECT id, @now, from_state, 'cancelled', 'cancelled by an operator' FROM cancelled
            ), notify AS (
                SELECT pg_notify('{Channel}', '') FROM flagged LIMIT 1
            )
            SELECT (SELECT count(*) FROM cancelled)::int + (SELECT count(*) FROM flagged)::int + 0 * (SELECT count(*) FROM notify)::int
            """);
        command.Parameters.AddWithValue("ids", jobIds.ToArray());
        command.Parameters.AddWithValue("now", _time.GetUtcNow());
        return (int)(await command.ExecuteScalarAsync(ct))!;
    }

    public async Task<int> DeleteJobsAsync(IReadOnlyList<long> jobIds, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            """
            WITH gone AS (
                DELETE FROM jobs WHERE id = ANY(@ids) AND lease_owner IS NULL AND state IN ('succeeded', 'failed', 'cancelled', 'held')
                RETURNING batch_id, reserved_usd
            ), money AS (
                UPDATE batches b SET reserved_usd = b.reserved_usd - r.released
                FROM (SELECT batch_id, sum(reserved_usd) AS released FROM gone GROUP BY batch_id) r
                WHERE b.id = r.batch_id AND r.released <> 0
            )
            SELECT count(*)::int FROM gone
            """);
        command.Parameters.AddWithValue("ids", jobIds.ToArray());
        return (int)(await command.ExecuteScalarAsync(ct))!;
    }

    public async Task<IReadOnlyList<HourlyOutcome>> GetOutcomesAsync(DateTimeOffset since, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            "SELECT hour, state, count FROM job_outcomes_by_hour WHERE hour >= date_trunc('hour', @since, 'UTC') ORDER BY hour, state");
        command.Parameters.AddWithValue("since", since);
        return await ListAsync(command, r => new HourlyOutcome(Dialect.Time(r, 0), EditStates.Parse(r.GetString(1)), r.GetInt64(2)), ct);
    }

    public async Task<IReadOnlyList<ServerLoad>> GetServerLoadAsync(CancellationToken ct)
    {
        // Leased jobs through the partial lease index; rescues through the partial index on the rescue reason (both small).
        await using var command = _dataSource.CreateCommand(
            $"""
            WITH held AS (
                SELECT lease_owner AS server_id, array_agg(id ORDER BY id) AS ids FROM jobs WHERE lease_owner IS NOT NULL GROUP BY lease_owner
            ), rescued AS (
                SELECT server_id, count(*) AS n, max(at) AS last FROM job_history
                WHERE reason LIKE '{RescueReason}%' AND server_id IS NOT NULL GROUP BY server_id
            )
            SELECT coalesce(h.server_id, r.server_id), coalesce(h.ids, ARRAY[]::bigint[]), coalesce(r.n, 0), r.last
            FROM held h FULL JOIN rescued r ON r.server_id = h.server_id
            ORDER BY 1
            """);
        return await ListAsync(command, r => new ServerLoad(r.GetString(0), r.GetFieldValue<long[]>(1), r.GetInt64(2), Dialect.NullableTime(r, 3)), ct);
    }

    public async Task<IReadOnlyList<EditHistoryEntry>> GetRescuesAsync(string? serverId, int limit, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            $"""
            SELECT job_id, at, from_state, to_state, reason, server_id FROM job_history
            WHERE reason LIKE '{RescueReason}%' AND (@server::text IS NULL OR server_id = @server)
            ORDER BY id DESC LIMIT @limit
            """);
        command.Parameters.Add(Text("server", serverId));
        command.Parameters.AddWithValue("limit", limit);
        return await ListAsync(command, r => ReadHistory(r, Dialect), ct);
    }

    /// <summary>A batch's progress from the counters and the batch's own spend: no count over its jobs.</summary>
    private async Task<Batches.BatchProgress> ProgressFromCountersAsync(long batchId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand(
            "SELECT state, count::int, NULL::numeric FROM batch_state_counts WHERE batch_id = @batch AND count <> 0 "
            + "UNION ALL SELECT NULL, 0, spent_usd FROM batches WHERE id = @batch");
        command.Parameters.AddWithValue("batch", batchId);
        var counts = new Dictionary<EditState, int>();
        decimal spent = 0;
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            if (reader.IsDBNull(0))
            {
                spent = reader.GetDecimal(2);
            }
            else
            {
                counts[EditStates.Parse(reader.GetString(0))] = reader.GetInt32(1);
            }
        }

        return new Batches.BatchProgress(batchId, counts, spent);
    }
}
