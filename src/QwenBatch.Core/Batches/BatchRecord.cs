using QwenBatch.Edits;

namespace QwenBatch.Batches;

/// <summary>A batch: one manifest run, its outputs in <see cref="StorageDir"/>.</summary>
public sealed record BatchRecord
{
    public required long Id { get; init; }

    /// <summary>Unique name; also the folder name under the storage root.</summary>
    public required string Name { get; init; }

    /// <summary>Where the manifest came from (an absolute path), to tell a resume from a name clash.</summary>
    public required string Source { get; init; }

    public required string Provider { get; init; }
    public required string StorageDir { get; init; }
    public required DateTimeOffset CreatedAt { get; init; }

    /// <summary>Most the batch may spend, in USD; null for no limit.</summary>
    public decimal? BudgetUsd { get; init; }

    /// <summary>Settled cost of the batch's jobs (kept in step with the jobs by every transition).</summary>
    public decimal SpentUsd { get; init; }

    /// <summary>Cost reserved by submitted tasks not yet settled.</summary>
    public decimal ReservedUsd { get; init; }

    public DateTimeOffset? CancelRequestedAt { get; init; }

    /// <summary>
    /// Why the batch failed before it had jobs: the validation errors of a manifest a schedule or a continuation read
    /// (one line each), or its absence. Null for every batch that was imported.
    /// </summary>
    public string? Failure { get; init; }
}

/// <summary>A batch to create, or to resume when one with the same name already exists.</summary>
/// <param name="BudgetUsd">A budget to set; on a resume it replaces the old one and releases held jobs to try again.</param>
public sealed record NewBatch(string Name, string Source, string Provider, string StorageDir, decimal? BudgetUsd = null);

/// <summary>A job to enqueue; <see cref="Key"/> + <see cref="ContentHash"/> make it idempotent within its batch.</summary>
public sealed record NewEdit(string Key, string ContentHash, string Provider, EditSpec Spec);

/// <summary>What an import did: the batch (new or resumed) and how many jobs were added.</summary>
/// <param name="JobsAdded">Jobs that became current: new ids, and changed rows (which are counted in <paramref name="JobsReplaced"/> too).</param>
/// <param name="JobsReplaced">Older jobs superseded because their manifest row changed since the previous import.</param>
public sealed record BatchImport(BatchRecord Batch, bool Resumed, int JobsAdded, int JobsReplaced = 0);

/// <summary>
/// One import named the same manifest id twice. Both stores refuse it (the manifest validator refuses duplicate ids
/// before anything reaches a store), and nothing is imported.
/// </summary>
public sealed class DuplicateJobKeyException : InvalidOperationException
{
    public DuplicateJobKeyException()
        : base("An import named one job id twice; ids must be unique within a batch. Nothing was imported.")
    {
    }

    public DuplicateJobKeyException(string message)
        : base(message)
    {
    }

    public DuplicateJobKeyException(string message, Exception innerException)
        : base(message, innerException)
    {
    }
}

/// <summary>Counts of a batch's jobs by state, and money spent.</summary>
public sealed record BatchProgress(long BatchId, IReadOnlyDictionary<EditState, int> Counts, decimal SpentUsd)
{
    public int Total => Counts.Values.Sum();

    public int Count(EditState state) => Counts.TryGetValue(state, out var n) ? n : 0;

    /// <summary>Edits handed to Hangfire and not finished: queued, being submitted, at the provider or downloading.</summary>
    /// <summary>Edits that will not move without an operator: succeeded, failed, cancelled, held.</summary>
    public int Settled => Counts.Where(c => c.Key.IsSettled()).Sum(c => c.Value);

    public int InFlight => Count(EditState.Queued) + Count(EditState.Submitting) + Count(EditState.AtProvider) + Count(EditState.Downloading);

    /// <summary>True when no job of the batch can move without an operator.</summary>
    public bool IsSettled => Counts.Where(c => !c.Key.IsSettled()).Sum(c => c.Value) == 0;
}
