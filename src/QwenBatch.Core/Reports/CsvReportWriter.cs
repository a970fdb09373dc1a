using System.Globalization;
using CsvHelper;
using QwenBatch.Jobs;

namespace QwenBatch.Reports;

/// <summary>Writes <c>report.csv</c>: one row per job, written to a temporary file and renamed when whole.</summary>
public static class CsvReportWriter
{
    public const string FileName = "report.csv";

    private static readonly string[] Columns = ["id", "status", "provider", "request_id", "images", "output_files", "cost_usd", "error"];

    public static async Task WriteAsync(string directory, IReadOnlyList<JobRecord> jobs, CancellationToken ct)
    {
        Directory.CreateDirectory(directory);
        var variables = jobs.SelectMany(j => j.Spec.Variables.Keys).Distinct(StringComparer.Ordinal).Order(StringComparer.Ordinal).ToList();
        var temp = Path.Combine(directory, $".{FileName}.{Guid.NewGuid():N}.part");
        var options = new CsvWriterOptions
        {
            // A cell like =cmd|' /C calc'!A0 from a manifest must not become a formula in a spreadsheet.
            Injection = CsvInjection.Escape,
            NewLine = "\n",
        };
        try
        {
            await using (var csv = CsvWriter.ToFile(temp, options, FileOptions.None))
            {
                foreach (var column in Columns.Concat(variables))
                {
                    csv.WriteField(column);
                }

                await csv.EndRecordAsync(ct);
                foreach (var job in jobs)
                {
                    ct.ThrowIfCancellationRequested();
                    csv.WriteField(job.Key);
                    csv.WriteField(job.State.ToDbName());
                    csv.WriteField(job.Provider);
                    csv.WriteField(job.RequestId ?? "");
                    csv.WriteField(job.Files.Count.ToString(CultureInfo.InvariantCulture));
                    csv.WriteField(string.Join('|', job.Files));
                    csv.WriteField(job.CostUsd.ToString("0.######", CultureInfo.InvariantCulture));
                    csv.WriteField(job.State == JobState.Succeeded ? "" : job.Error ?? "");
                    foreach (var variable in variables)
                    {
                        csv.WriteField(job.Spec.Variables.TryGetValue(variable, out var value) ? value : "");
                    }

                    await csv.EndRecordAsync(ct);
                }
            }

            File.Move(temp, Path.Combine(directory, FileName), overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
            {
                File.Delete(temp);
            }
        }
    }
}
