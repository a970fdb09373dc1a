namespace QwenBatch.Manifests;

/// <summary>The manifest formats, told apart by the file's extension, or by its first bytes when the extension says nothing.</summary>
internal enum ManifestFormat
{
    Csv,
    Json,
    JsonLines,
}

internal static class ManifestFormats
{
    private const int SniffBytes = 4096;

    /// <summary>The format of the file, or an error message when it is not a text manifest at all.</summary>
    public static (ManifestFormat Format, string? Error) Detect(string fullPath)
    {
        Span<byte> head = stackalloc byte[SniffBytes];
        int read;
        using (var stream = File.OpenRead(fullPath))
        {
            read = stream.ReadAtLeast(head, SniffBytes, throwOnEndOfStream: false);
        }

        head = head[..read];
        if (read == 0)
        {
            return (ManifestFormat.Csv, "the manifest is empty; expected a CSV header row, a JSON array of jobs or JSON lines");
        }

        // UTF-16 and UTF-32 text carries NUL bytes too; CsvHelper transcodes those, JSON readers want UTF-8.
        var unicodeBom = head.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE]) || head.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF]);
        if (!unicodeBom && head.Contains((byte)0))
        {
            return (ManifestFormat.Csv, "the file is binary, not a text manifest; expected CSV, JSON or JSONL saved as UTF-8");
        }

        var extension = Path.GetExtension(fullPath).ToLowerInvariant();
        var format = extension switch
        {
            ".json" => ManifestFormat.Json,
            ".jsonl" or ".ndjson" => ManifestFormat.JsonLines,
            ".csv" or ".tsv" or ".txt" => ManifestFormat.Csv,
            _ => Sniff(head),
        };
        if (unicodeBom && format != ManifestFormat.Csv)
        {
            return (format, "the file is UTF-16 text; save the manifest as UTF-8");
        }

        return (format, null);
    }

    private static ManifestFormat Sniff(ReadOnlySpan<byte> head)
    {
        var text = head.StartsWith("\uFEFF"u8) ? head[3..] : head;
        text = text.TrimStart(" \t\r\n"u8);
        if (text.StartsWith("["u8))
        {
            return ManifestFormat.Json;
        }

        if (!text.StartsWith("{"u8))
        {
            return ManifestFormat.Csv;
        }

        // One object per line is JSONL; an object spread over lines, or {"jobs": …}, is JSON.
        var firstLine = text.IndexOf((byte)'\n') is var nl and >= 0 ? text[..nl] : text;
        var trimmed = firstLine.TrimEnd(" \t\r"u8);
        return trimmed.EndsWith("}"u8) && !trimmed.StartsWith("{\"jobs\""u8) ? ManifestFormat.JsonLines : ManifestFormat.Json;
    }
}
