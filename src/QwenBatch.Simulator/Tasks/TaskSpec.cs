namespace QwenBatch.Simulator.Tasks;

/// <summary>A validated submit, reduced to what shapes the simulated output.</summary>
internal sealed record TaskSpec(int Count, int Width, int Height, int? Seed);
