using System.Globalization;
using System.Text;
using CsvHelper;
using QwenBatch.Jobs;
using QwenBatch.Providers;

namespace QwenBatch.Manifests;

/// <summary>
/// Reads a CSV manifest (header row, case-insensitive names). Every problem of the file is collected in one pass with
/// its line; nothing is returned as valid unless the whole file is.
/// </summary>
public static class CsvManifestReader
{
    public static Manifest Read(string path)
    {
        var fullPath = System.IO.Path.GetFullPath(path);
        var file = System.IO.Path.GetFileName(path);
        var errors = new List<ManifestError>();
        var jobs = new List<ManifestJob>();
        if (!File.Exists(fullPath))
        {
            errors.Add(new ManifestError(file, 0, null, $"the manifest file '{path}' does not exist"));
            return new Manifest(fullPath, jobs, errors);
        }

        var baseDir = System.IO.Path.GetDirectoryName(fullPath)!;
        var options = new CsvReaderOptions
        {
            TrackLineNumbers = true,
            SkipEmptyLines = true,
            MissingField = CsvMissingFieldHandling.ReturnEmpty,
            FieldCountMismatch = CsvFieldCountHandling.Allow,
            MalformedData = CsvMalformedDataHandling.Throw,
        };
        using var csv = CsvReader.FromFile(fullPath, options, FileOptions.SequentialScan);
        try
        {
            csv.ReadHeader();
        }
        catch (Exception ex) when (ex is CsvFormatException or IOException or DecoderFallbackException)
        {
            errors.Add(new ManifestError(file, 1, null, $"the header row cannot be read: {ex.Message}"));
            return new Manifest(fullPath, jobs, errors);
        }

        if (csv.Headers is not { Count: > 0 } header || header.All(string.IsNullOrWhiteSpace))
        {
            errors.Add(new ManifestError(file, 1, null, "the manifest is empty; expected a header row such as 'id,prompt,images'"));
            return new Manifest(fullPath, jobs, errors);
        }

        var columns = header.Select(h => h.Trim()).ToArray();
        var lower = columns.Select(c => c.ToLowerInvariant()).ToArray();
        if (!lower.Contains(ManifestFields.Prompt))
        {
            errors.Add(new ManifestError(file, 1, ManifestFields.Prompt, "the header has no 'prompt' column"));
        }

        if (!lower.Any(c => c is ManifestFields.Images or ManifestFields.Image or "image1"))
        {
            errors.Add(new ManifestError(file, 1, ManifestFields.Images, "the header has no 'images' (or 'image', 'image1') column"));
        }

        if (errors.Count > 0)
        {
            return new Manifest(fullPath, jobs, errors);
        }

        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        while (true)
        {
            try
            {
                if (!csv.Read())
                {
                    break;
                }
            }
            catch (Exception ex) when (ex is CsvFormatException or IOException or DecoderFallbackException)
            {
                errors.Add(new ManifestError(file, (int)csv.LineNumber, null, $"the file cannot be read as CSV from here: {ex.Message}"));
                break;
            }

            var line = (int)csv.LineNumber;
            var cells = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            for (var i = 0; i < columns.Length; i++)
            {
                cells[columns[i]] = i < csv.FieldCount ? csv.GetString(i).Trim() : "";
            }

            if (cells.Values.All(string.IsNullOrEmpty))
            {
                continue;
            }

            var row = new RowReader(file, line, cells, baseDir, errors);
            var job = row.Read();
            if (job is null)
            {
                continue;
            }

            if (seen.TryGetValue(job.Key, out var firstLine))
            {
                errors.Add(new ManifestError(file, line, ManifestFields.Id, $"'{job.Key}' is already used on line {firstLine}; ids must be unique"));
                continue;
            }

            seen[job.Key] = line;
            jobs.Add(job);
        }

        if (jobs.Count == 0 && errors.Count == 0)
        {
            errors.Add(new ManifestError(file, 2, null, "the manifest has a header but no jobs"));
        }

        return new Manifest(fullPath, errors.Count == 0 ? jobs : [], errors);
    }

