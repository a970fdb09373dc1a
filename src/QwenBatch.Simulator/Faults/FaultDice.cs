namespace QwenBatch.Simulator.Faults;

/// <summary>Thread-safe coin flips for fault injection, seeded by <see cref="SimulatorOptions.RandomSeed"/> when given.</summary>
internal sealed class FaultDice(int? seed)
{
    private readonly Lock _gate = new();
    private readonly Random _random = seed is { } s ? new Random(s ^ 0x5EED) : new Random();

    public bool Roll(double probability)
    {
        if (probability <= 0)
            return false;
        lock (_gate)
            return _random.NextDouble() < probability;
    }

    /// <summary>A duration uniform in [min, max]; no draw when they are equal, so a seeded run without the range is unchanged.</summary>
    public TimeSpan Between(TimeSpan min, TimeSpan max)
    {
        if (max <= min)
            return min;
        lock (_gate)
            return min + ((max - min) * _random.NextDouble());
    }
}
