using QwenBatch.Batches;

namespace QwenBatch.Reports;

/// <summary>Everything the report files show, built once from the store; every writer reads only this.</summary>
public sealed record BatchReport(BatchRecord Batch, IReadOnlyList<ReportRow> Rows, IReadOnlyList<SkippedRow> Skipped, IReadOnlyList<string> VariableColumns, ReportTotals Totals);

/// <summary>One job as reported.</summary>
/// <param name="Attempts">Submits sent for the job (accepted or uncertain), or the failed attempts when none was accepted.</param>
/// <param name="Images">Output files on record.</param>
/// <param name="CostUsd">What the provider charges for the job (0 for failures it does not bill).</param>
/// <param name="LatencyS">Submitted → finished, in seconds.</param>
/// <param name="QueueWaitS">Submitted → the provider started it, in seconds.</param>
/// <param name="ProviderMayCharge">Cancelled while at a provider with no cancel endpoint: the provider may still bill it.</param>
public sealed record ReportRow(
    string Id,
    string Status,
    string Provider,
    string? RequestId,
    int Attempts,
    int Images,
    IReadOnlyList<string> Files,
    decimal CostUsd,
    double? LatencyS,
    double? QueueWaitS,
    string? Error,
    bool ProviderMayCharge,
    ReportSpec Spec,
    IReadOnlyDictionary<string, string> Variables)
{
    /// <summary>The job's id in the store.</summary>
    public long Job { get; init; }

    /// <summary>The older job of the same manifest id this one replaced, when the row changed since a previous import.</summary>
    public long? Replaces { get; init; }

    /// <summary>Says that the row changed since the previous import and which job it replaces; null otherwise.</summary>
    public string? Change { get; init; }
}

/// <summary>The manifest fields of a job, as errors.csv and report.html show them.</summary>
public sealed record ReportSpec(
    string Prompt,
    IReadOnlyList<string> Images,
    int N,
    string? NegativePrompt = null,
    string? Size = null,
    long? Seed = null,
    bool? PromptExtend = null,
    bool? Watermark = null,
    string? OutputFormat = null,
    string? Output = null);

/// <summary>A manifest row that <c>--skip-invalid</c> left out (from the batch folder's skipped.csv).</summary>
public sealed record SkippedRow(int Line, string Id, string Error, IReadOnlyDictionary<string, string> Cells);

/// <summary>The batch's totals.</summary>
/// <param name="PossiblyDuplicatedSubmits">Submits whose outcome a crash or timeout left unknown: the provider may have run them twice.</param>
/// <param name="WallTimeS">First submit → last finish, in seconds.</param>
/// <param name="ImagesPerMinute">Output images per minute of wall time.</param>
public sealed record ReportTotals(
    int Jobs,
    IReadOnlyDictionary<string, int> JobsByStatus,
    IReadOnlyDictionary<string, int> ImagesByStatus,
    decimal CostUsd,
    IReadOnlyDictionary<string, decimal> CostByProvider,
    double? LatencyP50S,
    double? LatencyP95S,
    double? WallTimeS,
    double? ImagesPerMinute,
    int PossiblyDuplicatedSubmits,
    int Skipped,
    IReadOnlyList<string> ProviderMayChargeCancelled,
    DateTimeOffset GeneratedAt);
