using QwenBatch.Providers;

namespace QwenBatch.Manifests;

/// <summary>
/// The request-field ranges a provider's API documents (../shared/providers/). These are the API's contract, not account
/// limits or prices, which stay in configuration.
/// </summary>
/// <param name="MinSide">The smallest output side in pixels.</param>
/// <param name="MaxSide">The largest output side in pixels.</param>
/// <param name="SizeMultiple">The provider rounds each side to a multiple of this (1 = no rounding).</param>
/// <param name="MinSeed">The smallest seed (-1 = random on WaveSpeed).</param>
internal sealed record ProviderFieldLimits(string Name, int MinSide, int MaxSide, int SizeMultiple, long MinSeed)
{
    public static readonly ProviderFieldLimits Odirouter = new(ProviderNames.Odirouter, 512, 2048, 16, 0);

    public static readonly ProviderFieldLimits WaveSpeed = new(ProviderNames.WaveSpeed, 256, 1536, 1, -1);

    /// <summary>The simulator speaks the odirouter API, so it takes odirouter's limits.</summary>
    public static ProviderFieldLimits For(string provider) =>
        provider.Equals(ProviderNames.WaveSpeed, StringComparison.OrdinalIgnoreCase) ? WaveSpeed : Odirouter;
}
