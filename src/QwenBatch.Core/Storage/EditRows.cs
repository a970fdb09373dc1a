using System.Data.Common;
using QwenBatch.Batches;
using QwenBatch.Edits;
using QwenBatch.Outputs;

namespace QwenBatch.Storage;

/// <summary>How a backend stores the values SQL types do not agree on.</summary>
public abstract class RowDialect
{
    public abstract DateTimeOffset Time(DbDataReader reader, int ordinal);

    public abstract decimal Money(DbDataReader reader, int ordinal);

    public virtual bool Bool(DbDataReader reader, int ordinal) => reader.GetBoolean(ordinal);

    public DateTimeOffset? NullableTime(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : Time(reader, ordinal);

    public decimal? NullableMoney(DbDataReader reader, int ordinal) => reader.IsDBNull(ordinal) ? null : Money(reader, ordinal);
}

/// <summary>The column lists and row mapping shared by every backend, so both read a job the same way.</summary>
public static class EditRows
{
    public const string EditColumns =
        "id, batch_id, key, content_hash, state, provider, spec, request_id, attempt, accepted_submits, uncertain_submits, polls, "
        + "due_at, hangfire_job, updated_at, outputs, files, cost_usd, error, created_at, submitted_at, finished_at, "
        + "reserved_usd, cancel_requested, started_at, revision, replaces, superseded_by";

    public const string BatchColumns = "id, name, source, provider, storage_dir, created_at, budget_usd, spent_usd, reserved_usd, cancel_requested_at, failure";

    public static EditRecord ReadEdit(DbDataReader r, RowDialect d) => new()
    {
        Id = r.GetInt64(0),
        BatchId = r.GetInt64(1),
        Key = r.GetString(2),
        ContentHash = r.GetString(3),
        State = EditStates.Parse(r.GetString(4)),
        Provider = r.GetString(5),
        Spec = StoreJson.Read<EditSpec>(r.GetString(6)),
        RequestId = r.IsDBNull(7) ? null : r.GetString(7),
        Attempt = r.GetInt32(8),
        AcceptedSubmits = r.GetInt32(9),
        UncertainSubmits = r.GetInt32(10),
        Polls = r.GetInt32(11),
        DueAt = d.Time(r, 12),
        HangfireJob = r.IsDBNull(13) ? null : r.GetString(13),
        UpdatedAt = d.Time(r, 14),
        Outputs = StoreJson.Read<List<ProviderOutput>>(r.GetString(15)),
        Files = StoreJson.Read<List<OutputFile>>(r.GetString(16)),
        CostUsd = d.Money(r, 17),
        Error = r.IsDBNull(18) ? null : r.GetString(18),
        CreatedAt = d.Time(r, 19),
        SubmittedAt = d.NullableTime(r, 20),
        FinishedAt = d.NullableTime(r, 21),
        ReservedUsd = d.Money(r, 22),
        CancelRequested = d.Bool(r, 23),
        StartedAt = d.NullableTime(r, 24),
        Revision = r.GetInt32(25),
        Replaces = r.IsDBNull(26) ? null : r.GetInt64(26),
        SupersededBy = r.IsDBNull(27) ? null : r.GetInt64(27),
    };

    public static BatchRecord ReadBatch(DbDataReader r, RowDialect d) => new()
    {
        Id = r.GetInt64(0),
        Name = r.GetString(1),
        Source = r.GetString(2),
        Provider = r.GetString(3),
        StorageDir = r.GetString(4),
        CreatedAt = d.Time(r, 5),
        BudgetUsd = d.NullableMoney(r, 6),
        SpentUsd = d.Money(r, 7),
        ReservedUsd = d.Money(r, 8),
        CancelRequestedAt = d.NullableTime(r, 9),
        Failure = r.IsDBNull(10) ? null : r.GetString(10),
    };

    public static EditHistoryEntry ReadHistory(DbDataReader r, RowDialect d) => new(
        r.GetInt64(0),
        d.Time(r, 1),
        r.IsDBNull(2) ? null : EditStates.Parse(r.GetString(2)),
        EditStates.Parse(r.GetString(3)),
        r.IsDBNull(4) ? null : r.GetString(4),
        r.IsDBNull(5) ? null : r.GetString(5));

    public static async Task<List<T>> ListAsync<T>(DbCommand command, Func<DbDataReader, T> read, CancellationToken ct)
    {
        var list = new List<T>();
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            list.Add(read(reader));
        }

        return list;
    }

    /// <summary>Folds "state, count, cost" rows into a <see cref="BatchProgress"/>.</summary>
    public static async Task<BatchProgress> ProgressAsync(long batchId, DbCommand command, RowDialect d, CancellationToken ct)
    {
        var counts = new Dictionary<EditState, int>();
        decimal spent = 0;
        await using var reader = await command.ExecuteReaderAsync(ct);
        while (await reader.ReadAsync(ct))
        {
            counts[EditStates.Parse(reader.GetString(0))] = reader.GetInt32(1);
            spent += d.Money(reader, 2);
        }

        return new BatchProgress(batchId, counts, spent);
    }
}
