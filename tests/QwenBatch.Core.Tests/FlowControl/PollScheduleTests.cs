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
    public void GapBefore_ProbedButLearnedMeanwhile_IsStillTheProbingGap() =>
        Schedule.GapBefore(TimeSpan.FromSeconds(8.5), 3, expected: TimeSpan.FromSeconds(6)).ShouldBe(TimeSpan.FromSeconds(3.375));

    [Fact]
    public void GapBefore_LateTaskLearned_IsTheLateGapWhenLarger() =>
        Schedule.GapBefore(TimeSpan.FromSeconds(40), 1, expected: TimeSpan.FromSeconds(6)).ShouldBe(TimeSpan.FromSeconds(4));

    [Fact]
    public void GapBefore_AfterAFirstPollAtTheExpectedTime_ErrsTowardsTheLargerProbingGap() =>
        Schedule.GapBefore(TimeSpan.FromSeconds(7), 1, expected: TimeSpan.FromSeconds(6)).ShouldBe(TimeSpan.FromSeconds(1.5));

    [Fact]
    public void FirstAwaitingWebhook_Learned_IsAQuarterPastTheExpectedCompletionPlusTheMargin() =>
        Schedule.FirstAwaitingWebhook(TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(15)).ShouldBe(TimeSpan.FromSeconds(25));

    [Fact]
    public void FirstAwaitingWebhook_NothingLearned_IsTheMaxIntervalPlusTheMargin() =>
        Schedule.FirstAwaitingWebhook(null, TimeSpan.FromSeconds(15)).ShouldBe(TimeSpan.FromSeconds(45));

    [Fact]
    public void NextAwaitingWebhook_IsNeverSoonerThanTheMargin()
    {
        Schedule.NextAwaitingWebhook(TimeSpan.FromSeconds(25), 1, TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(15)).ShouldBe(TimeSpan.FromSeconds(15));
        Schedule.NextAwaitingWebhook(TimeSpan.FromSeconds(600), 3, TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(15)).ShouldBe(TimeSpan.FromSeconds(30));
    }

    [Theory]
    [InlineData(6, 1.5, true)]
    [InlineData(6, 2.9, true)]
    [InlineData(1, 1.9, true)]
    [InlineData(1, 80, false)]
    [InlineData(8, 4.5, false)]
    public void RanOnTime_PollAnsweredLate_CountsOnlyWithinTheSlack(double dueSeconds, double lateSeconds, bool expected) =>
        Schedule.RanOnTime(TimeSpan.FromSeconds(dueSeconds), TimeSpan.FromSeconds(lateSeconds)).ShouldBe(expected);

    [Fact]
    public void ObserveCompletion_SeenAfterProbing_LearnsTheMiddleOfTheLastGap()
    {
        var model = new LatencyModel();
        var key = LatencyModel.Key("odirouter", 1, null);

        // Unfinished at 4.75 s, finished at the poll due at 8.125 s: the middle of that gap, 6.44 s, not 8.
        model.ObserveCompletion(key, TimeSpan.FromSeconds(8.125), 3, Schedule.GapBefore(TimeSpan.FromSeconds(8.125), 3, null));

        model.Expected(key)!.Value.TotalSeconds.ShouldBe(6.4375, tolerance: 1e-9);
    }
}
