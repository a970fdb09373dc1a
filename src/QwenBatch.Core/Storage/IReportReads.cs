using QwenBatch.Edits;

namespace QwenBatch.Storage;

/// <summary>
/// The reads of the reports, the batch pages and the REST API. Counts and spend come from counters the stores keep in
/// step with every write, never from counting edits per request.
/// </summary>
public interface IReportReads
{
    /// <summary>Every batch's edit count per state, from the maintained counters (zero counts left out).</summary>
    Task<IReadOnlyList<BatchStateCount>> GetStateCountsAsync(CancellationToken ct);

    /// <summary>Settled cost per provider on one UTC day, or over all time when <paramref name="day"/> is null.</summary>
    Task<IReadOnlyList<ProviderSpend>> GetSpendAsync(DateOnly? day, CancellationToken ct);

    /// <summary>One page of edits, newest first, after the <see cref="EditQuery.BeforeId"/> cursor (keyset paging).</summary>
    Task<IReadOnlyList<EditRecord>> QueryEditsAsync(EditQuery query, CancellationToken ct);
}

/// <summary>How many edits of a batch are in a state.</summary>
public sealed record BatchStateCount(long BatchId, EditState State, long Count);

/// <summary>Settled cost of one provider.</summary>
public sealed record ProviderSpend(string Provider, decimal SpentUsd);

/// <summary>A page request for the edit lists: filters, and the keyset cursor (the smallest id of the previous page).</summary>
public sealed record EditQuery(EditState? State = null, long? BatchId = null, string? Provider = null, string? Text = null, long? BeforeId = null, int Limit = 20)
{
    /// <summary>The text as a LIKE pattern: the wildcards of the user's text escaped with a backslash.</summary>
    public string? LikePattern => string.IsNullOrWhiteSpace(Text)
        ? null
        : "%" + Text.Trim().Replace("\\", "\\\\", StringComparison.Ordinal).Replace("%", "\\%", StringComparison.Ordinal).Replace("_", "\\_", StringComparison.Ordinal) + "%";

    /// <summary>The text as an edit id, when it is one.</summary>
    public long? TextAsId => long.TryParse(Text?.Trim(), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var id) ? id : null;
}
