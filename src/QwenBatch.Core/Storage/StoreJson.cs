using System.Text.Json;

namespace QwenBatch.Storage;

/// <summary>How JSON columns (spec, outputs, files) are written, the same way by every backend.</summary>
public static class StoreJson
{
    private static readonly JsonSerializerOptions Options = new(JsonSerializerDefaults.Web);

    public static string Write<T>(T value) => JsonSerializer.Serialize(value, Options);

    public static T Read<T>(string json) =>
        JsonSerializer.Deserialize<T>(json, Options) ?? throw new InvalidDataException($"A stored {typeof(T).Name} is null.");
}
