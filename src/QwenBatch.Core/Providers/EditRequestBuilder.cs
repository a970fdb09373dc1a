using QwenBatch.Edits;
using QwenBatch.Outputs;
using QwenBatch.Steps;

namespace QwenBatch.Providers;

/// <summary>Turns a stored <see cref="EditSpec"/> into what goes on the wire: local image files become data URIs.</summary>
public sealed class EditRequestBuilder
{
    public const long MaxImageBytes = 10L * 1024 * 1024;

    public async Task<EditRequest> BuildAsync(EditSpec spec, CancellationToken ct)
    {
        var images = new List<string>(spec.Images.Count);
        foreach (var image in spec.Images)
        {
            images.Add(IsRemote(image) ? image : await DataUriAsync(image, ct));
        }

        return new EditRequest(spec.Prompt, images, spec.NegativePrompt, spec.Size, spec.N, spec.Seed, spec.PromptExtend, spec.Watermark, spec.OutputFormat);
    }

    public static bool IsRemote(string image) =>
        image.StartsWith("http://", StringComparison.OrdinalIgnoreCase)
        || image.StartsWith("https://", StringComparison.OrdinalIgnoreCase)
        || image.StartsWith("data:", StringComparison.OrdinalIgnoreCase);

    private static async Task<string> DataUriAsync(string path, CancellationToken ct)
    {
        var info = new FileInfo(path);
        if (!info.Exists)
        {
            throw new EditInputException($"Input image '{path}' does not exist.");
        }

        if (info.Length > MaxImageBytes)
        {
            throw new EditInputException($"Input image '{path}' is {info.Length} bytes; the provider accepts at most {MaxImageBytes}.");
        }

        var bytes = await File.ReadAllBytesAsync(path, ct);
        var extension = ImageFormat.Sniff(bytes.AsSpan(0, Math.Min(bytes.Length, 16)))
            ?? throw new EditInputException($"Input image '{path}' is not a JPG, PNG, BMP, TIFF, WEBP or GIF file.");
        return $"data:{ImageFormat.MimeType(extension)};base64,{Convert.ToBase64String(bytes)}";
    }
}