    private sealed class RowReader(string file, int line, Dictionary<string, string> cells, string baseDir, List<ManifestError> errors)
    {
        public ManifestJob? Read()
        {
            var before = errors.Count;
            var id = cells.TryGetValue(ManifestFields.Id, out var rawId) ? rawId : $"row-{line}";
            if (id.Length == 0)
            {
                Error(ManifestFields.Id, "is empty; expected a unique job id");
            }

            var prompt = Get(ManifestFields.Prompt);
            if (prompt is null)
            {
                Error(ManifestFields.Prompt, "is empty; expected the edit instruction");
            }

            var images = Images();
            var negative = Get(ManifestFields.NegativePrompt);
            if (negative is { Length: > ManifestFields.MaxNegativePromptChars })
            {
                Error(ManifestFields.NegativePrompt, $"is {negative.Length} characters; expected at most {ManifestFields.MaxNegativePromptChars}");
            }

            var size = Get(ManifestFields.Size);
            if (size is not null && !IsSize(size))
            {
                Error(ManifestFields.Size, $"'{size}' is not a size; expected WIDTH*HEIGHT such as 1024*1024");
            }

            var n = 1;
            if (Get(ManifestFields.N) is { } rawN && (!int.TryParse(rawN, NumberStyles.None, CultureInfo.InvariantCulture, out n) || n < 1 || n > ManifestFields.MaxN))
            {
                Error(ManifestFields.N, $"'{rawN}' is not allowed; expected a whole number from 1 to {ManifestFields.MaxN}");
            }

            long? seed = null;
            if (Get(ManifestFields.Seed) is { } rawSeed)
            {
                if (long.TryParse(rawSeed, NumberStyles.None, CultureInfo.InvariantCulture, out var s) && s <= ManifestFields.MaxSeed)
                {
                    seed = s;
                }
                else
                {
                    Error(ManifestFields.Seed, $"'{rawSeed}' is not allowed; expected a whole number from 0 to {ManifestFields.MaxSeed}");
                }
            }

            if (errors.Count > before)
            {
                return null;
            }

            var variables = cells
                .Where(c => !ManifestFields.Known.Contains(c.Key))
                .ToDictionary(c => c.Key, c => c.Value, StringComparer.Ordinal);
            return new ManifestJob(line, id, new JobSpec
            {
                Prompt = prompt!,
                Images = images,
                NegativePrompt = negative,
                Size = size,
                N = n,
                Seed = seed,
                Variables = variables,
            });
        }

        private List<string> Images()
        {
            var raw = new List<string>();
            if (Get(ManifestFields.Images) is { } list)
            {
                raw.AddRange(list.Split('|', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
            }

            foreach (var column in new[] { ManifestFields.Image, "image1", "image2", "image3" })
            {
                if (Get(column) is { } single)
                {
                    raw.Add(single);
                }
            }

            if (raw.Count is 0 or > ManifestFields.MaxImages)
            {
                Error(ManifestFields.Images, $"has {raw.Count} image(s); expected 1 to {ManifestFields.MaxImages}, separated by '|'");
                return raw;
            }

            var resolved = new List<string>(raw.Count);
            foreach (var image in raw)
            {
                if (EditRequestBuilder.IsRemote(image))
                {
                    resolved.Add(image);
                    continue;
                }

                var full = System.IO.Path.GetFullPath(System.IO.Path.Combine(baseDir, image));
                if (!File.Exists(full))
                {
                    Error(ManifestFields.Images, $"'{image}' does not exist (looked for {full}); expected a file path relative to the manifest, or an http(s) URL");
                }

                resolved.Add(full);
            }

            return resolved;
        }

        private static bool IsSize(string size)
        {
            var parts = size.Split('*', 'x', 'X');
            return parts.Length == 2
                && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var w) && w > 0
                && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var h) && h > 0;
        }

        private string? Get(string column) => cells.TryGetValue(column, out var v) && v.Length > 0 ? v : null;

        private void Error(string field, string message) => errors.Add(new ManifestError(file, line, field, message));
    }
}
