using System.Globalization;

namespace QwenBatch.Providers;

/// <summary>
/// What one provider accepts, from its API page: the one place that knows sizes, output counts, seed ranges, formats and
/// which optional fields exist. Clients check requests against it before sending; the manifest validator can call
/// <see cref="Check"/> so bad rows fail before anything is enqueued.
/// </summary>
public sealed record ProviderLimits(
    string Provider,
    int MinSide,
    int MaxSide,
    int MaxImages,
    int MaxOutputs,
    long MinSeed,
    long MaxSeed,
    IReadOnlyList<string> OutputFormats,
    bool TakesNegativePrompt,
    bool TakesPromptExtend,
    bool TakesWatermark,
    int SizeMultiple = 1)
{
    public const int MaxNegativePromptLength = 500;

    /// <summary>odirouter: sides 512–2048 (rounded to a multiple of 16 by the provider), 1–6 outputs, seed 0–2147483647, no output_format.</summary>
    public static ProviderLimits Odirouter { get; } = new(ProviderNames.Odirouter, 512, 2048, 3, 6, 0, int.MaxValue, [], true, true, true, SizeMultiple: 16);

    /// <summary>WaveSpeed: sides 256–1536, one output per task, seed -1 (random) … 2147483647, jpeg/png/webp.</summary>
    public static ProviderLimits WaveSpeed { get; } = new(ProviderNames.WaveSpeed, 256, 1536, 3, 1, -1, int.MaxValue, ["jpeg", "png", "webp"], false, false, false);

    /// <summary>The limits of a provider by name; the simulator speaks the odirouter API.</summary>
    public static ProviderLimits For(string provider) =>
        string.Equals(provider, ProviderNames.WaveSpeed, StringComparison.OrdinalIgnoreCase) ? WaveSpeed : Odirouter;

    /// <summary>
    /// Problems with a request for this provider, each "field: what was expected". <see cref="EditRequest.N"/> above
    /// <see cref="MaxOutputs"/> is not a problem here: the batch planner splits such rows into one job per output.
    /// </summary>
    public IReadOnlyList<string> Check(EditRequest request)
    {
        var problems = new List<string>();
        if (string.IsNullOrWhiteSpace(request.Prompt))
        {
            problems.Add("prompt: a non-empty prompt is required");
        }

        if (request.Images.Count is 0 || request.Images.Count > MaxImages)
        {
            problems.Add($"images: 1 to {MaxImages} images are required by {Provider}, got {request.Images.Count}");
        }

        if (request.Size is { } size && !TryParseSize(size, out _, out _))
        {
            problems.Add($"size: '{size}' is not allowed by {Provider}; expected W*H with each side from {MinSide} to {MaxSide}");
        }

        if (request.N < 1 || request.N > 6)
        {
            problems.Add($"n: {request.N} is not allowed; expected 1 to 6");
        }

        if (request.Seed is { } seed && (seed < MinSeed || seed > MaxSeed))
        {
            problems.Add($"seed: {seed} is not allowed by {Provider}; expected {MinSeed} to {MaxSeed}");
        }

        if (request.OutputFormat is { } format && !OutputFormats.Contains(format, StringComparer.OrdinalIgnoreCase))
        {
            problems.Add(OutputFormats.Count == 0
                ? $"output_format: {Provider} does not take an output format"
                : $"output_format: '{format}' is not allowed by {Provider}; expected {string.Join(", ", OutputFormats)}");
        }

        if (request.NegativePrompt is { } negative && (!TakesNegativePrompt || negative.Length > MaxNegativePromptLength))
        {
            problems.Add(TakesNegativePrompt
                ? $"negative_prompt: at most {MaxNegativePromptLength} characters are allowed"
                : $"negative_prompt: {Provider} does not take a negative prompt");
        }

        if (request.PromptExtend is not null && !TakesPromptExtend)
        {
            problems.Add($"prompt_extend: {Provider} does not take prompt_extend");
        }

        if (request.Watermark is not null && !TakesWatermark)
        {
            problems.Add($"watermark: {Provider} does not take watermark");
        }

        return problems;
    }

    /// <summary>Parses "W*H" (also "WxH") within this provider's side range.</summary>
    public bool TryParseSize(string text, out int width, out int height)
    {
        width = height = 0;
        var parts = text.Split('*', 'x', 'X');
        return parts.Length == 2
            && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out width)
            && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out height)
            && width >= MinSide && width <= MaxSide && height >= MinSide && height <= MaxSide;
    }

    /// <summary>The size as the wire wants it: "W*H".</summary>
    public string WireSize(string size) =>
        TryParseSize(size, out var w, out var h) ? string.Create(CultureInfo.InvariantCulture, $"{w}*{h}") : size;
}
