using QwenBatch.FlowControl;

namespace QwenBatch.Core.Tests.FlowControl;

/// <summary>
/// The polling goals of issue #25 for a wave of 40 tasks of 6–6.5 s submitted at 40 requests/s by two processes: at
/// most 3 status calls per job on average, and every completion seen at most 10% of its task's time + 1 s late —
/// from an empty store (cold), with a configured prior, and with a learned estimate (warm).
/// </summary>
public sealed class ColdStartTests
{
    private const int Jobs = 40;

    [Fact]
    public async Task Wave_EmptyStore_AtMostThreeStatusCallsAJobAndEveryCompletionSeenWithinTheGoal()
    {
        await using var rig = new WaveRig(processes: 2);

        await rig.SettleAsync(await rig.SubmitAsync(Jobs, requestsPerSecond: 40));

        ShouldMeetTheGoals(rig);
    }

    [Fact]
    public async Task Wave_ConfiguredPrior_AtMostThreeStatusCallsAJobAndEveryCompletionSeenWithinTheGoal()
    {
        await using var rig = new WaveRig(processes: 2, prior: TimeSpan.FromSeconds(6));

        await rig.SettleAsync(await rig.SubmitAsync(Jobs, requestsPerSecond: 40));

        ShouldMeetTheGoals(rig);
    }

    [Fact]
    public async Task Wave_ScoutsStuckWithAPrior_TheRestSeenAtThePriorWithinTheGoal()
    {
        // The process's two scouts take a minute, so no lesson comes while the wave runs: without a prior the rest would
        // wait the max interval (30 s) for their first poll; with one they are polled at it.
        await using var rig = new WaveRig(processes: 1, prior: TimeSpan.FromSeconds(6.5));
        rig.Tasks.Stuck = 2;

        await rig.SettleAsync(await rig.SubmitAsync(Jobs, requestsPerSecond: 40));

        var wave = rig.Tasks.Completions.Where(c => c.Latency < TimeSpan.FromSeconds(10)).ToList();
        wave.Count.ShouldBe(Jobs - 2);
        foreach (var (latency, lag) in wave)
        {
            lag.ShouldBeLessThanOrEqualTo((latency * 0.1) + TimeSpan.FromSeconds(1), $"a {latency.TotalSeconds:0.00} s task seen late");
        }
    }

    [Fact]
    public async Task Wave_StoreThatLearned_StartsWarmWithinTheGoals()
    {
        var models = new[] { new LatencyModel(), new LatencyModel() };
        foreach (var model in models)
        {
            // What a process loads from a store that saw 6–6.5 s tasks (see LatencyMemory).
            model.Adopt([], [new Storage.ProviderLatency(WaveRig.Provider, 1, "", 6.1, 48)]);
        }

        await using var rig = new WaveRig(processes: 2, models: models);

        await rig.SettleAsync(await rig.SubmitAsync(Jobs, requestsPerSecond: 40));

        ShouldMeetTheGoals(rig);
        ((double)rig.Tasks.StatusCalls / Jobs).ShouldBeLessThanOrEqualTo(2.0);
    }

    private static void ShouldMeetTheGoals(WaveRig rig)
    {
        rig.Tasks.Completions.Count.ShouldBe(Jobs);
        ((double)rig.Tasks.StatusCalls / Jobs).ShouldBeLessThanOrEqualTo(3.0, "status calls per job");
        foreach (var (latency, lag) in rig.Tasks.Completions)
        {
            lag.ShouldBeLessThanOrEqualTo((latency * 0.1) + TimeSpan.FromSeconds(1), $"a {latency.TotalSeconds:0.00} s task seen late");
        }
    }
}
