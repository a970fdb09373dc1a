namespace QwenBatch.Simulator.Images;

/// <summary>Formats the simulator produces; the number is what a request id carries.</summary>
internal enum OutputFormat
{
    Png = 0,
    Jpeg = 1,
    Webp = 2,
}

internal static class OutputFormats
{
    public static string Extension(this OutputFormat format) => format switch
    {
        OutputFormat.Jpeg => "jpeg",
        OutputFormat.Webp => "webp",
        _ => "png",
    };

    public static string ContentType(this OutputFormat format) => "image/" + format.Extension();

    public static bool TryParse(string? wire, out OutputFormat format)
    {
        format = wire switch
        {
            "png" => OutputFormat.Png,
            "jpeg" or "jpg" => OutputFormat.Jpeg,
            "webp" => OutputFormat.Webp,
            _ => (OutputFormat)(-1),
        };
        return Enum.IsDefined(format);
    }

    /// <summary>Writes output <paramref name="index"/> of a task in its format; <paramref name="padding"/> bytes are added to a PNG.</summary>
    public static Task WriteAsync(this OutputFormat format, Stream output, int seed, int index, int width, int height, CancellationToken ct, int padding = 0)
    {
        var pattern = new TestPattern(seed, index, width, height);
        switch (format)
        {
            case OutputFormat.Jpeg:
                return JpegEncoder.WriteRgbAsync(output, width, height, pattern.FillRow, ct);
            case OutputFormat.Webp:
                Span<byte> first = stackalloc byte[width * 3];
                pattern.FillRow(height / 2, first);
                var mid = 3 * (width / 2);
                return WebpEncoder.WriteFlatAsync(output, width, height, first[mid], first[mid + 1], first[mid + 2], ct);
            default:
                return PngEncoder.WriteRgbAsync(output, width, height, pattern.FillRow, ct, padding);
        }
    }
}
