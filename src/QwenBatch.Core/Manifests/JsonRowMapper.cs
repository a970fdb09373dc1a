using System.Text.Json;

namespace QwenBatch.Manifests;

/// <summary>Turns one JSON job object (of a JSON or JSONL manifest) into a <see cref="ManifestRow"/>, shared by both formats.</summary>
internal static class JsonRowMapper
{
    public static readonly JsonReaderOptions ReaderOptions = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        MaxDepth = 32,
    };

    public static readonly JsonDocumentOptions DocumentOptions = new()
    {
        CommentHandling = JsonCommentHandling.Skip,
        AllowTrailingCommas = true,
        MaxDepth = 32,
    };

    /// <param name="job">The job object.</param>
    /// <param name="line">The line where the object starts.</param>
    /// <param name="defaults">The manifest's <c>defaults</c>, whose fields a job inherits unless it has its own.</param>
    public static ManifestRow ToRow(JsonElement job, int line, ManifestRow? defaults)
    {
        var row = new ManifestRow(line);
        if (job.ValueKind != JsonValueKind.Object)
        {
            row.ShapeErrors.Add((null, $"is a JSON {Kind(job)}; expected a job object such as {{\"id\": \"…\", \"prompt\": \"…\", \"images\": [\"…\"]}}"));
            return row;
        }

        foreach (var property in job.EnumerateObject())
        {
            Add(row, property.Name.Trim(), property.Value);
        }

        if (defaults is not null)
        {
            foreach (var (name, value) in defaults.Cells)
            {
                row.Cells.TryAdd(name, value);
            }

            row.ImageList ??= defaults.ImageList;
            row.Matrix ??= defaults.Matrix;
            row.ShapeErrors.AddRange(defaults.ShapeErrors);
        }

        return row;
    }

    private static void Add(ManifestRow row, string name, JsonElement value)
    {
        if (name.Equals(ManifestFields.Images, StringComparison.OrdinalIgnoreCase) && value.ValueKind == JsonValueKind.Array)
        {
            row.ImageList = [];
            foreach (var item in value.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.String)
                {
                    row.ShapeErrors.Add((ManifestFields.Images, $"has a JSON {Kind(item)}; expected an array of image paths or URLs (strings)"));
                    return;
                }

                row.ImageList.Add(item.GetString()!.Trim());
            }

            return;
        }

        if (name.Equals(ManifestFields.Matrix, StringComparison.OrdinalIgnoreCase))
        {
            Matrix(row, value);
            return;
        }

        if (Scalar(value) is { } text)
        {
            row.Cells[name] = text;
        }
        else if (value.ValueKind != JsonValueKind.Null)
        {
            row.ShapeErrors.Add((name, $"is a JSON {Kind(value)}; expected a string, number or boolean"));
        }
    }

    private static void Matrix(ManifestRow row, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Array || value.GetArrayLength() == 0)
        {
            row.ShapeErrors.Add((ManifestFields.Matrix, $"is a JSON {Kind(value)}; expected a non-empty array of objects such as [{{\"locale\": \"de-DE\"}}]"));
            return;
        }

        row.Matrix = [];
        var index = 0;
        foreach (var entry in value.EnumerateArray())
        {
            index++;
            if (entry.ValueKind != JsonValueKind.Object)
            {
                row.ShapeErrors.Add((ManifestFields.Matrix, $"entry {index} is a JSON {Kind(entry)}; expected an object of variables such as {{\"locale\": \"de-DE\"}}"));
                continue;
            }

            var variables = new Dictionary<string, string>(StringComparer.OrdinalIgnoreCase);
            foreach (var property in entry.EnumerateObject())
            {
                if (Scalar(property.Value) is { } text)
                {
                    variables[property.Name.Trim()] = text;
                }
                else if (property.Value.ValueKind != JsonValueKind.Null)
                {
                    row.ShapeErrors.Add((ManifestFields.Matrix, $"entry {index}: '{property.Name}' is a JSON {Kind(property.Value)}; expected a string, number or boolean"));
                }
            }

            row.Matrix.Add(variables);
        }
    }

    private static string? Scalar(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.String => value.GetString()!.Trim(),
        JsonValueKind.Number => value.GetRawText(),
        JsonValueKind.True => "true",
        JsonValueKind.False => "false",
        _ => null,
    };

    public static string Kind(JsonElement value) => value.ValueKind switch
    {
        JsonValueKind.Object => "object",
        JsonValueKind.Array => "array",
        JsonValueKind.String => "string",
        JsonValueKind.Number => "number",
        JsonValueKind.True or JsonValueKind.False => "boolean",
        _ => "null",
    };

    /// <summary>The first sentence of a <see cref="JsonException"/>'s message, without the reader's position details.</summary>
    public static string Describe(JsonException ex)
    {
        var message = ex.Message;
        var cut = message.IndexOf(" LineNumber:", StringComparison.Ordinal);
        return (cut > 0 ? message[..cut] : message).TrimEnd(' ', '.');
    }
}
