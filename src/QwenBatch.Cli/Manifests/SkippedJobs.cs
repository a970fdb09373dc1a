using CsvHelper;
using QwenBatch.Manifests;

namespace QwenBatch.Cli.Manifests;

/// <summary>
/// Writes <c>skipped.csv</c> in the batch folder: the jobs <c>--skip-invalid</c> left out, with their line and errors, so
/// the batch's report (errors.csv) can list them.
/// </summary>
internal static class SkippedJobs
{
    public const string FileName = "skipped.csv";

    public static async Task<string> WriteAsync(string directory, IReadOnlyList<SkippedJob> skipped, CancellationToken ct)
    {
        Directory.CreateDirectory(directory);
        var path = Path.Combine(directory, FileName);
        var temp = path + ".part";
        await using (var csv = CsvWriter.ToFile(temp, new CsvWriterOptions { Injection = CsvInjection.Escape, NewLine = "\n" }, FileOptions.None))
        {
            foreach (var column in new[] { "line", "id", "field", "error", "row" })
            {
                csv.WriteField(column);
            }

            await csv.EndRecordAsync(ct);
            foreach (var job in skipped)
            {
                foreach (var error in job.Errors.DefaultIfEmpty(new ManifestError("", job.Line, null, "invalid")))
                {
                    csv.WriteField(job.Line.ToString(System.Globalization.CultureInfo.InvariantCulture));
                    csv.WriteField(job.Key);
                    csv.WriteField(error.Field ?? "");
                    csv.WriteField(error.Message);

                    // The row as read (JSON), so errors.csv can list the job in a shape that can be fed back.
                    csv.WriteField(System.Text.Json.JsonSerializer.Serialize(job.Cells));
                    await csv.EndRecordAsync(ct);
                }
            }
        }

        File.Move(temp, path, overwrite: true);
        return path;
    }
}
