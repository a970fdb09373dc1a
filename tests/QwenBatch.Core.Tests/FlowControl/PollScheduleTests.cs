using QwenBatch.FlowControl;
using QwenBatch.Server;

namespace QwenBatch.Core.Tests.FlowControl;

public sealed class PollScheduleTests
{
    private static readonly PollSchedule Schedule = new(new WorkerOptions { FirstPollDelay = TimeSpan.FromSeconds(1), MaxPollInterval = TimeSpan.FromSeconds(30) }, () => 0.5);

    [Fact]
    public void First_NothingLearned_IsTheFirstPollDelayOfAScout() =>
        Schedule.First(null).ShouldBe(TimeSpan.FromSeconds(1));

    [Fact]
    public void First_Learned_IsTheEstimate() =>
        Schedule.First(TimeSpan.FromSeconds(6.2)).ShouldBe(TimeSpan.FromSeconds(6.2));

    [Fact]
    public void Parked_NoPrior_IsTheMaxInterval() =>
        Schedule.Parked(null).ShouldBe(TimeSpan.FromSeconds(30));

    [Fact]
    public void Parked_Prior_IsThePrior() =>
        Schedule.Parked(TimeSpan.FromSeconds(6)).ShouldBe(TimeSpan.FromSeconds(6));

    [Theory]
    [InlineData(1, 1)]
    [InlineData(6, 1)]
    [InlineData(25, 2.5)]
    [InlineData(400, 30)]
    public void Next_NothingLearned_IsTheLateGapSoEveryCompletionIsSeenWithinTheGoal(double elapsedSeconds, double gapSeconds) =>
        Schedule.Next(TimeSpan.FromSeconds(elapsedSeconds), expected: null).ShouldBe(TimeSpan.FromSeconds(gapSeconds));

    [Fact]
    public void Next_BeforeTheEstimate_WaitsForIt() =>
        Schedule.Next(TimeSpan.FromSeconds(2), TimeSpan.FromSeconds(6)).ShouldBe(TimeSpan.FromSeconds(4));

    [Fact]
    public void Next_PastTheEstimate_IsTheLateGap() =>
        Schedule.Next(TimeSpan.FromSeconds(40), TimeSpan.FromSeconds(6)).ShouldBe(TimeSpan.FromSeconds(4));

    [Fact]
    public void GapBefore_AfterEarlierPolls_IsTheLateGap() =>
        Schedule.GapBefore(TimeSpan.FromSeconds(40), 3).ShouldBe(TimeSpan.FromSeconds(4));

    [Fact]
    public void GapBefore_FirstPoll_IsTheWholeTimeSinceTheSubmit() =>
        Schedule.GapBefore(TimeSpan.FromSeconds(6), 0).ShouldBe(TimeSpan.FromSeconds(6));

    [Theory]
    [InlineData(1.05, 0, false, true)]
    [InlineData(30, 0, false, false)]
    [InlineData(6, 0, false, false)]
    [InlineData(6, 0, true, true)]
    [InlineData(30, 2, false, true)]
    public void Measures_FirstPollOfAParkedEdit_IsNoMeasure(double dueSeconds, int polls, bool learned, bool expected) =>
        Schedule.Measures(TimeSpan.FromSeconds(dueSeconds), polls, learned ? TimeSpan.FromSeconds(6) : null).ShouldBe(expected);

    [Fact]
    public void FirstAwaitingWebhook_Learned_IsAQuarterPastTheExpectedCompletionPlusTheMargin() =>
        Schedule.FirstAwaitingWebhook(TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(15)).ShouldBe(TimeSpan.FromSeconds(25));

    [Fact]
    public void FirstAwaitingWebhook_NothingLearned_IsTheMaxIntervalPlusTheMargin() =>
        Schedule.FirstAwaitingWebhook(null, TimeSpan.FromSeconds(15)).ShouldBe(TimeSpan.FromSeconds(45));

    [Fact]
    public void NextAwaitingWebhook_IsNeverSoonerThanTheMargin()
    {
        Schedule.NextAwaitingWebhook(TimeSpan.FromSeconds(25), TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(15)).ShouldBe(TimeSpan.FromSeconds(15));
        Schedule.NextAwaitingWebhook(TimeSpan.FromSeconds(600), TimeSpan.FromSeconds(8), TimeSpan.FromSeconds(15)).ShouldBe(TimeSpan.FromSeconds(30));
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
    public void ObserveCompletion_ScoutSeenAfterPolls_LearnsTheMiddleOfTheLastGap()
    {
        var model = new LatencyModel();
        var key = LatencyModel.Key("odirouter", 1, null);

        // A scout unfinished at 6 s, finished at the poll due at 7 s: the middle of that gap, 6.5 s, not 7.
        model.ObserveCompletion(key, TimeSpan.FromSeconds(7), 6, Schedule.GapBefore(TimeSpan.FromSeconds(7), 6));

        model.Expected(key)!.Value.TotalSeconds.ShouldBe(6.5, tolerance: 1e-9);
    }
}
