using System.Text;
using System.Text.Json;

namespace QwenBatch.Manifests;

/// <summary>Reads a JSONL manifest: one job object per line, streamed; line N of the file is line N of every message.</summary>
internal static class JsonLinesManifestReader
{
    /// <summary>A line longer than this is refused (a job is a few hundred bytes; a huge line is a broken or hostile file).</summary>
    private const int MaxLineChars = 1024 * 1024;

    public static IEnumerable<ManifestRow> Rows(string fullPath, ManifestDiagnostics diagnostics)
    {
        using var reader = new StreamReader(fullPath, new UTF8Encoding(false, throwOnInvalidBytes: false), detectEncodingFromByteOrderMarks: true);
        var number = 0;
        while (reader.ReadLine() is { } line)
        {
            number++;
            if (string.IsNullOrWhiteSpace(line))
            {
                continue;
            }

            if (Row(line, number, diagnostics) is { } row)
            {
                yield return row;
            }
        }
    }

    private static ManifestRow? Row(string line, int number, ManifestDiagnostics diagnostics)
    {
        if (line.Length > MaxLineChars)
        {
            diagnostics.Error(number, null, $"the line is {line.Length} characters; expected one job object of at most {MaxLineChars} characters");
            return null;
        }

        if (line.Contains('\uFFFD', StringComparison.Ordinal))
        {
            diagnostics.Error(number, null, "the line is not UTF-8 text; save the manifest as UTF-8");
            return null;
        }

        try
        {
            using var document = JsonDocument.Parse(line, JsonRowMapper.DocumentOptions);
            return JsonRowMapper.ToRow(document.RootElement, number, null);
        }
        catch (JsonException ex)
        {
            diagnostics.Error(number, null, $"the line is not valid JSON: {JsonRowMapper.Describe(ex)}; expected one job object per line");
            return null;
        }
    }
}
