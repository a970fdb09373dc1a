namespace QwenBatch.Jobs;

/// <summary>
/// What to ask the provider for, as read from the manifest. Images are absolute local paths, http(s) URLs or data URIs;
/// local files are read and encoded only when the job is submitted, so the store never holds image bytes.
/// </summary>
public sealed record JobSpec
{
    public required string Prompt { get; init; }
    public required IReadOnlyList<string> Images { get; init; }
    public string? NegativePrompt { get; init; }
    public string? Size { get; init; }
    public int N { get; init; } = 1;
    public long? Seed { get; init; }

    /// <summary>Manifest columns that are not provider fields (sku, locale…), carried into the report.</summary>
    public IReadOnlyDictionary<string, string> Variables { get; init; } = new Dictionary<string, string>();
}
