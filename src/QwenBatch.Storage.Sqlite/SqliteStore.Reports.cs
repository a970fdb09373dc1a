using Microsoft.Data.Sqlite;
using QwenBatch.Batches;
using QwenBatch.Edits;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>The dashboard's queries: counters (migration 3, kept by triggers), keyset pages and bulk operations.</summary>
public sealed partial class SqliteJobStore
{
    private const long MsPerDay = 86_400_000;

    public int LatestSchemaVersion => SqliteMigrations.All[^1].Version;

    public async Task<int> GetSchemaVersionAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var exists = Command(connection, null, "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'schema_migrations'");
        if ((long)(await exists.ExecuteScalarAsync(ct))! == 0)
        {
            return 0;
        }

        await using var command = Command(connection, null, "SELECT coalesce(max(version), 0) FROM schema_migrations");
        return (int)(long)(await command.ExecuteScalarAsync(ct))!;
    }

    public async Task<IReadOnlyList<BatchStateCount>> GetStateCountsAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "SELECT batch_id, state, count FROM batch_state_counts WHERE count <> 0 ORDER BY batch_id, state");
        return await ListAsync(command, r => new BatchStateCount(r.GetInt64(0), EditStates.Parse(r.GetString(1)), r.GetInt64(2)), ct);
    }

    public async Task<IReadOnlyList<ProviderSpend>> GetSpendAsync(DateOnly? day, CancellationToken ct)
    {
        long? dayNumber = day is { } d ? d.DayNumber - DateOnly.FromDateTime(DateTimeOffset.UnixEpoch.UtcDateTime).DayNumber : null;
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            "SELECT provider, sum(spent_micros) FROM spend_by_day WHERE @day IS NULL OR day = @day GROUP BY provider ORDER BY provider", ("day", dayNumber));
        return await ListAsync(command, r => new ProviderSpend(r.GetString(0), r.GetInt64(1) / MicrosPerUsd), ct);
    }

    public async Task<IReadOnlyList<RateLimitState>> GetRateLimitsAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "SELECT account, tat, paused_until, factor FROM rate_limits ORDER BY account");
        return await ListAsync(command, r => new RateLimitState(r.GetString(0), Dialect.Time(r, 1), Dialect.NullableTime(r, 2), r.GetDouble(3)), ct);
    }

    public async Task<IReadOnlyList<EditRecord>> QueryJobsAsync(EditQuery query, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            $"""
            SELECT {SqliteJobColumns} FROM jobs
            WHERE (@state IS NULL OR state = @state)
              AND (@batch IS NULL OR batch_id = @batch)
              AND (@provider IS NULL OR provider = @provider)
              AND (@like IS NULL OR key LIKE @like ESCAPE '\' OR json_extract(spec, '$.prompt') LIKE @like ESCAPE '\' OR id = @text_id)
              AND (@before IS NULL OR id < @before)
            ORDER BY id DESC
            LIMIT @limit
            """,
            ("state", query.State?.ToDbName()), ("batch", query.BatchId), ("provider", string.IsNullOrWhiteSpace(query.Provider) ? null : query.Provider),
            ("like", query.LikePattern), ("text_id", query.TextAsId), ("before", query.BeforeId), ("limit", query.Limit));
        return await ListAsync(command, r => ReadJob(r, Dialect), ct);
    }

    public async Task<int> RequeueJobsAsync(IReadOnlyList<long> jobIds, CancellationToken ct)
    {
        var now = Ms(_time.GetUtcNow());
        var count = 0;
        await using (var connection = await OpenAsync(ct))
        await using (var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct))
        {
            foreach (var id in jobIds.Distinct())
            {
                await using var again = Command(connection, tx,
                    "SELECT batch_id, state FROM jobs WHERE id = @id AND state IN ('failed', 'cancelled', 'held') AND lease_owner IS NULL", ("id", id));
                if ((await ListAsync(again, r => (Batch: r.GetInt64(0), State: r.GetString(1)), ct)).SingleOrDefault() is not { State: not null } job)
                {
                    continue;
                }

                await using var requeue = Command(connection, tx,
                    """
                    UPDATE jobs SET state = 'pending', attempt = 0, polls = 0, request_id = NULL, outputs = '[]', error = NULL,
                        cancel_requested = 0, due_at = @now, finished_at = NULL, updated_at = @now WHERE id = @id
                    """, ("now", now), ("id", id));
                await requeue.ExecuteNonQueryAsync(ct);
                await using var batch = Command(connection, tx, "UPDATE batches SET cancel_requested_at = NULL WHERE id = @batch", ("batch", job.Batch));
                await batch.ExecuteNonQueryAsync(ct);
                await InsertHistoryAsync(connection, tx, id, now, job.State, "pending", "requeued by an operator", null, ct);
                count++;
            }

            await tx.CommitAsync(ct);
        }

        if (count > 0)
        {
            PulseListeners();
        }

        return count;
    }

    public async Task<int> CancelJobsAsync(IReadOnlyList<long> jobIds, CancellationToken ct)
    {
        var now = Ms(_time.GetUtcNow());
        var count = 0;
        await using (var connection = await OpenAsync(ct))
        await using (var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct))
        {
            foreach (var id in jobIds.Distinct())
            {
                await using var select = Command(connection, tx, "SELECT batch_id, state, reserved_micros FROM jobs WHERE id = @id", ("id", id));
                if ((await ListAsync(select, r => (Batch: r.GetInt64(0), State: r.GetString(1), Reserved: r.GetInt64(2)), ct)).SingleOrDefault() is not { State: not null } job)
                {
                    continue;
                }

                if (job.State is "pending" or "held")
                {
                    await using var cancel = Command(connection, tx,
                        """
                        UPDATE jobs SET state = 'cancelled', reserved_micros = 0, lease_owner = NULL, lease_expires_at = NULL,
                            error = 'cancelled by an operator', finished_at = @now, updated_at = @now WHERE id = @id
                        """, ("now", now), ("id", id));
                    await cancel.ExecuteNonQueryAsync(ct);
                    await using var money = Command(connection, tx, "UPDATE batches SET reserved_micros = reserved_micros - @released WHERE id = @batch",
                        ("released", job.Reserved), ("batch", job.Batch));
                    await money.ExecuteNonQueryAsync(ct);
                    await InsertHistoryAsync(connection, tx, id, now, job.State, "cancelled", "cancelled by an operator", null, ct);
                    count++;
                }
                else if (job.State is "submitting" or "at_provider")
                {
                    await using var flag = Command(connection, tx,
                        "UPDATE jobs SET cancel_requested = 1, due_at = min(due_at, @now), updated_at = @now WHERE id = @id AND cancel_requested = 0",
                        ("now", now), ("id", id));
                    count += await flag.ExecuteNonQueryAsync(ct);
                }
            }

            await tx.CommitAsync(ct);
        }

        PulseListeners();
        return count;
    }

    public async Task<int> DeleteJobsAsync(IReadOnlyList<long> jobIds, CancellationToken ct)
    {
        var count = 0;
        await using (var connection = await OpenAsync(ct))
        await using (var tx = (SqliteTransaction)await connection.BeginTransactionAsync(ct))
        {
            foreach (var id in jobIds.Distinct())
            {
                await using var delete = Command(connection, tx,
                    "DELETE FROM jobs WHERE id = @id AND lease_owner IS NULL AND state IN ('succeeded', 'failed', 'cancelled', 'held') RETURNING batch_id, reserved_micros",
                    ("id", id));
                foreach (var (batch, reserved) in await ListAsync(delete, r => (r.GetInt64(0), r.GetInt64(1)), ct))
                {
                    await using var money = Command(connection, tx, "UPDATE batches SET reserved_micros = reserved_micros - @released WHERE id = @batch",
                        ("released", reserved), ("batch", batch));
                    await money.ExecuteNonQueryAsync(ct);
                    count++;
                }
            }

            await tx.CommitAsync(ct);
        }

        return count;
    }

    public async Task<IReadOnlyList<HourlyOutcome>> GetOutcomesAsync(DateTimeOffset since, CancellationToken ct)
    {
        const long msPerHour = 3_600_000;
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            "SELECT hour, state, count FROM job_outcomes_by_hour WHERE hour >= @since ORDER BY hour, state", ("since", Ms(since) / msPerHour * msPerHour));
        return await ListAsync(command, r => new HourlyOutcome(Dialect.Time(r, 0), EditStates.Parse(r.GetString(1)), r.GetInt64(2)), ct);
    }

    public async Task<IReadOnlyList<ServerLoad>> GetServerLoadAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var held = Command(connection, null, "SELECT lease_owner, id FROM jobs WHERE lease_owner IS NOT NULL ORDER BY lease_owner, id");
        var jobs = (await ListAsync(held, r => (Server: r.GetString(0), Id: r.GetInt64(1)), ct)).ToLookup(j => j.Server, j => j.Id);
        await using var rescued = Command(connection, null,
            $"SELECT server_id, count(*), max(at) FROM job_history WHERE reason LIKE '{RescueReason}%' AND server_id IS NOT NULL GROUP BY server_id");
        var rescues = (await ListAsync(rescued, r => (Server: r.GetString(0), Count: r.GetInt64(1), Last: Dialect.Time(r, 2)), ct)).ToDictionary(r => r.Server);
        return jobs.Select(g => g.Key).Union(rescues.Keys).Order(StringComparer.Ordinal)
            .Select(id => new ServerLoad(id, jobs[id].ToList(), rescues.TryGetValue(id, out var r) ? r.Count : 0, rescues.TryGetValue(id, out var l) ? l.Last : null))
            .ToList();
    }

    public async Task<IReadOnlyList<EditHistoryEntry>> GetRescuesAsync(string? serverId, int limit, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            $"""
            SELECT job_id, at, from_state, to_state, reason, server_id FROM job_history
            WHERE reason LIKE '{RescueReason}%' AND (@server IS NULL OR server_id = @server)
            ORDER BY id DESC LIMIT @limit
            """,
            ("server", serverId), ("limit", limit));
        return await ListAsync(command, r => ReadHistory(r, Dialect), ct);
    }

    /// <summary>A batch's progress from the counters and the batch's own spend: no count over its jobs.</summary>
    private async Task<BatchProgress> ProgressFromCountersAsync(long batchId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            "SELECT state, count, NULL FROM batch_state_counts WHERE batch_id = @batch AND count <> 0 UNION ALL SELECT NULL, 0, spent_micros FROM batches WHERE id = @batch",
            ("batch", batchId));
        var counts = new Dictionary<EditState, int>();
        decimal spent = 0;
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            if (reader.IsDBNull(0))
            {
                spent = reader.GetInt64(2) / MicrosPerUsd;
            }
            else
            {
                counts[EditStates.Parse(reader.GetString(0))] = (int)reader.GetInt64(1);
            }
        }

        return new BatchProgress(batchId, counts, spent);
    }
}
