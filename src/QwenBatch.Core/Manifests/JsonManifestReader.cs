using System.Text.Json;

namespace QwenBatch.Manifests;

/// <summary>
/// Reads a JSON manifest: an array of job objects, or <c>{"name", "defaults", "jobs"}</c>. Each job's line is the line
/// where its object starts, counted from the reader's byte offsets. The whole file is read (JSON has no streaming
/// boundaries that help); very large manifests belong in CSV or JSONL.
/// </summary>
internal static class JsonManifestReader
{
    /// <summary>Larger JSON manifests are refused with a pointer to the streaming formats.</summary>
    public const long MaxBytes = 256L * 1024 * 1024;

    public static IEnumerable<ManifestRow> Rows(string fullPath, ManifestDiagnostics diagnostics, Action<string> setName)
    {
        var bytes = File.ReadAllBytes(fullPath);
        if (InvalidUtf8At(bytes) is { } bad)
        {
            diagnostics.Error(1 + bytes.AsSpan(0, bad).Count((byte)'\n'), null, "the file is not UTF-8 text here; save the manifest as UTF-8");
            yield break;
        }

        var parsed = Parse(bytes, diagnostics);
        if (parsed.Name is { } name)
        {
            setName(name);
        }

        ManifestRow? defaults = null;
        if (parsed.Defaults is { } d)
        {
            defaults = JsonRowMapper.ToRow(d.Element, d.Line, null);
            foreach (var (field, message) in defaults.ShapeErrors)
            {
                diagnostics.Error(d.Line, field is null ? "defaults" : $"defaults.{field}", message);
            }

            // Reported once above, not again on every job.
            defaults.ShapeErrors.Clear();
        }

        if (parsed.Jobs.Count == 0 && diagnostics.ErrorCount == 0)
        {
            diagnostics.Error(1, "jobs", "the manifest has no jobs; expected an array of job objects, or {\"jobs\": [ … ]}");
        }

        foreach (var (element, line) in parsed.Jobs)
        {
            yield return JsonRowMapper.ToRow(element, line, defaults);
        }
    }

    /// <summary>The offset of the first byte that is not UTF-8, or null; System.Text.Json would throw on it later.</summary>
    private static int? InvalidUtf8At(byte[] bytes)
    {
        if (System.Text.Unicode.Utf8.IsValid(bytes))
        {
            return null;
        }

        var offset = 0;
        while (offset < bytes.Length)
        {
            if (System.Text.Rune.DecodeFromUtf8(bytes.AsSpan(offset), out _, out var consumed) != System.Buffers.OperationStatus.Done)
            {
                return offset;
            }

            offset += consumed;
        }

        return offset;
    }

    private sealed record Parsed(string? Name, (JsonElement Element, int Line)? Defaults, List<(JsonElement Element, int Line)> Jobs);

    private static Parsed Parse(byte[] bytes, ManifestDiagnostics diagnostics)
    {
        var lines = new LineCounter(bytes);
        var jobs = new List<(JsonElement, int)>();
        string? name = null;
        (JsonElement, int)? defaults = null;
        var start = bytes.AsSpan().StartsWith("\uFEFF"u8) ? 3 : 0;
        var reader = new Utf8JsonReader(bytes.AsSpan(start), JsonRowMapper.ReaderOptions);
        try
        {
            if (!reader.Read())
            {
                diagnostics.Error(1, null, "the manifest is empty; expected a JSON array of jobs or {\"jobs\": [ … ]}");
                return new Parsed(null, null, jobs);
            }

            if (reader.TokenType == JsonTokenType.StartArray)
            {
                ReadJobs(ref reader, lines, start, jobs);
            }
            else if (reader.TokenType == JsonTokenType.StartObject)
            {
                var sawJobs = false;
                while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
                {
                    var property = reader.GetString()!;
                    var line = lines.LineAt(start + (int)reader.TokenStartIndex);
                    reader.Read();
                    switch (property.ToLowerInvariant())
                    {
                        case "name" when reader.TokenType == JsonTokenType.String:
                            name = reader.GetString();
                            break;
                        case "defaults" when reader.TokenType == JsonTokenType.StartObject:
                            defaults = (JsonElement.ParseValue(ref reader), line);
                            break;
                        case "jobs" when reader.TokenType == JsonTokenType.StartArray:
                            sawJobs = true;
                            ReadJobs(ref reader, lines, start, jobs);
                            break;
                        case "name" or "defaults" or "jobs":
                            diagnostics.Error(line, property, property == "name" ? "expected a string" : property == "defaults" ? "expected an object of job fields" : "expected an array of job objects");
                            reader.Skip();
                            break;
                        default:
                            diagnostics.Error(line, property, "is not a manifest property; expected \"name\", \"defaults\" and \"jobs\"");
                            reader.Skip();
                            break;
                    }
                }

                if (!sawJobs && diagnostics.ErrorCount == 0)
                {
                    diagnostics.Error(1, "jobs", "the manifest object has no \"jobs\" array; expected {\"name\": …, \"defaults\": {…}, \"jobs\": [ … ]}");
                }
            }
            else
            {
                diagnostics.Error(1, null, "the manifest is not a JSON array or object; expected [ {job}, … ] or {\"jobs\": [ … ]}");
            }
        }
        catch (JsonException ex)
        {
            diagnostics.Error((int)(ex.LineNumber ?? 0) + 1, null, $"the file is not valid JSON here: {JsonRowMapper.Describe(ex)}");
        }

        return new Parsed(name, defaults, jobs);
    }

    private static void ReadJobs(ref Utf8JsonReader reader, LineCounter lines, int start, List<(JsonElement, int)> jobs)
    {
        while (reader.Read() && reader.TokenType != JsonTokenType.EndArray)
        {
            var line = lines.LineAt(start + (int)reader.TokenStartIndex);
            jobs.Add((JsonElement.ParseValue(ref reader), line));
        }
    }

    /// <summary>The 1-based line of a byte offset; offsets are asked for in increasing order, so each byte is counted once.</summary>
    private sealed class LineCounter(byte[] bytes)
    {
        private int _offset;
        private int _line = 1;

        public int LineAt(int offset)
        {
            var end = Math.Min(offset, bytes.Length);
            if (end > _offset)
            {
                _line += bytes.AsSpan(_offset, end - _offset).Count((byte)'\n');
                _offset = end;
            }

            return _line;
        }
    }
}
