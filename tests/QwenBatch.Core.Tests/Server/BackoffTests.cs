using QwenBatch.Server;

namespace QwenBatch.Core.Tests.Server;

public sealed class BackoffTests
{
    [Theory]
    [InlineData(1, 0.0, 1000)]
    [InlineData(1, 1.0, 2000)]
    [InlineData(2, 0.5, 3000)]
    [InlineData(3, 0.0, 4000)]
    [InlineData(10, 1.0, 60000)]
    public void Delay_DoublesPerAttemptWithEqualJitterUpToTheCap(int attempt, double random, int expectedMs)
    {
        Backoff.Delay(attempt, TimeSpan.FromSeconds(2), TimeSpan.FromMinutes(1), random).ShouldBe(TimeSpan.FromMilliseconds(expectedMs));
    }

    [Fact]
    public void Delay_AttemptZero_IsRefused()
    {
        Should.Throw<ArgumentOutOfRangeException>(() => Backoff.Delay(0, TimeSpan.FromSeconds(1), TimeSpan.FromSeconds(10), 0.5));
    }
}
