using System.Globalization;
using CsvHelper;

namespace QwenBatch.Reports;

/// <summary>
/// Writes <c>errors.csv</c>: every job that did not succeed (failed, cancelled, held, unfinished, and rows
/// <c>--skip-invalid</c> left out), in manifest columns plus <c>error</c>, so the file can be fed back as a manifest. A batch
/// that failed before it had jobs (a scheduled manifest missing or invalid) lists its errors, one row each, in <c>error</c>.
/// </summary>
public static class ErrorsCsvWriter
{
    public const string FileName = "errors.csv";

    private static readonly string[] SingleImages = ["image", "image1", "image2", "image3"];

    private static readonly string[] Columns =
        ["id", "prompt", "images", "n", "negative_prompt", "size", "seed", "prompt_extend", "watermark", "output_format", "provider", "output"];

    public static Task WriteAsync(string directory, BatchReport report, CancellationToken ct) =>
        AtomicFile.WriteAsync(directory, FileName, async temp =>
        {
            var known = new HashSet<string>(Columns, StringComparer.OrdinalIgnoreCase) { "error", "image", "image1", "image2", "image3", "matrix" };
            var extra = report.VariableColumns.Where(v => !known.Contains(v)).ToList();
            foreach (var name in report.Skipped.SelectMany(s => s.Cells.Keys))
            {
                if (!known.Contains(name) && !extra.Contains(name, StringComparer.OrdinalIgnoreCase))
                {
                    extra.Add(name);
                }
            }

            await using var csv = CsvWriter.ToFile(temp, CsvReportWriter.Options, FileOptions.None);
            foreach (var column in Columns.Concat(extra).Append("error"))
            {
                csv.WriteField(column);
            }

            await csv.EndRecordAsync(ct);
            foreach (var row in report.Rows.Where(r => r.Status != "succeeded"))
            {
                ct.ThrowIfCancellationRequested();
                var spec = row.Spec;
                csv.WriteField(row.Id);
                csv.WriteField(spec.Prompt);
                csv.WriteField(string.Join('|', spec.Images));
                csv.WriteField(CsvReportWriter.Number(spec.N));
                csv.WriteField(spec.NegativePrompt ?? "");
                csv.WriteField(spec.Size ?? "");
                csv.WriteField(spec.Seed?.ToString(CultureInfo.InvariantCulture) ?? "");
                csv.WriteField(Bool(spec.PromptExtend));
                csv.WriteField(Bool(spec.Watermark));
                csv.WriteField(spec.OutputFormat ?? "");
                csv.WriteField(row.Provider);
                csv.WriteField(spec.Output ?? "");
                foreach (var name in extra)
                {
                    csv.WriteField(row.Variables.TryGetValue(name, out var value) ? value : "");
                }

                csv.WriteField(row.Error ?? $"did not finish ({row.Status})");
                await csv.EndRecordAsync(ct);
            }

            foreach (var line in (report.Batch.Failure ?? "").Split('\n', StringSplitOptions.RemoveEmptyEntries))
            {
                foreach (var _ in Columns.Concat(extra))
                {
                    csv.WriteField("");
                }

                csv.WriteField(line);
                await csv.EndRecordAsync(ct);
            }

            foreach (var skipped in report.Skipped)
            {
                ct.ThrowIfCancellationRequested();
                csv.WriteField(skipped.Id);
                foreach (var column in Columns.Skip(1))
                {
                    csv.WriteField(Cell(skipped, column));
                }

                foreach (var name in extra)
                {
                    csv.WriteField(Cell(skipped, name));
                }

                csv.WriteField($"line {skipped.Line.ToString(CultureInfo.InvariantCulture)}: {skipped.Error}");
                await csv.EndRecordAsync(ct);
            }
        });

    private static string Cell(SkippedRow row, string column)
    {
        if (row.Cells.TryGetValue(column, out var value))
        {
            return value;
        }

        // A row with image/image1… columns is fed back through the one images column.
        return column == "images"
            ? string.Join('|', SingleImages.Select(c => row.Cells.TryGetValue(c, out var v) ? v : "").Where(v => v.Length > 0))
            : "";
    }

    private static string Bool(bool? value) => value switch { true => "true", false => "false", null => "" };
}
