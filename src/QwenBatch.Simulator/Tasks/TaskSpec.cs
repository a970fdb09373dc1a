namespace QwenBatch.Simulator.Tasks;

/// <summary>A validated submit, reduced to what shapes the simulated output.</summary>
internal sealed record TaskSpec(int Count, int Width, int Height, int? Seed, Images.OutputFormat Format = Images.OutputFormat.Png, bool Base64 = false);
