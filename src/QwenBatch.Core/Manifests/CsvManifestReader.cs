using System.Text;
using CsvHelper;

namespace QwenBatch.Manifests;

/// <summary>
/// Reads the rows of a CSV manifest (header row, case-insensitive names) one at a time, so a 100k-row file is streamed.
/// Line numbers are the file's own: the header is line 1, and a quoted newline moves later rows down.
/// </summary>
internal static class CsvManifestReader
{
    /// <summary>A record larger than this is refused rather than buffered: an unclosed quote must not swallow the file.</summary>
    private const int MaxRecordBytes = 1024 * 1024;

    public static IEnumerable<ManifestRow> Rows(string fullPath, ManifestOptions options, ManifestDiagnostics diagnostics)
    {
        var csvOptions = new CsvReaderOptions
        {
            TrackLineNumbers = true,
            SkipEmptyLines = true,
            MissingField = CsvMissingFieldHandling.ReturnEmpty,
            FieldCountMismatch = CsvFieldCountHandling.Allow,
            MalformedData = CsvMalformedDataHandling.Throw,
            MaxRecordSize = MaxRecordBytes,
            PoolStrings = true,
        };
        using var csv = CsvReader.FromFile(fullPath, csvOptions, FileOptions.SequentialScan);
        var columns = ReadHeader(csv, options, diagnostics);
        if (columns is null)
        {
            yield break;
        }

        var row = new ManifestRow(0, columns.Length);
        while (TryRead(csv, diagnostics))
        {
            row.Reuse((int)csv.LineNumber);
            var empty = true;
            for (var i = 0; i < columns.Length; i++)
            {
                if (columns[i].Length == 0)
                {
                    continue;
                }

                var value = i < csv.FieldCount ? csv.GetString(i).Trim() : "";
                empty &= value.Length == 0;
                if (value.AsSpan().IndexOfAny('\uFFFD', '\0') >= 0)
                {
                    row.ShapeErrors.Add((columns[i], "is not UTF-8 text; save the manifest as UTF-8 (CSV UTF-8 in spreadsheet programs)"));
                }

                row.Cells[columns[i]] = value;
            }

            if (!empty)
            {
                yield return row;
            }
        }
    }

    private static string[]? ReadHeader(CsvReader csv, ManifestOptions options, ManifestDiagnostics diagnostics)
    {
        try
        {
            csv.ReadHeader();
        }
        catch (Exception ex) when (ex is CsvFormatException or IOException or DecoderFallbackException or ArgumentException)
        {
            diagnostics.Error(1, null, $"the header row cannot be read: {ex.Message}");
            return null;
        }

        if (csv.Headers is not { Count: > 0 } header || header.All(string.IsNullOrWhiteSpace))
        {
            diagnostics.Error(1, null, "the manifest is empty; expected a header row such as 'id,prompt,images'");
            return null;
        }

        var columns = header.Select(h => h.Trim()).ToArray();
        var names = new HashSet<string>(columns, StringComparer.OrdinalIgnoreCase);
        var before = diagnostics.ErrorCount;
        if (options.PromptTemplate is null && !names.Contains(Column(options, ManifestFields.Prompt)))
        {
            diagnostics.Error(1, ManifestFields.Prompt, options.FieldMap.ContainsKey(ManifestFields.Prompt)
                ? $"the header has no '{Column(options, ManifestFields.Prompt)}' column (mapped by --map)"
                : "the header has no 'prompt' column; add one, or give a template with --prompt");
        }

        if (!names.Contains(Column(options, ManifestFields.Images)) && !ManifestFields.SingleImages.Any(c => names.Contains(Column(options, c))))
        {
            diagnostics.Error(1, ManifestFields.Images, options.FieldMap.ContainsKey(ManifestFields.Images)
                ? $"the header has no '{Column(options, ManifestFields.Images)}' column (mapped by --map)"
                : "the header has no 'images' (or 'image', 'image1') column");
        }

        return diagnostics.ErrorCount > before ? null : columns;
    }

    private static string Column(ManifestOptions options, string field) => options.FieldMap.TryGetValue(field, out var column) ? column : field;

    private static bool TryRead(CsvReader csv, ManifestDiagnostics diagnostics)
    {
        try
        {
            return csv.Read();
        }
        catch (Exception ex) when (ex is CsvFormatException or IOException or DecoderFallbackException or ArgumentException)
        {
            var line = ex is CsvFormatException { LineNumber: > 0 } format ? (int)format.LineNumber : (int)csv.LineNumber;
            diagnostics.Error(line, null, $"the file cannot be read as CSV from here: {ex.Message}");
            return false;
        }
    }
}
