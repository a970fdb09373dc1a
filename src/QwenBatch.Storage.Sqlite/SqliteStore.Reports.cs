using QwenBatch.Edits;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.Sqlite;

/// <summary>
/// The reads of the reports and pages (IReportReads): counts and spend from the counters the triggers keep in step, keyset
/// pages of edits. The text filter stays a scan here: the embedded store serves one machine's batches, not a fleet's.
/// </summary>
public sealed partial class SqliteStore
{
    public async Task<IReadOnlyList<BatchStateCount>> GetStateCountsAsync(CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null, "SELECT batch_id, state, count FROM batch_state_counts WHERE count <> 0 ORDER BY batch_id, state");
        return await ListAsync(command, r => new BatchStateCount(r.GetInt64(0), EditStates.Parse(r.GetString(1)), r.GetInt64(2)), ct);
    }

    public async Task<IReadOnlyList<ProviderSpend>> GetSpendAsync(DateOnly? day, CancellationToken ct)
    {
        long? dayNumber = day is { } d ? d.DayNumber - DateOnly.FromDateTime(DateTime.UnixEpoch).DayNumber : null;
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            "SELECT provider, sum(spent_micros) FROM spend_by_day WHERE @day IS NULL OR day = @day GROUP BY provider ORDER BY provider", ("day", dayNumber));
        return await ListAsync(command, r => new ProviderSpend(r.GetString(0), Usd(r.GetInt64(1))), ct);
    }

    public async Task<IReadOnlyList<EditRecord>> QueryEditsAsync(EditQuery query, CancellationToken ct)
    {
        await using var connection = await OpenAsync(ct);
        await using var command = Command(connection, null,
            $"""
            SELECT {SqliteEditColumns} FROM jobs
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
        return await ReadEditsAsync(command, ct);
    }
}
