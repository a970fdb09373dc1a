namespace QwenBatch.Simulator.WaveSpeed;

/// <summary>The image formats WaveSpeed's upload page lists (JPG, JPEG, PNG, WebP, GIF, BMP, TIFF), told by their bytes.</summary>
internal static class UploadFormats
{
    /// <summary>The MIME type of the image <paramref name="bytes"/> start, or null when they are none of the listed formats.</summary>
    public static string? Sniff(ReadOnlySpan<byte> bytes) => bytes switch
    {
        [0xFF, 0xD8, 0xFF, ..] => "image/jpeg",
        [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A, ..] => "image/png",
        [(byte)'G', (byte)'I', (byte)'F', (byte)'8', ..] => "image/gif",
        [(byte)'R', (byte)'I', (byte)'F', (byte)'F', _, _, _, _, (byte)'W', (byte)'E', (byte)'B', (byte)'P', ..] => "image/webp",
        [(byte)'B', (byte)'M', ..] => "image/bmp",
        [(byte)'I', (byte)'I', 0x2A, 0x00, ..] or [(byte)'M', (byte)'M', 0x00, 0x2A, ..] => "image/tiff",
        _ => null,
    };
}
