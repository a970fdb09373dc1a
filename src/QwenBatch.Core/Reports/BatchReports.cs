using QwenBatch.Batches;
using QwenBatch.Outputs;
using QwenBatch.Storage;

namespace QwenBatch.Reports;

/// <summary>The report files a batch folder can hold.</summary>
[Flags]
public enum ReportFormats
{
    None = 0,

    /// <summary>report.csv and errors.csv.</summary>
    Csv = 1,
    Json = 2,
    Html = 4,
    All = Csv | Json | Html,
}

/// <summary>Builds a batch's report from the store and writes the asked-for files into its folder.</summary>
public static class BatchReports
{
    /// <summary>Writes the reports and returns their paths. When the batch is settled, download leftovers are swept too.</summary>
    public static async Task<IReadOnlyList<string>> WriteAsync(IStore store, BatchRecord batch, ReportFormats formats, TimeProvider time, CancellationToken ct)
    {
        var report = await ReportBuilder.BuildAsync(store, batch, time, ct);
        var directory = batch.StorageDir;
        var written = new List<string>();
        if (formats.HasFlag(ReportFormats.Csv))
        {
            await CsvReportWriter.WriteAsync(directory, report, ct);
            await ErrorsCsvWriter.WriteAsync(directory, report, ct);
            written.Add(Path.Combine(directory, CsvReportWriter.FileName));
            written.Add(Path.Combine(directory, ErrorsCsvWriter.FileName));
        }

        if (formats.HasFlag(ReportFormats.Json))
        {
            await JsonReportWriter.WriteAsync(directory, report, ct);
            written.Add(Path.Combine(directory, JsonReportWriter.FileName));
        }

        if (formats.HasFlag(ReportFormats.Html))
        {
            await HtmlReportWriter.WriteAsync(directory, report, ct);
            written.Add(Path.Combine(directory, HtmlReportWriter.FileName));
        }

        if ((await store.GetProgressAsync(batch.Id, ct)).IsSettled)
        {
            SweepLeftovers(directory);
        }

        return written;
    }

    /// <summary>
    /// With every job settled no download of this batch is in flight, so any temporary download file left is a crash's
    /// leftover, wherever it is in the folder.
    /// </summary>
    private static void SweepLeftovers(string directory)
    {
        if (!Directory.Exists(directory))
        {
            return;
        }

        foreach (var stale in Directory.EnumerateFiles(directory, $"{OutputDownloader.TempPrefix}*.part", SearchOption.AllDirectories))
        {
            File.Delete(stale);
        }

        var parts = OutputDownloader.PartsDirectory(directory);
        if (Directory.Exists(parts) && !Directory.EnumerateFileSystemEntries(parts).Any())
        {
            Directory.Delete(parts);
        }
    }
}
