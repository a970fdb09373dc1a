using QwenBatch.Batches;
using QwenBatch.Edits;

namespace QwenBatch.Dashboard.Api;

/// <summary>The shape of <c>status --json</c>: <c>{"batch", "name", "done", "counts": {state: n}, "spent_usd"}</c>.</summary>
internal static class BatchStatus
{
    public static Dictionary<string, object?> Of(BatchRecord batch, BatchProgress progress) => new()
    {
        ["batch"] = batch.Id,
        ["name"] = batch.Name,
        ["provider"] = batch.Provider,
        ["done"] = progress.IsSettled,
        ["counts"] = Enum.GetValues<EditState>().ToDictionary(s => s.ToDbName(), progress.Count),
        ["total"] = progress.Total,
        ["spent_usd"] = progress.SpentUsd,
        ["budget_usd"] = batch.BudgetUsd,
        ["cancel_requested"] = batch.CancelRequestedAt is not null,
    };
}
