using Npgsql;
using NpgsqlTypes;
using QwenBatch.Batches;
using QwenBatch.Edits;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>Batches and their import (IBatchStore): new batches by binary COPY (or staged), resumes through PostgresStore.Resume.</summary>
public sealed partial class PostgresStore
{
    public async Task<BatchImport> ImportBatchAsync(NewBatch batch, IAsyncEnumerable<NewEdit> edits, CancellationToken ct)
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
        int added;
        var replaced = 0;
        try
        {
            if (created is not null)
            {
                // A batch made by this very import has no rows that could conflict: the edits go straight in with binary
                // COPY (into jobs, or staged when more than a chunk), and a duplicate id is refused.
                added = await CopyNewBatchAsync(connection, record.Id, now, edits, ct);
            }
            else
            {
                (added, replaced) = await ResumeEditsAsync(connection, record.Id, now, edits, ct);
            }
        }
        catch (PostgresException ex) when (ex.SqlState == PostgresErrorCodes.UniqueViolation)
        {
            throw new DuplicateJobKeyException($"Batch '{batch.Name}': an import named one job id twice; ids must be unique within a batch. Nothing was imported.", ex);
        }

        if (created is null && batch.BudgetUsd is { } budget)
        {
            // A resume with a budget replaces the old one; held edits get another look against it (the feeder decides). After
            // the edits: this locks the batch row, and the resume's edit rows must be locked before it (PostgresStore.Resume).
            await using var rebudget = new NpgsqlCommand(
                $"""
                WITH b AS (UPDATE batches SET budget_usd = @budget WHERE id = @batch RETURNING id),
                held AS (
                    UPDATE jobs SET state = 'pending', due_at = @now, updated_at = @now, error = NULL
                    WHERE batch_id = @batch AND state = 'held' RETURNING id, batch_id, 'held'::text AS from_state, state AS to_state),
                {CountMoves("held", after: "b")}
                INSERT INTO job_history (job_id, at, from_state, to_state, reason)
                SELECT id, @now, 'held', 'pending', 'budget set to ' || @budget::text || ' USD' FROM held
                """, connection);
            rebudget.Parameters.AddWithValue("budget", budget);
            rebudget.Parameters.AddWithValue("batch", record.Id);
            rebudget.Parameters.AddWithValue("now", now);
            await rebudget.ExecuteNonQueryAsync(ct);
            record = record with { BudgetUsd = budget };
        }

        await tx.CommitAsync(ct);
        return new BatchImport(record, created is null, added, replaced);
    }

    public async Task<BatchRecord> CreateFailedBatchAsync(NewBatch batch, string failure, CancellationToken ct)
    {
        // No edits, so no counters: the batch is settled from the start, and retention removes it like any finished batch.
        await using var connection = await _dataSource.OpenConnectionAsync(ct);
        await using var insert = new NpgsqlCommand(
            """
            INSERT INTO batches (name, source, provider, storage_dir, created_at, budget_usd, failure)
            VALUES (@name, @source, @provider, @dir, @now, @budget, @failure)
            ON CONFLICT (name) DO NOTHING
            """, connection);
        insert.Parameters.AddWithValue("name", batch.Name);
        insert.Parameters.AddWithValue("source", batch.Source);
        insert.Parameters.AddWithValue("provider", batch.Provider);
        insert.Parameters.AddWithValue("dir", batch.StorageDir);
        insert.Parameters.AddWithValue("now", _time.GetUtcNow());
        insert.Parameters.Add(Money("budget", batch.BudgetUsd));
        insert.Parameters.AddWithValue("failure", failure);
        await insert.ExecuteNonQueryAsync(ct);
        return (await FindBatchAsync(connection, batch.Name, ct))!;
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

    public async Task<IReadOnlyList<BatchRecord>> GetBatchesAsync(CancellationToken ct)
    {
        await using var command = _dataSource.CreateCommand($"SELECT {BatchColumns} FROM batches ORDER BY id DESC");
        return await ListAsync(command, r => ReadBatch(r, Dialect), ct);
    }

    public async Task<BatchProgress> GetProgressAsync(long batchId, CancellationToken ct)
    {
        // From the counters and the batch's own spend: no count over its edits.
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

        return new BatchProgress(batchId, counts, spent);
    }

    public async Task<DateTimeOffset?> GetFirstSubmitAsync(long batchId, CancellationToken ct)
    {
        // Staged edits were never submitted: nothing to expand.
        await using var command = _dataSource.CreateCommand("SELECT min(submitted_at) FROM jobs WHERE batch_id = @batch");
        command.Parameters.AddWithValue("batch", batchId);
        var value = await command.ExecuteScalarAsync(ct);
        return value is DateTime dt ? new DateTimeOffset(dt, TimeSpan.Zero) : value as DateTimeOffset?;
    }

    /// <summary>Streams <paramref name="edits"/> with binary COPY into jobs (a small new batch); returns how many were written.</summary>
    private static async Task<int> CopyEditsAsync(NpgsqlConnection connection, long batchId, DateTimeOffset now, IAsyncEnumerable<NewEdit> edits, CancellationToken ct)
    {
        var count = 0;
        await using var copy = await connection.BeginBinaryImportAsync(
            "COPY jobs (batch_id, key, content_hash, state, provider, spec, due_at, created_at, updated_at) FROM STDIN (FORMAT BINARY)", ct);
        await foreach (var edit in edits.WithCancellation(ct))
        {
            await copy.StartRowAsync(ct);
            await copy.WriteAsync(batchId, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(edit.Key, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(edit.ContentHash, NpgsqlDbType.Text, ct);
            await copy.WriteAsync("pending", NpgsqlDbType.Text, ct);
            await copy.WriteAsync(edit.Provider, NpgsqlDbType.Text, ct);
            await copy.WriteAsync(StoreJson.Write(edit.Spec), NpgsqlDbType.Jsonb, ct);
            await copy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
            await copy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
            await copy.WriteAsync(now, NpgsqlDbType.TimestampTz, ct);
            count++;
        }

        await copy.CompleteAsync(ct);
        return count;
    }

    private static async Task<BatchRecord?> FindBatchAsync(NpgsqlConnection connection, string name, CancellationToken ct)
    {
        await using var command = new NpgsqlCommand($"SELECT {BatchColumns} FROM batches WHERE name = @name", connection);
        command.Parameters.AddWithValue("name", name);
        return (await ListAsync(command, r => ReadBatch(r, Dialect), ct)).SingleOrDefault();
    }
}
