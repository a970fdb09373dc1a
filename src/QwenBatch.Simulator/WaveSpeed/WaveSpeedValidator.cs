using System.Globalization;
using System.Text.Json;
using QwenBatch.Simulator.Images;
using QwenBatch.Simulator.Odirouter;
using QwenBatch.Simulator.Tasks;

namespace QwenBatch.Simulator.WaveSpeed;

/// <summary>Checks a WaveSpeed submit body against its API page. Errors read "&lt;field&gt;: &lt;what was expected&gt;".</summary>
internal static class WaveSpeedValidator
{
    public const int DefaultSide = 1024;
    public const int MinSide = 256;
    public const int MaxSide = 1536;
    public const int MaxImages = 3;

    public static bool TryValidate(JsonElement body, out TaskSpec spec, out bool syncMode, out string error)
    {
        spec = new TaskSpec(1, DefaultSide, DefaultSide, null, OutputFormat.Jpeg);
        syncMode = false;
        error = "";
        if (body.ValueKind != JsonValueKind.Object)
            return Fail("body: a JSON object was expected", out error);
        if (!body.TryGetProperty("prompt", out var prompt) || prompt.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(prompt.GetString()))
            return Fail("prompt: a non-empty string is required", out error);
        if (!body.TryGetProperty("images", out var images) || images.ValueKind != JsonValueKind.Array || images.GetArrayLength() is < 1 or > MaxImages)
            return Fail($"images: an array of 1 to {MaxImages} images (URLs or base64) is required", out error);
        var index = 0;
        foreach (var image in images.EnumerateArray())
        {
            if (image.ValueKind != JsonValueKind.String || !SubmitValidator.IsImageReference(image.GetString()))
                return Fail($"images[{index}]: a non-empty http(s) URL, data URI or base64 string was expected", out error);
            index++;
        }

        int width = DefaultSide, height = DefaultSide;
        if (Present(body, "size", out var size) && (size.ValueKind != JsonValueKind.String || !TryParseSize(size.GetString()!, out width, out height)))
            return Fail($"size: \"W*H\" with each side between {MinSide} and {MaxSide} was expected, e.g. \"1024*1024\"", out error);

        int? seed = null;
        if (Present(body, "seed", out var seedElement))
        {
            if (seedElement.ValueKind != JsonValueKind.Number || !seedElement.TryGetInt32(out var value) || value < -1)
                return Fail("seed: an integer between -1 (random) and 2147483647 was expected", out error);
            seed = value == -1 ? null : value;
        }

        var format = OutputFormat.Jpeg;
        if (Present(body, "output_format", out var formatElement)
            && (formatElement.ValueKind != JsonValueKind.String || formatElement.GetString() is not ("jpeg" or "png" or "webp") || !OutputFormats.TryParse(formatElement.GetString(), out format)))
            return Fail("output_format: one of jpeg, png, webp was expected", out error);

        var flags = new bool[2];
        var names = (ReadOnlySpan<string>)["enable_base64_output", "enable_sync_mode"];
        for (var i = 0; i < names.Length; i++)
        {
            if (!Present(body, names[i], out var flag))
                continue;
            if (flag.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                return Fail($"{names[i]}: a boolean (true or false) was expected", out error);
            flags[i] = flag.GetBoolean();
        }

        spec = new TaskSpec(1, width, height, seed, format, flags[0]);
        syncMode = flags[1];
        return true;
    }

    public static bool TryParseSize(string text, out int width, out int height)
    {
        width = height = 0;
        var parts = text.Split('*');
        return parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out width)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out height)
            && width is >= MinSide and <= MaxSide && height is >= MinSide and <= MaxSide;
    }

    private static bool Present(JsonElement body, string name, out JsonElement value) =>
        body.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    private static bool Fail(string message, out string error)
    {
        error = message;
        return false;
    }
}
