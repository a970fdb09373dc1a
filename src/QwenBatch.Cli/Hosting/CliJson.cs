using System.Text.Json;

namespace QwenBatch.Cli.Hosting;

/// <summary>How commands print JSON for scripts: snake_case names, as the documented shapes spell them.</summary>
internal static class CliJson
{
    public static JsonSerializerOptions Options { get; } = new()
    {
        PropertyNamingPolicy = JsonNamingPolicy.SnakeCaseLower,
        Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping,
    };
}
