using QwenBatch.Edits;
using QwenBatch.Uploads;

namespace QwenBatch.Providers;

/// <summary>
/// Turns a stored <see cref="EditSpec"/> into what goes on the wire. Local image files go to a provider that takes
/// uploads (WaveSpeed) as the URL of their one upload, and to the others (odirouter, whose page documents base64 input)
/// as data URIs.
/// </summary>
public sealed class EditRequestBuilder(InputUploads? uploads = null)
{
    /// <summary>The most a local image sent inline may weigh (odirouter's documented limit).</summary>
    public const long MaxImageBytes = 10L * 1024 * 1024;

    public async Task<EditRequest> BuildAsync(EditSpec spec, ProviderAccount account, CancellationToken ct)
    {
        var uploader = uploads is not null && account.Options.UploadInputs ? account.Client as IInputUploader : null;
        var images = new List<string>(spec.Images.Count);
        foreach (var image in spec.Images)
        {
            if (IsRemote(image))
            {
                images.Add(image);
            }
            else if (uploader is not null)
            {
                images.Add(await uploads!.UrlAsync(account, uploader, await LocalImage.ReadAsync(image, uploader.MaxUploadBytes, ct), ct));
            }
            else
            {
                images.Add((await LocalImage.ReadAsync(image, MaxImageBytes, ct)).DataUri());
            }
        }

        return new EditRequest(spec.Prompt, images, spec.NegativePrompt, spec.Size, spec.N, spec.Seed, spec.PromptExtend, spec.Watermark, spec.OutputFormat);
    }

    public static bool IsRemote(string image) =>
        image.StartsWith("http://", StringComparison.OrdinalIgnoreCase)
        || image.StartsWith("https://", StringComparison.OrdinalIgnoreCase)
        || image.StartsWith("data:", StringComparison.OrdinalIgnoreCase);
}
