using System.Text.Json;

namespace QwenBatch.Manifests;

/// <summary>
/// Reads a JSON manifest: an array of job objects, or <c>{"name", "defaults", "jobs"}</c>, streamed — one job object is
/// held at a time, so memory stays bounded whatever the file's size. Each job's line is the line where its object
/// starts. The object form is read twice: first for <c>name</c> and <c>defaults</c> (which may come after the jobs),
/// skipping over the jobs, then for the jobs themselves.
/// </summary>
internal static class JsonManifestReader
{
    /// <summary>A single job object larger than this is refused (a job is a few hundred bytes; this is a broken file).</summary>
    public const int MaxJobBytes = 16 * 1024 * 1024;

    public static IEnumerable<ManifestRow> Rows(string fullPath, ManifestDiagnostics diagnostics, Action<string> setName, int bufferSize = JsonTokenStream.DefaultBufferSize)
    {
        if (Utf8Check.FirstInvalidLine(fullPath) is { } badLine)
        {
            diagnostics.Error(badLine, null, "the file is not UTF-8 text here; save the manifest as UTF-8");
            yield break;
        }

        using var first = new JsonTokenStream(fullPath, bufferSize, MaxJobBytes);
        var top = first.Next(diagnostics);
        if (top is null)
        {
            if (diagnostics.ErrorCount == 0)
            {
                diagnostics.Error(1, null, "the manifest is empty; expected a JSON array of jobs or {\"jobs\": [ … ]}");
            }

            yield break;
        }

        if (top.Value.Type == JsonTokenType.StartArray)
        {
            var count = 0;
            while (first.NextElement(diagnostics) is { } job)
            {
                count++;
                yield return JsonRowMapper.ToRow(job.Element, job.Line, null);
            }

            if (count == 0 && diagnostics.ErrorCount == 0)
            {
                diagnostics.Error(1, "jobs", "the manifest has no jobs; expected an array of job objects, or {\"jobs\": [ … ]}");
            }

            first.ExpectEnd(diagnostics);
            yield break;
        }

        if (top.Value.Type != JsonTokenType.StartObject)
        {
            diagnostics.Error(1, null, "the manifest is not a JSON array or object; expected [ {job}, … ] or {\"jobs\": [ … ]}");
            yield break;
        }

        var outline = Outline(first, diagnostics);
        if (outline.Name is { } name)
        {
            setName(name);
        }

        ManifestRow? defaults = null;
        if (outline.Defaults is { } d)
        {
            defaults = JsonRowMapper.ToRow(d.Element, d.Line, null);
            foreach (var (field, message) in defaults.ShapeErrors)
            {
                diagnostics.Error(d.Line, field is null ? "defaults" : $"defaults.{field}", message);
            }

            // Reported once above, not again on every job.
            defaults.ShapeErrors.Clear();
        }

        if (outline.JobCount == 0 && diagnostics.ErrorCount == 0)
        {
            diagnostics.Error(1, "jobs", outline.SawJobs
                ? "the manifest has no jobs; expected an array of job objects, or {\"jobs\": [ … ]}"
                : "the manifest object has no \"jobs\" array; expected {\"name\": …, \"defaults\": {…}, \"jobs\": [ … ]}");
        }

        if (outline.JobCount == 0)
        {
            yield break;
        }

        // Second pass: the jobs, now that the defaults are known. Problems of the file were reported by the first pass; this
        // one yields the jobs before the first of them and stays quiet.
        var quiet = new ManifestDiagnostics("", 1);
        using var second = new JsonTokenStream(fullPath, bufferSize, MaxJobBytes);
        second.Next(quiet);
        while (second.Next(quiet) is { Type: JsonTokenType.PropertyName } property)
        {
            if (property.Text!.Equals("jobs", StringComparison.OrdinalIgnoreCase) && second.Peek(quiet) == JsonTokenType.StartArray)
            {
                second.Next(quiet);
                var left = outline.JobCount;
                while (left-- > 0 && second.NextElement(quiet) is { } job)
                {
                    yield return JsonRowMapper.ToRow(job.Element, job.Line, defaults);
                }

                yield break;
            }

            second.SkipValue(quiet);
        }
    }

    private sealed record Shape(string? Name, (JsonElement Element, int Line)? Defaults, bool SawJobs, int JobCount);

    /// <summary>The first pass over <c>{"name", "defaults", "jobs"}</c>: the name, the defaults, and how many jobs there are.</summary>
    private static Shape Outline(JsonTokenStream reader, ManifestDiagnostics diagnostics)
    {
        string? name = null;
        (JsonElement, int)? defaults = null;
        var sawJobs = false;
        var jobs = 0;
        while (reader.Next(diagnostics) is { Type: JsonTokenType.PropertyName } property)
        {
            var key = property.Text!;
            var value = reader.Peek(diagnostics);
            if (value is null)
            {
                break;
            }

            switch (key.ToLowerInvariant())
            {
                case "name" when value.Value == JsonTokenType.String:
                    name = reader.Next(diagnostics)?.Text;
                    break;
                case "defaults" when value.Value == JsonTokenType.StartObject:
                    if (reader.NextElement(diagnostics) is { } element)
                    {
                        defaults = (element.Element, property.Line);
                    }

                    break;
                case "jobs" when value.Value == JsonTokenType.StartArray && !sawJobs:
                    sawJobs = true;
                    reader.Next(diagnostics);
                    while (reader.SkipElement(diagnostics))
                    {
                        jobs++;
                    }

                    break;
                case "name" or "defaults" or "jobs":
                    diagnostics.Error(property.Line, key, key == "name" ? "expected a string" : key == "defaults" ? "expected an object of job fields" : sawJobs ? "appears twice; expected one array of job objects" : "expected an array of job objects");
                    reader.SkipValue(diagnostics);
                    break;
                default:
                    diagnostics.Error(property.Line, key, "is not a manifest property; expected \"name\", \"defaults\" and \"jobs\"");
                    reader.SkipValue(diagnostics);
                    break;
            }
        }

        reader.ExpectEnd(diagnostics);
        return new Shape(name, defaults, sawJobs, jobs);
    }
}
