using QwenBatch.Continuations;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>Batch continuations (IContinuationStore): set at submit or run, claimed once when the batch settles.</summary>
public sealed partial class SqliteStore
{
    public async Task SetContinuationAsync(long batchId, Continuation then, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "UPDATE batches SET then_manifest = @manifest, then_webhook = @webhook WHERE id = @id",
            ("id", batchId), ("manifest", then.Manifest), ("webhook", then.Webhook));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<ClaimedContinuation>> ClaimContinuationsAsync(ContinuationClaim claim, CancellationToken ct)
    {
        // One UPDATE under SQLite's write lock: the guard (no result, and unclaimed or its lease expired) lets one process
        // claim each continuation.
        await using var connection = await OpenAsync(ct);
        var now = _time.GetUtcNow();
        await using var command = Command(connection, null,
            """
            UPDATE batches SET then_claimed_at = @now, then_lease_expires_at = @lease_end
            WHERE then_result IS NULL AND (then_claimed_at IS NULL OR then_lease_expires_at < @now) AND id IN (
                SELECT x.id FROM batches x
                WHERE x.then_result IS NULL AND (x.then_claimed_at IS NULL OR x.then_lease_expires_at < @now)
                  AND (x.then_manifest IS NOT NULL OR x.then_webhook IS NOT NULL)
                  AND (@batch IS NULL OR x.id = @batch)
                  AND EXISTS (SELECT 1 FROM batch_state_counts c WHERE c.batch_id = x.id AND c.count <> 0)
                  AND NOT EXISTS (SELECT 1 FROM batch_state_counts c WHERE c.batch_id = x.id AND c.count <> 0
                                  AND c.state NOT IN ('succeeded', 'failed', 'cancelled', 'held'))
                ORDER BY x.id LIMIT @limit)
            RETURNING id, name, provider, storage_dir, then_manifest, then_webhook
            """, ("now", Ms(now)), ("lease_end", Ms(now + claim.Lease)), ("limit", claim.Limit), ("batch", claim.BatchId));
        return await ListAsync(command, r => new ClaimedContinuation(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3),
            new Continuation(r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5))), ct);
    }

    public async Task RecordContinuationAsync(long batchId, string result, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "UPDATE batches SET then_result = @result WHERE id = @id", ("id", batchId), ("result", result));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<(Continuation Then, DateTimeOffset? ClaimedAt, string? Result)?> GetContinuationAsync(long batchId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "SELECT then_manifest, then_webhook, then_claimed_at, then_result FROM batches WHERE id = @id", ("id", batchId));
        var rows = await ListAsync(command, r => (new Continuation(r.IsDBNull(0) ? null : r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1)),
            Dialect.NullableTime(r, 2), r.IsDBNull(3) ? null : r.GetString(3)), ct);
        return rows.Count == 0 ? null : rows[0];
    }
}
