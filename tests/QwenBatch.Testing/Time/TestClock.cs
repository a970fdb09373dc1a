using Microsoft.Extensions.Time.Testing;

namespace QwenBatch.Testing.Time;

/// <summary>The tests' clock: one that moves only when a test advances it, from a fixed start so days and due times are exact.</summary>
public static class TestClock
{
    public static readonly DateTimeOffset Start = new(2026, 1, 1, 0, 0, 0, TimeSpan.Zero);

    public static FakeTimeProvider Create() => new(Start);
}
