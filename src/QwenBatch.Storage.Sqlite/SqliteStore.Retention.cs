using QwenBatch.Retention;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>Retention of finished batches (IRetentionStore): each step one short write transaction, so other writers wait at most a chunk.</summary>
public sealed partial class SqliteStore
{
    public async Task<long?> FindExpiredBatchAsync(DateTimeOffset cutoff, CancellationToken ct)
    {
        // As on PostgreSQL: terminal states from the counters, recency from the batch's edits once per batch.
        await using var connection = await OpenAsync(ct);
        await using var find = Command(connection, null,
            """
            SELECT b.id FROM batches b
            WHERE b.created_at < @cutoff
              AND NOT EXISTS (SELECT 1 FROM batch_state_counts c WHERE c.batch_id = b.id AND c.count <> 0
                              AND c.state NOT IN ('succeeded', 'failed', 'cancelled'))
              AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id AND j.updated_at >= @cutoff)
            ORDER BY b.created_at, b.id
            LIMIT 1
            """, ("cutoff", Ms(cutoff)));
        return await find.ExecuteScalarAsync(ct) is long id ? id : null;
    }

    public async Task<RetentionStep> PurgeBatchChunkAsync(long batchId, DateTimeOffset cutoff, int chunk, CancellationToken ct)
    {
        // Each step is one short write transaction, so other writers wait at most one chunk.
        await using var connection = await OpenAsync(ct);
        await using var edits = Command(connection, null,
            """
            DELETE FROM jobs WHERE id IN (
                SELECT id FROM jobs WHERE batch_id = @batch AND state IN ('succeeded', 'failed', 'cancelled') AND updated_at < @cutoff
                LIMIT @chunk)
            """, ("batch", batchId), ("cutoff", Ms(cutoff)), ("chunk", chunk));
        var deleted = await edits.ExecuteNonQueryAsync(ct);
        if (deleted > 0)
        {
            return new RetentionStep(deleted, null, null);
        }

        await using var batch = Command(connection, null,
            "DELETE FROM batches WHERE id = @batch AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = @batch) RETURNING name, storage_dir", ("batch", batchId));
        var gone = (await ListAsync(batch, r => (Name: r.GetString(0), Dir: r.GetString(1)), ct)).SingleOrDefault();
        return new RetentionStep(0, gone.Name, gone.Dir);
    }
}
