namespace QwenBatch.Manifests;

/// <summary>The column names that are provider fields; every other column is a variable carried into the report.</summary>
internal static class ManifestFields
{
    public const string Id = "id";
    public const string Prompt = "prompt";
    public const string Images = "images";
    public const string Image = "image";
    public const string NegativePrompt = "negative_prompt";
    public const string Size = "size";
    public const string N = "n";
    public const string Seed = "seed";

    public const int MaxImages = 3;
    public const int MaxN = 6;
    public const int MaxNegativePromptChars = 500;
    public const long MaxSeed = 2147483647;

    public static readonly HashSet<string> Known = new(StringComparer.OrdinalIgnoreCase)
    {
        Id, Prompt, Images, Image, "image1", "image2", "image3", NegativePrompt, Size, N, Seed,
    };
}
