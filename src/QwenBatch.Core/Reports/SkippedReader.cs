using System.Globalization;
using System.Text.Json;
using CsvHelper;

namespace QwenBatch.Reports;

/// <summary>
/// Reads the batch folder's skipped.csv (written by <c>run --skip-invalid</c>: one line per error, the row as JSON), one
/// <see cref="SkippedRow"/> per refused job with its errors joined.
/// </summary>
internal static class SkippedReader
{
    public const string FileName = "skipped.csv";

    public static async Task<IReadOnlyList<SkippedRow>> ReadAsync(string directory, CancellationToken ct)
    {
        var path = Path.Combine(directory, FileName);
        if (!File.Exists(path))
        {
            return [];
        }

        var rows = new List<SkippedRow>();
        var index = new Dictionary<(int, string), int>();
        using var csv = CsvReader.FromFile(path, new CsvReaderOptions { MissingField = CsvMissingFieldHandling.ReturnEmpty, FieldCountMismatch = CsvFieldCountHandling.Allow }, FileOptions.SequentialScan);
        csv.ReadHeader();
        var columns = (csv.Headers ?? []).Select((name, i) => (name, i)).ToDictionary(c => c.name, c => c.i, StringComparer.Ordinal);
        string Get(string name) => columns.TryGetValue(name, out var i) && i < csv.FieldCount ? csv.GetString(i) : "";
        while (csv.Read())
        {
            ct.ThrowIfCancellationRequested();
            var line = int.TryParse(Get("line"), NumberStyles.None, CultureInfo.InvariantCulture, out var l) ? l : 0;
            var id = Get("id");
            var field = Get("field");
            var message = Get("error");
            var error = field.Length == 0 ? message : $"{field}: {message}";
            if (index.TryGetValue((line, id), out var at))
            {
                rows[at] = rows[at] with { Error = rows[at].Error + "; " + error };
                continue;
            }

            var json = Get("row");
            var cells = json.Length > 0 ? JsonSerializer.Deserialize<Dictionary<string, string>>(json) ?? [] : [];
            index[(line, id)] = rows.Count;
            rows.Add(new SkippedRow(line, id, error, new Dictionary<string, string>(cells, StringComparer.OrdinalIgnoreCase)));
        }

        await Task.CompletedTask;
        return rows;
    }
}
