namespace QwenBatch.Uploads;

/// <summary>A provider client that takes local input images as files uploaded beforehand and named by URL in a submit.</summary>
public interface IInputUploader
{
    /// <summary>The most an uploaded image may weigh.</summary>
    long MaxUploadBytes { get; }

    /// <summary>Uploads one image; returns the URL a submit names it by. Throws <see cref="Providers.ProviderException"/>.</summary>
    Task<string> UploadAsync(LocalImage image, CancellationToken ct);
}
