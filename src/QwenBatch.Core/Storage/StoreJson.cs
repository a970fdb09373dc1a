using System.Text.Json;
using System.Text.Json.Serialization;
using QwenBatch.Edits;

namespace QwenBatch.Storage;

/// <summary>How JSON columns (spec, outputs, files) are written, the same way by every backend.</summary>
public static class StoreJson
{
    // Absent fields are not written: a job's spec is mostly optional fields, and on a 100k-row import the nulls were a
    // third of the JSON the database parses and stores. Reading gives the same record either way.
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web)
    {
        DefaultIgnoreCondition = System.Text.Json.Serialization.JsonIgnoreCondition.WhenWritingNull,
    };

    public static string Write<T>(T value) => value is EditSpec spec
        ? JsonSerializer.Serialize(spec, StoreJsonContext.Default.EditSpec)
        : JsonSerializer.Serialize(value, Options);

    /// <summary>The same JSON, written into a larger document (a staged chunk of jobs).</summary>
    public static void Write<T>(Utf8JsonWriter writer, T value)
    {
        if (value is EditSpec spec)
        {
            JsonSerializer.Serialize(writer, spec, StoreJsonContext.Default.EditSpec);
        }
        else
        {
            JsonSerializer.Serialize(writer, value, Options);
        }
    }

    public static T Read<T>(string json) =>
        JsonSerializer.Deserialize<T>(json, Options) ?? throw new InvalidDataException($"A stored {typeof(T).Name} is null.");
}

/// <summary>
/// A job's spec written by generated code (one per job of an import: the reflection serializer cost a third of planning
/// one), with <see cref="StoreJson"/>'s options: web defaults, nulls left out. A test holds the two to the same bytes.
/// </summary>
[JsonSourceGenerationOptions(JsonSerializerDefaults.Web, DefaultIgnoreCondition = JsonIgnoreCondition.WhenWritingNull, GenerationMode = JsonSourceGenerationMode.Serialization)]
[JsonSerializable(typeof(EditSpec))]
internal sealed partial class StoreJsonContext : JsonSerializerContext;
