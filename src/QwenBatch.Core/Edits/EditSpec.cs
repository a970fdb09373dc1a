namespace QwenBatch.Edits;

/// <summary>
/// What to ask the provider for, as read from the manifest. Images are absolute local paths, http(s) URLs or data URIs;
/// local files are read and encoded only when the job is submitted, so the store never holds image bytes.
/// </summary>
public sealed record EditSpec
{
    public required string Prompt { get; init; }
    public required IReadOnlyList<string> Images { get; init; }
    public string? NegativePrompt { get; init; }
    public string? Size { get; init; }
    public int N { get; init; } = 1;
    public long? Seed { get; init; }

    /// <summary>Let the provider rewrite the prompt (odirouter <c>prompt_extend</c>); null leaves the provider's default.</summary>
    public bool? PromptExtend { get; init; }

    /// <summary>Ask for the provider's watermark (odirouter <c>watermark</c>); null leaves the provider's default.</summary>
    public bool? Watermark { get; init; }

    /// <summary>jpeg, png or webp (WaveSpeed <c>output_format</c>); null leaves the provider's default.</summary>
    public string? OutputFormat { get; init; }

    /// <summary>Output file name template (the manifest's <c>output</c> column); null means <c>&lt;id&gt;.&lt;ext&gt;</c>.</summary>
    public string? Output { get; init; }

    /// <summary>Manifest columns that are not provider fields (sku, locale…), carried into the report.</summary>
    public IReadOnlyDictionary<string, string> Variables { get; init; } = new Dictionary<string, string>();
}
