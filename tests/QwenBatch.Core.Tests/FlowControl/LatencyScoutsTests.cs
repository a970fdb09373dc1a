using QwenBatch.FlowControl;
using QwenBatch.Server;
using QwenBatch.Testing.Time;

namespace QwenBatch.Core.Tests.FlowControl;

public sealed class LatencyScoutsTests
{
    private static readonly LatencyKey Key = LatencyModel.Key("odirouter", 1, null);

    [Fact]
    public void Enlist_WaveOfAnUnlearnedKey_OnlyTheFirstTwoScout()
    {
        var scouts = new LatencyScouts(new WorkerOptions(), TestClock.Create());

        var enlisted = Enumerable.Range(0, 40).Select(_ => scouts.Enlist(Key)).ToList();

        enlisted.Take(2).ShouldAllBe(s => s);
        enlisted.Skip(2).ShouldAllBe(s => !s);
    }

    [Fact]
    public void Enlist_KeyStillUnlearnedAMaxPollIntervalAfterItsLastScout_OneMoreScouts()
    {
        var time = TestClock.Create();
        var scouts = new LatencyScouts(new WorkerOptions { MaxPollInterval = TimeSpan.FromSeconds(30) }, time);
        scouts.Enlist(Key);
        scouts.Enlist(Key);
        time.Advance(TimeSpan.FromSeconds(29));
        scouts.Enlist(Key).ShouldBeFalse();

        time.Advance(TimeSpan.FromSeconds(1));

        scouts.Enlist(Key).ShouldBeTrue();
        scouts.Enlist(Key).ShouldBeFalse();
    }

    [Fact]
    public void Enlist_EachKey_HasScoutsOfItsOwn()
    {
        var scouts = new LatencyScouts(new WorkerOptions(), TestClock.Create());
        scouts.Enlist(Key);
        scouts.Enlist(Key);

        scouts.Enlist(LatencyModel.Key("odirouter", 2, null)).ShouldBeTrue();
        scouts.Enlist(Key).ShouldBeFalse();
    }
}
