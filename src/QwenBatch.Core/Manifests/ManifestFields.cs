namespace QwenBatch.Manifests;

/// <summary>The names that are provider fields (or QwenBatch's own); every other column is a variable carried into the report.</summary>
internal static class ManifestFields
{
    public const string Id = "id";
    public const string Prompt = "prompt";
    public const string Images = "images";
    public const string Image = "image";
    public const string Image1 = "image1";
    public const string Image2 = "image2";
    public const string Image3 = "image3";
    public const string NegativePrompt = "negative_prompt";
    public const string Size = "size";
    public const string N = "n";
    public const string Seed = "seed";
    public const string PromptExtend = "prompt_extend";
    public const string Watermark = "watermark";
    public const string OutputFormat = "output_format";
    public const string Provider = "provider";
    public const string Output = "output";

    /// <summary>JSON only: the fan-out entries of a job.</summary>
    public const string Matrix = "matrix";

    public const int MaxImages = 3;
    public const int MaxN = 6;
    public const int MaxNegativePromptChars = 500;
    public const long MaxSeed = 2147483647;

    /// <summary>The provider truncates prompts beyond this many tokens.</summary>
    public const int MaxPromptTokens = 800;

    /// <summary>Local input images larger than this are refused by the providers.</summary>
    public const long MaxImageBytes = 10 * 1024 * 1024;

    /// <summary>The recommended range of an input image's sides, in pixels; outside it is a warning.</summary>
    public const int MinImageSide = 384;

    public const int MaxImageSide = 3072;

    public static readonly string[] SingleImages = [Image, Image1, Image2, Image3];

    public static readonly string[] OutputFormats = ["jpeg", "png", "webp"];

    public static readonly HashSet<string> Known = new(StringComparer.OrdinalIgnoreCase)
    {
        Id, Prompt, Images, Image, Image1, Image2, Image3, NegativePrompt, Size, N, Seed, PromptExtend, Watermark, OutputFormat, Provider, Output, Matrix,
    };
}
