namespace QwenBatch.Outputs;

/// <summary>Image formats told apart by their first bytes, never by a name or a header someone sent.</summary>
public static class ImageFormat
{
    private static ReadOnlySpan<byte> PngSignature => [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A];

    /// <summary>The file extension for the format of <paramref name="head"/>, or null when it is not an image we know.</summary>
    public static string? Sniff(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith(PngSignature))
        {
            return "png";
        }

        if (head.Length >= 3 && head[0] == 0xFF && head[1] == 0xD8 && head[2] == 0xFF)
        {
            return "jpg";
        }

        if (head.Length >= 12 && head[..4].SequenceEqual("RIFF"u8) && head[8..12].SequenceEqual("WEBP"u8))
        {
            return "webp";
        }

        if (head.StartsWith("GIF87a"u8) || head.StartsWith("GIF89a"u8))
        {
            return "gif";
        }

        if (head.StartsWith("BM"u8))
        {
            return "bmp";
        }

        if (head.StartsWith("II*\0"u8) || head.StartsWith("MM\0*"u8))
        {
            return "tiff";
        }

        return null;
    }

    /// <summary>
    /// True when the file ends the way its format ends (PNG's IEND chunk, JPEG's EOI marker, GIF's trailer, WEBP's RIFF
    /// length): a download cut short fails this even when no length was announced. Formats without a marker pass.
    /// </summary>
    public static bool IsComplete(string extension, ReadOnlySpan<byte> head, ReadOnlySpan<byte> tail, long length) => extension switch
    {
        "png" => tail.EndsWith(PngEnd),
        "jpg" => tail.IndexOf(JpegEnd) >= 0,
        "gif" => tail.Length > 0 && tail[^1] == 0x3B,
        "webp" => head.Length >= 8 && System.Buffers.Binary.BinaryPrimitives.ReadUInt32LittleEndian(head[4..]) + 8L is var riff && (riff == length || riff + 1 == length),
        _ => true,
    };

    /// <summary>The IEND chunk: zero length, type, CRC.</summary>
    private static ReadOnlySpan<byte> PngEnd => [0x00, 0x00, 0x00, 0x00, 0x49, 0x45, 0x4E, 0x44, 0xAE, 0x42, 0x60, 0x82];

    private static ReadOnlySpan<byte> JpegEnd => [0xFF, 0xD9];

    public static string MimeType(string extension) => extension switch
    {
        "png" => "image/png",
        "jpg" => "image/jpeg",
        "webp" => "image/webp",
        "gif" => "image/gif",
        "bmp" => "image/bmp",
        "tiff" => "image/tiff",
        _ => "application/octet-stream",
    };
}
