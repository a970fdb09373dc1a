using System.Buffers.Text;
using System.Globalization;
using System.Text.Json;
using QwenBatch.Simulator.Tasks;

namespace QwenBatch.Simulator.Odirouter;

/// <summary>
/// Checks a submit body against the odirouter API page. Errors read "&lt;field&gt;: &lt;what was expected&gt;".
/// </summary>
internal static class SubmitValidator
{
    public const int DefaultSide = 1024;
    public const int MinSide = 512;
    public const int MaxSide = 2048;
    public const int SizeStep = 16;
    public const int MaxImages = 3;
    public const int MaxOutputs = 6;
    public const int MaxNegativePromptLength = 500;

    public static bool TryValidate(JsonElement body, out TaskSpec spec, out string error)
    {
        spec = new TaskSpec(1, DefaultSide, DefaultSide, null);
        error = "";
        if (body.ValueKind != JsonValueKind.Object)
            return Fail("body: a JSON object was expected", out error);

        if (!body.TryGetProperty("prompt", out var prompt) || prompt.ValueKind != JsonValueKind.String || string.IsNullOrWhiteSpace(prompt.GetString()))
            return Fail("prompt: a non-empty string is required", out error);

        if (!body.TryGetProperty("images", out var images) || images.ValueKind != JsonValueKind.Array
            || images.GetArrayLength() is < 1 or > MaxImages)
            return Fail($"images: an array of 1 to {MaxImages} images (URLs, data URIs or base64) is required", out error);
        var index = 0;
        foreach (var image in images.EnumerateArray())
        {
            if (image.ValueKind != JsonValueKind.String || !IsImageReference(image.GetString()))
                return Fail($"images[{index}]: a non-empty http(s) URL, data URI or base64 string was expected", out error);
            index++;
        }

        if (Present(body, "negative_prompt", out var negative)
            && (negative.ValueKind != JsonValueKind.String || negative.GetString()!.Length > MaxNegativePromptLength))
            return Fail($"negative_prompt: a string of at most {MaxNegativePromptLength} characters was expected", out error);

        int width = DefaultSide, height = DefaultSide;
        if (Present(body, "size", out var size)
            && (size.ValueKind != JsonValueKind.String || !TryParseSize(size.GetString()!, out width, out height)))
            return Fail($"size: \"W*H\" with each side between {MinSide} and {MaxSide} was expected, e.g. \"1024*1536\"", out error);

        var count = 1;
        if (Present(body, "n", out var n)
            && (n.ValueKind != JsonValueKind.Number || !n.TryGetInt32(out count) || count is < 1 or > MaxOutputs))
            return Fail($"n: an integer between 1 and {MaxOutputs} was expected", out error);

        int? seed = null;
        if (Present(body, "seed", out var seedElement))
        {
            if (seedElement.ValueKind != JsonValueKind.Number || !seedElement.TryGetInt32(out var seedValue) || seedValue < 0)
                return Fail("seed: an integer between 0 and 2147483647 was expected", out error);
            seed = seedValue;
        }

        foreach (var flag in (ReadOnlySpan<string>)["prompt_extend", "watermark"])
        {
            if (Present(body, flag, out var value) && value.ValueKind is not (JsonValueKind.True or JsonValueKind.False))
                return Fail($"{flag}: a boolean (true or false) was expected", out error);
        }

        spec = new TaskSpec(count, width, height, seed);
        return true;
    }

    /// <summary>Parses "W*H" and rounds each side to the nearest multiple of 16, as the provider does.</summary>
    public static bool TryParseSize(string text, out int width, out int height)
    {
        width = height = 0;
        var parts = text.Split('*');
        if (parts.Length != 2
            || !int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var w)
            || !int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var h)
            || w is < MinSide or > MaxSide || h is < MinSide or > MaxSide)
            return false;
        width = RoundToStep(w);
        height = RoundToStep(h);
        return true;
    }

    private static int RoundToStep(int side) =>
        (int)Math.Round(side / (double)SizeStep, MidpointRounding.AwayFromZero) * SizeStep;

    public static bool IsImageReference(string? value)
    {
        if (string.IsNullOrWhiteSpace(value))
            return false;
        if (Uri.TryCreate(value, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps))
            return true;
        if (value.StartsWith("data:", StringComparison.OrdinalIgnoreCase))
        {
            var comma = value.IndexOf(',', StringComparison.Ordinal);
            return comma > 0 && comma < value.Length - 1;
        }
        return Base64.IsValid(value) || Base64Url.IsValid(value);
    }

    /// <summary>Optional fields: absent and JSON null both mean "use the default".</summary>
    private static bool Present(JsonElement body, string name, out JsonElement value) =>
        body.TryGetProperty(name, out value) && value.ValueKind != JsonValueKind.Null;

    private static bool Fail(string message, out string error)
    {
        error = message;
        return false;
    }
}
