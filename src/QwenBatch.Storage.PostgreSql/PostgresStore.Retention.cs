using QwenBatch.Retention;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>Retention of finished batches (IRetentionStore), a chunk per short statement.</summary>
public sealed partial class PostgresStore
{
    public async Task<long?> FindExpiredBatchAsync(DateTimeOffset cutoff, CancellationToken ct)
    {
        // Finished means every edit terminal (held edits may still be released by a budget), read from the counters rather
        // than the edits; the recency check reads the batch's edits once per batch, not once per chunk.
        await using var find = _dataSource.CreateCommand(
            """
            SELECT b.id FROM batches b
            WHERE b.created_at < @cutoff
              AND NOT EXISTS (SELECT 1 FROM batch_state_counts c WHERE c.batch_id = b.id AND c.count <> 0
                              AND c.state NOT IN ('succeeded', 'failed', 'cancelled'))
              AND NOT EXISTS (SELECT 1 FROM jobs j WHERE j.batch_id = b.id AND j.updated_at >= @cutoff)
            ORDER BY b.created_at, b.id
            LIMIT 1
            """);
        find.Parameters.AddWithValue("cutoff", cutoff);
        return await find.ExecuteScalarAsync(ct) is long id ? id : null;
    }

    public async Task<RetentionStep> PurgeBatchChunkAsync(long batchId, DateTimeOffset cutoff, int chunk, CancellationToken ct)
    {
        // History goes with its edits (ON DELETE CASCADE); the counters and the search rows follow through the delete triggers.
        await using var edits = _dataSource.CreateCommand(
            """
            DELETE FROM jobs WHERE id IN (
                SELECT id FROM jobs WHERE batch_id = @batch AND state IN ('succeeded', 'failed', 'cancelled') AND updated_at < @cutoff
                LIMIT @chunk)
            """);
        edits.Parameters.AddWithValue("batch", batchId);
        edits.Parameters.AddWithValue("cutoff", cutoff);
        edits.Parameters.AddWithValue("chunk", chunk);
        var deleted = await edits.ExecuteNonQueryAsync(ct);
        if (deleted > 0)
        {
            return new RetentionStep(deleted, null, null);
        }

        await using var batch = _dataSource.CreateCommand(
            "DELETE FROM batches b WHERE id = @batch AND NOT EXISTS (SELECT 1 FROM jobs WHERE batch_id = b.id) RETURNING name, storage_dir");
        batch.Parameters.AddWithValue("batch", batchId);
        var gone = (await ListAsync(batch, r => (Name: r.GetString(0), Dir: r.GetString(1)), ct)).SingleOrDefault();
        return new RetentionStep(0, gone.Name, gone.Dir);
    }
}
