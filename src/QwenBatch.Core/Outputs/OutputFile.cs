using System.Text.Json;
using System.Text.Json.Serialization;

namespace QwenBatch.Outputs;

/// <summary>
/// One output written into the batch folder: its path relative to the folder ('/'-separated), its SHA-256 (lower-case hex)
/// and its length. The hash lets a rerun and a report tell a whole file from one that was replaced or damaged.
/// </summary>
[JsonConverter(typeof(OutputFileJsonConverter))]
public sealed record OutputFile(string Path, string Sha256, long Bytes);

/// <summary>
/// Reads the object form, and also the bare file name that stores written before hashes were recorded (no hash, length 0),
/// so an old state file still opens.
/// </summary>
internal sealed class OutputFileJsonConverter : JsonConverter<OutputFile>
{
    public override OutputFile Read(ref Utf8JsonReader reader, Type typeToConvert, JsonSerializerOptions options)
    {
        if (reader.TokenType == JsonTokenType.String)
        {
            return new OutputFile(reader.GetString()!, "", 0);
        }

        using var document = JsonDocument.ParseValue(ref reader);
        var root = document.RootElement;
        return new OutputFile(
            root.TryGetProperty("path", out var path) ? path.GetString() ?? "" : "",
            root.TryGetProperty("sha256", out var sha) ? sha.GetString() ?? "" : "",
            root.TryGetProperty("bytes", out var bytes) ? bytes.GetInt64() : 0);
    }

    public override void Write(Utf8JsonWriter writer, OutputFile value, JsonSerializerOptions options)
    {
        writer.WriteStartObject();
        writer.WriteString("path", value.Path);
        writer.WriteString("sha256", value.Sha256);
        writer.WriteNumber("bytes", value.Bytes);
        writer.WriteEndObject();
    }
}
