using QwenBatch.Batches;
using QwenBatch.Edits;

namespace QwenBatch.Storage;

/// <summary>Batches and their import: the manifest's rows become edits in one transaction.</summary>
public interface IBatchStore
{
    /// <summary>
    /// Creates the batch with its edits in one transaction, or resumes the batch of that name. Each manifest id (key) has
    /// one current edit: on a resume an edit whose content is unchanged is skipped, and a changed one becomes the id's
    /// current edit (<see cref="EditRecord.Revision"/> + 1, <see cref="EditRecord.Replaces"/> the old one), superseding the
    /// old edit, which is cancelled if it had not been handed to Hangfire and otherwise finishes with its history. Content
    /// an older edit of the id already has makes that edit current again. An import naming one id twice throws
    /// <see cref="DuplicateJobKeyException"/>. The edits are streamed into the transaction, so a 100k-row manifest is
    /// never held in memory; if the enumeration throws, nothing is imported. A resume with a budget replaces the old one
    /// and returns the batch's held edits to pending.
    /// </summary>
    Task<BatchImport> ImportBatchAsync(NewBatch batch, IAsyncEnumerable<NewEdit> edits, CancellationToken ct);

    /// <summary>
    /// Creates a batch with no edits that failed before any edit existed (its manifest was missing or invalid when a
    /// schedule or a continuation fired it), carrying <paramref name="failure"/> (one line per error). When a batch of that
    /// name exists, returns it unchanged, so a second attempt at the same occurrence never makes a second batch.
    /// </summary>
    Task<BatchRecord> CreateFailedBatchAsync(NewBatch batch, string failure, CancellationToken ct);

    Task<BatchRecord?> FindBatchAsync(string name, CancellationToken ct);

    Task<BatchRecord?> GetBatchAsync(long batchId, CancellationToken ct);

    /// <summary>Every batch, newest first.</summary>
    Task<IReadOnlyList<BatchRecord>> GetBatchesAsync(CancellationToken ct);

    /// <summary>The batch's edit counts by state (from the maintained counters, never by counting edits) and spend.</summary>
    Task<BatchProgress> GetProgressAsync(long batchId, CancellationToken ct);

    /// <summary>When the batch's first edit was submitted (its pace is measured from there); null before any was.</summary>
    Task<DateTimeOffset?> GetFirstSubmitAsync(long batchId, CancellationToken ct);
}

/// <summary>Conveniences over <see cref="IBatchStore"/>.</summary>
public static class BatchStoreExtensions
{
    /// <summary>Imports edits already in memory (tests, small batches).</summary>
    public static Task<BatchImport> ImportBatchAsync(this IBatchStore store, NewBatch batch, IEnumerable<NewEdit> edits, CancellationToken ct) =>
        store.ImportBatchAsync(batch, Stream(edits), ct);

    private static async IAsyncEnumerable<NewEdit> Stream(IEnumerable<NewEdit> edits)
    {
        foreach (var edit in edits)
        {
            yield return edit;
        }

        await Task.CompletedTask;
    }
}
