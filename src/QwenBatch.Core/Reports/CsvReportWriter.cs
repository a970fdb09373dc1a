using System.Globalization;
using CsvHelper;

namespace QwenBatch.Reports;

/// <summary>
/// Writes <c>report.csv</c>: one row per job. cost_usd is what the provider charges for the job, so the column sums to the
/// provider's bill; cells from the manifest are neutralized against spreadsheet formulas.
/// </summary>
public static class CsvReportWriter
{
    public const string FileName = "report.csv";

    private static readonly string[] Columns =
        ["id", "status", "provider", "request_id", "attempts", "images", "output_files", "cost_usd", "latency_s", "queue_wait_s", "error", "job", "replaces_job", "change"];

    internal static CsvWriterOptions Options => new()
    {
        // A cell like =cmd|' /C calc'!A0 from a manifest must not become a formula in a spreadsheet.
        Injection = CsvInjection.Escape,
        NewLine = "\n",
    };

    public static Task WriteAsync(string directory, BatchReport report, CancellationToken ct) =>
        AtomicFile.WriteAsync(directory, FileName, async temp =>
        {
            await using var csv = CsvWriter.ToFile(temp, Options, FileOptions.None);
            foreach (var column in Columns.Concat(report.VariableColumns))
            {
                csv.WriteField(column);
            }

            await csv.EndRecordAsync(ct);
            foreach (var row in report.Rows)
            {
                ct.ThrowIfCancellationRequested();
                csv.WriteField(row.Id);
                csv.WriteField(row.Status);
                csv.WriteField(row.Provider);
                csv.WriteField(row.RequestId ?? "");
                csv.WriteField(Number(row.Attempts));
                csv.WriteField(Number(row.Images));
                csv.WriteField(string.Join('|', row.Files));
                csv.WriteField(Money(row.CostUsd));
                csv.WriteField(Seconds(row.LatencyS));
                csv.WriteField(Seconds(row.QueueWaitS));
                csv.WriteField(row.Error ?? "");
                csv.WriteField(Number(row.Job));
                csv.WriteField(row.Replaces is { } replaces ? Number(replaces) : "");
                csv.WriteField(row.Change ?? "");
                foreach (var variable in report.VariableColumns)
                {
                    csv.WriteField(row.Variables.TryGetValue(variable, out var value) ? value : "");
                }

                await csv.EndRecordAsync(ct);
            }
        });

    internal static string Number(long value) => value.ToString(CultureInfo.InvariantCulture);

    internal static string Money(decimal value) => value.ToString("0.######", CultureInfo.InvariantCulture);

    private static string Seconds(double? value) => value?.ToString("0.###", CultureInfo.InvariantCulture) ?? "";
}
