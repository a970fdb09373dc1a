using System.Security.Cryptography;
using QwenBatch.Outputs;
using QwenBatch.Steps;

namespace QwenBatch.Uploads;

/// <summary>A local input image read for sending: its bytes, its format told by those bytes, and their SHA-256.</summary>
public sealed record LocalImage(string Path, byte[] Bytes, string Extension)
{
    public string MimeType => ImageFormat.MimeType(Extension);

    /// <summary>"sha256:" + the hex digest of the bytes: the same image under any name or path is one upload.</summary>
    public string ContentHash { get; } = "sha256:" + Convert.ToHexStringLower(SHA256.HashData(Bytes));

    /// <summary>Reads <paramref name="path"/>; a missing, oversized or unknown file is an <see cref="EditInputException"/> naming it.</summary>
    public static async Task<LocalImage> ReadAsync(string path, long maxBytes, CancellationToken ct)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new EditInputException($"Input image '{path}' does not exist.");
        }

        if (info.Length > maxBytes)
        {
            throw new EditInputException($"Input image '{path}' is {info.Length} bytes; the provider accepts at most {maxBytes}.");
        }

        var bytes = await File.ReadAllBytesAsync(path, ct);
        var extension = ImageFormat.Sniff(bytes.AsSpan(0, Math.Min(bytes.Length, 16)))
            ?? throw new EditInputException($"Input image '{path}' is not a JPG, PNG, BMP, TIFF, WEBP or GIF file.");
        return new LocalImage(path, bytes, extension);
    }

    /// <summary>The image inline, as a base64 data URI.</summary>
    public string DataUri() => $"data:{MimeType};base64,{Convert.ToBase64String(Bytes)}";
}
