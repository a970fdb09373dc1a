using System.Globalization;
using Microsoft.Data.Sqlite;
using QwenBatch.Batches;
using QwenBatch.Edits;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>Batches and their import (IBatchStore); the edits of an import through SqliteStore.Import.</summary>
public sealed partial class SqliteStore
{
    public async Task<BatchImport> ImportBatchAsync(NewBatch batch, IAsyncEnumerable<NewEdit> edits, CancellationToken ct)
    {
        var now = NowMs();
        await using var connection = await OpenAsync(ct);
        await using var tx = await BeginAsync(connection, ct);
        var created = await ExecuteAsync(connection, tx,
            "INSERT INTO batches (name, source, provider, storage_dir, created_at, budget_micros) VALUES (@name, @source, @provider, @dir, @now, @budget) ON CONFLICT (name) DO NOTHING",
            ct, ("name", batch.Name), ("source", batch.Source), ("provider", batch.Provider), ("dir", batch.StorageDir), ("now", now),
            ("budget", batch.BudgetUsd is { } b ? Micros(b) : null)) == 1;
        var record = (await FindBatchAsync(connection, tx, batch.Name, ct))!;
        int added, replaced;
        try
        {
            (added, replaced) = await ImportEditsAsync(connection, tx, record.Id, now, created, edits, ct);
        }
        catch (SqliteException ex) when (ex.SqliteErrorCode == SqliteConstraint && ex.Message.Contains("UNIQUE", StringComparison.Ordinal))
        {
            throw new DuplicateJobKeyException($"Batch '{batch.Name}': an import named one job id twice; ids must be unique within a batch. Nothing was imported.", ex);
        }

        if (!created && batch.BudgetUsd is { } budget)
        {
            // A resume with a budget replaces the old one; held edits get another look against it (the feeder decides). After
            // the edits, as on PostgreSQL: an edit the resume superseded is not released first.
            await ExecuteAsync(connection, tx, "UPDATE batches SET budget_micros = @budget WHERE name = @name", ct, ("budget", Micros(budget)), ("name", batch.Name));
            await using var held = Command(connection, tx,
                "SELECT j.id FROM jobs j JOIN batches b ON b.id = j.batch_id WHERE b.name = @name AND j.state = 'held'", ("name", batch.Name));
            foreach (var id in await ListAsync(held, r => r.GetInt64(0), ct))
            {
                await ExecuteAsync(connection, tx, "UPDATE jobs SET state = 'pending', due_at = @now, updated_at = @now, error = NULL WHERE id = @id", ct, ("now", now), ("id", id));
                await InsertHistoryAsync(connection, tx, id, now, "held", "pending", $"budget set to {budget.ToString(CultureInfo.InvariantCulture)} USD", null, ct);
            }

            record = record with { BudgetUsd = budget };
        }

        await tx.CommitAsync(ct);
        return new BatchImport(record, !created, added, replaced);
    }

    public async Task<BatchRecord> CreateFailedBatchAsync(NewBatch batch, string failure, CancellationToken ct)
    {
        // No edits, so no counters: the batch is settled from the start, and retention removes it like any finished batch.
        await using var connection = await OpenAsync(ct);
        await ExecuteAsync(connection, null,
            """
            INSERT INTO batches (name, source, provider, storage_dir, created_at, budget_micros, failure)
            VALUES (@name, @source, @provider, @dir, @now, @budget, @failure)
            ON CONFLICT (name) DO NOTHING
            """, ct,
            ("name", batch.Name), ("source", batch.Source), ("provider", batch.Provider), ("dir", batch.StorageDir), ("now", NowMs()),
            ("budget", batch.BudgetUsd is { } b ? Micros(b) : null), ("failure", failure));
        return (await FindBatchAsync(connection, null, batch.Name, ct))!;
    }

    public async Task<BatchRecord?> FindBatchAsync(string name, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        return await FindBatchAsync(connection, null, name, ct);
    }

    public async Task<BatchRecord?> GetBatchAsync(long batchId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {SqliteBatchColumns} FROM batches WHERE id = @id", ("id", batchId));
        return (await ListAsync(command, r => ReadBatch(r, Dialect), ct)).SingleOrDefault();
    }

    public async Task<IReadOnlyList<BatchRecord>> GetBatchesAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, $"SELECT {SqliteBatchColumns} FROM batches ORDER BY id DESC");
        return await ListAsync(command, r => ReadBatch(r, Dialect), ct);
    }

    public async Task<BatchProgress> GetProgressAsync(long batchId, CancellationToken ct)
    {
        // From the counters and the batch's own spend: no count over its edits.
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
                spent = Usd(reader.GetInt64(2));
            }
            else
            {
                counts[EditStates.Parse(reader.GetString(0))] = (int)reader.GetInt64(1);
            }
        }

        return new BatchProgress(batchId, counts, spent);
    }

    public async Task<DateTimeOffset?> GetFirstSubmitAsync(long batchId, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "SELECT min(submitted_at) FROM jobs WHERE batch_id = @batch", ("batch", batchId));
        return await command.ExecuteScalarAsync(ct) is long ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
    }

    private static async Task<BatchRecord?> FindBatchAsync(SqliteConnection connection, SqliteTransaction? tx, string name, CancellationToken ct)
    {
        await using var command = Command(connection, tx, $"SELECT {SqliteBatchColumns} FROM batches WHERE name = @name", ("name", name));
        return (await ListAsync(command, r => ReadBatch(r, Dialect), ct)).SingleOrDefault();
    }
}
