using QwenBatch.Edits;
using QwenBatch.FlowControl;

namespace QwenBatch.Core.Tests.FlowControl;

public sealed class WaveLessonsTests
{
    private static readonly LatencyKey Key = LatencyModel.Key("odirouter", 2, "1024*1024");

    private static readonly EditRecord Edit = new()
    {
        Id = 7,
        BatchId = 3,
        Key = "e7",
        ContentHash = "h",
        State = EditState.AtProvider,
        Provider = "odirouter",
        Spec = new EditSpec { Prompt = "p", Images = ["https://example.test/a.png"], N = 2, Size = "1024*1024" },
        DueAt = QwenBatch.Testing.Time.TestClock.Start,
        CreatedAt = QwenBatch.Testing.Time.TestClock.Start,
    };

    [Fact]
    public void Offer_FirstLessonOfAnUnlearnedWave_PullsItsParkedEditsToTheEstimate()
    {
        var pull = new WaveLessons().Offer(Edit, Key, TimeSpan.FromSeconds(6), scheduledWith: null).ShouldNotBeNull();

        pull.ShouldBe(new(3, "odirouter", 2, "1024*1024", TimeSpan.FromSeconds(6), TimeSpan.FromSeconds(7.5)));
    }

    [Fact]
    public void Offer_WaveAlreadyTold_NothingUntilALessonNotablySooner()
    {
        var lessons = new WaveLessons();
        lessons.Offer(Edit, Key, TimeSpan.FromSeconds(6), null);

        lessons.Offer(Edit, Key, TimeSpan.FromSeconds(5.5), null).ShouldBeNull();
        lessons.Offer(Edit, Key, TimeSpan.FromSeconds(4.5), null).ShouldNotBeNull().Within.ShouldBe(TimeSpan.FromSeconds(4.5));
        lessons.Offer(Edit with { BatchId = 4 }, Key, TimeSpan.FromSeconds(6), null).ShouldNotBeNull();
    }

    [Fact]
    public void Offer_WaveScheduledWithALearnedEstimate_NothingForTheUsualCompletion() =>
        new WaveLessons().Offer(Edit, Key, TimeSpan.FromSeconds(5.9), scheduledWith: TimeSpan.FromSeconds(6)).ShouldBeNull();
}
