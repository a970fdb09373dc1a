using Npgsql;
using NpgsqlTypes;
using QwenBatch.Edits;
using static QwenBatch.Storage.EditRows;

namespace QwenBatch.Storage.PostgreSql;

/// <summary>
/// The reads of the reports and pages (IReportReads): counts and spend from the counters kept in step by every write,
/// keyset pages of edits with the trigram-indexed text filter.
/// </summary>
public sealed partial class PostgresStore
{
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

    public async Task<IReadOnlyList<EditRecord>> QueryEditsAsync(EditQuery query, CancellationToken ct)
    {
        await ExpandForListAsync(query.BatchId, ct);
        // Newest first by id: the (state, id) index serves a state page, (batch_id, state, id) a batch's state, the primary
        // key the rest; no OFFSET. Only the filters given are in the statement: with "@x IS NULL OR …" a prepared statement's
        // generic plan could use none of those indexes. A batch's page starts the primary key's walk at the batch's newest
        // edit (the largest of its states' newest, one probe of (batch_id, state, id) each): the planner takes a batch's edits
        // for spread over all ids, and walked back from the newest of a million to reach one batch of ten (150 ms).
        var filters = string.Join(" AND ", new[]
        {
            query.State is null ? null : "state = @state",
            query.BatchId is null ? null : "batch_id = @batch AND id <= (SELECT max((SELECT max(id) FROM jobs WHERE batch_id = @batch AND state = s)) FROM unnest(@states) s)",
            string.IsNullOrWhiteSpace(query.Provider) ? null : "provider = @provider",
            query.BeforeId is null ? null : "id < @before",
        }.Where(f => f is not null).DefaultIfEmpty("true"));

        // The text, in key or prompt, through job_search and its trigram indexes (migration 7) as a semi-join, so the planner
        // may walk the page's index and probe job_search per edit (a common word) or start from the few matches (a rare
        // one); an edit whose id is the text joins by UNION ALL, as an OR would turn the semi-join into a subplan over every
        // match.
        var sql = query.LikePattern is null
            ? $"SELECT {EditColumns} FROM jobs WHERE {filters} ORDER BY id DESC LIMIT @limit"
            : $"""
              SELECT {EditColumns} FROM (
                  SELECT * FROM jobs WHERE {filters} AND id = @text_id
                  UNION ALL
                  (SELECT * FROM jobs WHERE {filters} AND id IS DISTINCT FROM @text_id AND id IN (
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
        p.AddWithValue("states", Enum.GetValues<EditState>().Select(e => e.ToDbName()).ToArray());
        p.AddWithValue("limit", query.Limit);
        return await ListAsync(command, r => ReadEdit(r, Dialect), ct);
    }

    /// <summary>
    /// What the key's trigram index (migration 7, on job_search) is asked for. The keys of a batch mostly share a prefix ("product-",
    /// "row-") whose trigrams are in every key, and GIN reads each trigram's whole posting list: 100 ms for
    /// "product-0154317" on a million edits. The most distinctive run of letters and digits (most digits, then longest; at
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
}
