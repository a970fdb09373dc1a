using QwenBatch.FlowControl;
using QwenBatch.Storage;

namespace QwenBatch.Core.Tests.FlowControl;

public sealed class LatencyModelTests
{
    private static readonly LatencyKey Key = LatencyModel.Key("odirouter", 2, "1024*1024");

    [Theory]
    [InlineData(null, "")]
    [InlineData("1024*1024", "<=1MP")]
    [InlineData("1280x768", "<=1MP")]
    [InlineData("1536*1024", "<=2MP")]
    [InlineData("2048*2048", "<=4MP")]
    [InlineData("512*512", "<=0.25MP")]
    [InlineData(" Auto ", "auto")]
    public void SizeClass_Sizes_GroupedByPixelsInPowersOfTwo(string? size, string expected) =>
        LatencyKey.SizeClass(size).ShouldBe(expected);

    [Fact]
    public void Observe_OneOutlier_MovesTheEstimateAtMostTowardsTwiceIt()
    {
        var model = new LatencyModel();
        model.Observe(Key, TimeSpan.FromSeconds(6));

        model.Observe(Key, TimeSpan.FromSeconds(600));

        // 6 + 0.2 × (12 − 6): the stuck task counts as a 12 s one.
        model.Expected(Key).ShouldBe(TimeSpan.FromSeconds(7.2));
    }

    [Fact]
    public void Unsaved_AfterObservations_CountsThemUntilAdoptedBack()
    {
        var model = new LatencyModel();
        model.Observe(Key, TimeSpan.FromSeconds(6));
        model.Observe(Key, TimeSpan.FromSeconds(6));

        var unsaved = model.Unsaved();
        unsaved.ShouldBe([new ProviderLatency("odirouter", 2, "<=1MP", 6, 2)]);
        model.Adopt(unsaved, [new ProviderLatency("odirouter", 2, "<=1MP", 5, 30)]);

        model.Unsaved().ShouldBeEmpty();
        model.Expected(Key).ShouldBe(TimeSpan.FromSeconds(5));
    }

    [Fact]
    public void Adopt_EstimateThatLearnedMoreMeanwhile_KeepsItsOwnUntilTheNextSave()
    {
        var model = new LatencyModel();
        model.Observe(Key, TimeSpan.FromSeconds(6));
        var unsaved = model.Unsaved();
        model.Observe(Key, TimeSpan.FromSeconds(6));

        model.Adopt(unsaved, [new ProviderLatency("odirouter", 2, "<=1MP", 9, 40), new ProviderLatency("wavespeed", 1, "", 3, 5)]);

        model.Expected(Key).ShouldBe(TimeSpan.FromSeconds(6));
        model.Unsaved().Single().Samples.ShouldBe(1);
        model.Expected(LatencyModel.Key("wavespeed", 1, null)).ShouldBe(TimeSpan.FromSeconds(3));
    }
}
