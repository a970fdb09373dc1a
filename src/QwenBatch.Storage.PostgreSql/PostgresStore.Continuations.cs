using Npgsql;
using QwenBatch.Continuations;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>Batch continuations (IContinuationStore): set at submit or run, claimed once when the batch settles.</summary>
public sealed partial class PostgresStore
{
    public async Task SetContinuationAsync(long batchId, Continuation then, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("UPDATE batches SET then_manifest = @manifest, then_webhook = @webhook WHERE id = @id");
        command.Parameters.AddWithValue("id", batchId);
        command.Parameters.Add(Text("manifest", then.Manifest));
        command.Parameters.Add(Text("webhook", then.Webhook));
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<IReadOnlyList<ClaimedContinuation>> ClaimContinuationsAsync(ContinuationClaim claim, CancellationToken ct)
    {
        // Settled from the counters: edits exist and none is in a state that can still move without an operator. Claimable:
        // never claimed, or claimed under a lease that expired without a result (the claimer died).
        await using var command = _dataSource.CreateCommand(
            """
            UPDATE batches b SET then_claimed_at = @now, then_lease_expires_at = @lease_end
            WHERE b.then_result IS NULL AND (b.then_claimed_at IS NULL OR b.then_lease_expires_at < @now) AND b.id IN (
                SELECT x.id FROM batches x
                WHERE x.then_result IS NULL AND (x.then_claimed_at IS NULL OR x.then_lease_expires_at < @now)
                  AND (x.then_manifest IS NOT NULL OR x.then_webhook IS NOT NULL)
                  AND (@batch::bigint IS NULL OR x.id = @batch)
                  AND EXISTS (SELECT 1 FROM batch_state_counts c WHERE c.batch_id = x.id AND c.count <> 0)
                  AND NOT EXISTS (SELECT 1 FROM batch_state_counts c WHERE c.batch_id = x.id AND c.count <> 0
                                  AND c.state NOT IN ('succeeded', 'failed', 'cancelled', 'held'))
                ORDER BY x.id LIMIT @limit FOR UPDATE SKIP LOCKED)
            RETURNING id, name, provider, storage_dir, then_manifest, then_webhook
            """);
        var now = _time.GetUtcNow();
        command.Parameters.AddWithValue("now", now);
        command.Parameters.AddWithValue("lease_end", now + claim.Lease);
        command.Parameters.AddWithValue("limit", claim.Limit);
        command.Parameters.Add(new NpgsqlParameter<long?>("batch", NpgsqlTypes.NpgsqlDbType.Bigint) { TypedValue = claim.BatchId });
        return await ListAsync(command, r => new ClaimedContinuation(r.GetInt64(0), r.GetString(1), r.GetString(2), r.GetString(3),
            new Continuation(r.IsDBNull(4) ? null : r.GetString(4), r.IsDBNull(5) ? null : r.GetString(5))), ct);
    }

    public async Task RecordContinuationAsync(long batchId, string result, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("UPDATE batches SET then_result = @result WHERE id = @id");
        command.Parameters.AddWithValue("id", batchId);
        command.Parameters.AddWithValue("result", result);
        await command.ExecuteNonQueryAsync(ct);
    }

    public async Task<(Continuation Then, DateTimeOffset? ClaimedAt, string? Result)?> GetContinuationAsync(long batchId, CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand("SELECT then_manifest, then_webhook, then_claimed_at, then_result FROM batches WHERE id = @id");
        command.Parameters.AddWithValue("id", batchId);
        var rows = await ListAsync(command, r => (new Continuation(r.IsDBNull(0) ? null : r.GetString(0), r.IsDBNull(1) ? null : r.GetString(1)),
            Dialect.NullableTime(r, 2), r.IsDBNull(3) ? null : r.GetString(3)), ct);
        return rows.Count == 0 ? null : rows[0];
    }
}
