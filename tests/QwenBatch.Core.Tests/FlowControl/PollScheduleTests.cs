using QwenBatch.FlowControl;
using QwenBatch.Server;

namespace QwenBatch.Core.Tests.FlowControl;

public sealed class PollScheduleTests
{
    private static readonly PollSchedule Schedule = new(new WorkerOptions { FirstPollDelay = TimeSpan.FromSeconds(1), MaxPollInterval = TimeSpan.FromSeconds(30) }, () => 0.5);

    [Fact]
    public void GapBefore_ProbingNothingLearned_IsTheLastProbingGap() =>
        Schedule.GapBefore(TimeSpan.FromSeconds(8.125), 3, expected: null).ShouldBe(TimeSpan.FromSeconds(3.375));

    [Fact]
    public void GapBefore_OnTheProbingSeriesButLearnedMeanwhile_IsStillTheProbingGap() =>
        Schedule.GapBefore(TimeSpan.FromSeconds(8.5), 3, expected: TimeSpan.FromSeconds(6)).ShouldBe(TimeSpan.FromSeconds(3.375));

    [Fact]
    public void GapBefore_AfterAFirstPollAtTheExpectedTime_IsTheLateGap() =>
        Schedule.GapBefore(TimeSpan.FromSeconds(7), 1, expected: TimeSpan.FromSeconds(6)).ShouldBe(TimeSpan.FromSeconds(1));

    [Fact]
    public void ObserveCompletion_SeenAfterProbing_LearnsTheMiddleOfTheLastGap()
    {
        var model = new LatencyModel();
        var key = LatencyModel.Key("odirouter", 1, null);

        // Unfinished at 4.75 s, finished at the poll due at 8.125 s: 6.44 s is the best guess, not 8.
        model.ObserveCompletion(key, TimeSpan.FromSeconds(8.125), 3, Schedule.GapBefore(TimeSpan.FromSeconds(8.125), 3, null));

        model.Expected(key)!.Value.TotalSeconds.ShouldBe(6.4375, tolerance: 1e-9);
    }
}
