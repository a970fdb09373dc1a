using System.Text.Json;

namespace QwenBatch.Reports;

/// <summary>Writes <c>report.json</c>: the batch (with <c>failure</c> when it failed before it had jobs), its totals, every job row and the skipped rows, in snake_case.</summary>
public static class JsonReportWriter
{
    public const string FileName = "report.json";

    internal static readonly JsonSerializerOptions Options = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        WriteIndented = true,
    };

    public static Task WriteAsync(string directory, BatchReport report, CancellationToken ct) =>
        AtomicFile.WriteAsync(directory, FileName, async temp =>
        {
            var batch = report.Batch;
            var document = new
            {
                Batch = new { batch.Name, batch.Provider, batch.Source, batch.StorageDir, batch.CreatedAt, batch.BudgetUsd, batch.Failure },
                report.Totals,
                Jobs = report.Rows,
                report.Skipped,
            };
            await using var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 81920, useAsync: true);
            await JsonSerializer.SerializeAsync(file, document, Options, ct);
        });
}
