using Microsoft.Extensions.Logging.Abstractions;
using QwenBatch.FlowControl;
using QwenBatch.Edits;
using QwenBatch.Providers;
using QwenBatch.Server;

namespace QwenBatch.Core.Tests.Server;

/// <summary>Budgets, cancel, timeouts, MaxInFlight and adaptive polling through the real engine on a fake clock.</summary>
public sealed class FlowControlTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    [Fact]
    public async Task RunAsync_BudgetForHalfTheJobs_NeverExceedsItAndHoldsTheRest()
    {
        await using var engine = new EngineHarness();
        var batch = await engine.ImportAsync(10, budget: 0.10m);

        var jobs = await engine.RunBatchAsync(batch);

        jobs.Count(j => j.State == EditState.Succeeded).ShouldBe(5);
        jobs.Where(j => j.State == EditState.Held).ShouldAllBe(j => j.Error!.StartsWith("held: the batch budget of $0.10 would be exceeded", StringComparison.Ordinal));
        jobs.Count(j => j.State == EditState.Held).ShouldBe(5);
        engine.Scripted.Accepted.ShouldBe(5);
        var stored = (await engine.Store.GetBatchAsync(batch.Id, CancellationToken.None))!;
        (stored.SpentUsd, stored.ReservedUsd).ShouldBe((0.10m, 0m));
    }

    [Fact]
    public async Task RunAsync_DailyBudgetAcrossBatches_NeverExceededHeldWithTheReasonAndResumedTheNextUtcDay()
    {
        await using var engine = new EngineHarness();
        engine.Account.DailyBudgetUsd = 0.10m;
        var morning = await engine.RunBatchAsync(await engine.ImportAsync(3, name: "morning"));
        var noon = await engine.ImportAsync(4, name: "noon");

        var jobs = await engine.RunBatchAsync(noon);

        morning.ShouldAllBe(j => j.State == EditState.Succeeded);
        jobs.Count(j => j.State == EditState.Succeeded).ShouldBe(2);
        jobs.Where(j => j.State == EditState.Held).ShouldAllBe(j =>
            j.Error!.StartsWith("held: the scripted daily budget of $0.10 would be exceeded on 2026-01-01 (UTC) (spent today $", StringComparison.Ordinal)
            && j.Error.EndsWith("this job needs up to $0.02); it resumes by itself after 00:00 UTC or when DailyBudgetUsd is raised", StringComparison.Ordinal));
        jobs.Count(j => j.State == EditState.Held).ShouldBe(2);
        engine.Scripted.Accepted.ShouldBe(5);
        var loop = new DailyBudgetLoop(engine.Store, engine.Providers, engine.Time, NullLogger<DailyBudgetLoop>.Instance);
        (await loop.ReleaseAsync(CancellationToken.None)).ShouldBe(0);

        engine.Time.Advance(TimeSpan.FromDays(1));
        (await loop.ReleaseAsync(CancellationToken.None)).ShouldBe(2);
        jobs = await engine.RunBatchAsync(noon);

        jobs.ShouldAllBe(j => j.State == EditState.Succeeded);
        var today = await engine.Store.GetDailySpendAsync(EngineHarness.Provider, CancellationToken.None);
        (today.Day, today.SpentUsd, today.ReservedUsd).ShouldBe((new DateOnly(2026, 1, 2), 0.04m, 0m));
    }

    [Theory]
    [InlineData("2026-03-04T12:00:00Z", 30)]
    [InlineData("2026-03-04T23:59:50Z", 11)]
    public void NextWait_NearMidnightUtc_WakesJustAfterIt(string now, int seconds) =>
        DailyBudgetLoop.NextWait(DateTimeOffset.Parse(now, System.Globalization.CultureInfo.InvariantCulture)).ShouldBe(TimeSpan.FromSeconds(seconds));

    [Fact]
    public async Task RunAsync_BudgetRaisedOnResume_HeldJobsFinish()
    {
        await using var engine = new EngineHarness();
        var batch = await engine.ImportAsync(4, budget: 0.04m);
        await engine.RunBatchAsync(batch);

        var resumed = await engine.ImportAsync(4, budget: 1m);
        var jobs = await engine.RunBatchAsync(resumed);

        jobs.ShouldAllBe(j => j.State == EditState.Succeeded);
        (await engine.Store.GetBatchAsync(batch.Id, CancellationToken.None))!.SpentUsd.ShouldBe(0.08m);
    }

    [Fact]
    public async Task RunAsync_CancelFromAnotherProcess_ReachesTheProviderAndNothingIsSubmittedAfter()
    {
        await using var engine = new EngineHarness(new ScriptedProvider { PollsBeforeDone = 1000 });
        engine.Options.Concurrency = 2;
        var batch = await engine.ImportAsync(6);
        var run = engine.Server().RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        await engine.RunClockUntilAsync(async () =>
            (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None)).Count(j => j.State == EditState.AtProvider) >= 2, Tick);
        var acceptedBeforeCancel = engine.Scripted.Accepted;

        await engine.NewStore().RequestCancelAsync(batch.Id, CancellationToken.None);
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;

        var jobs = await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None);
        jobs.ShouldAllBe(j => j.State == EditState.Cancelled);
        engine.Scripted.Accepted.ShouldBe(acceptedBeforeCancel);
        engine.Scripted.CancelledRequests.Count.ShouldBe(acceptedBeforeCancel);
        jobs.Where(j => j.RequestId != null).ShouldAllBe(j => j.Error == "cancelled by an operator; the provider accepted the cancel");
    }

    [Fact]
    public async Task RunAsync_TaskLongerThanJobTimeout_CancelledAtProviderAndFailedWithReason()
    {
        await using var engine = new EngineHarness(new ScriptedProvider { PollsBeforeDone = 1000 });
        engine.Options.JobTimeout = TimeSpan.FromSeconds(20);
        var batch = await engine.ImportAsync(1);

        var job = (await engine.RunBatchAsync(batch))[0];

        job.State.ShouldBe(EditState.Failed);
        job.Error.ShouldBe("timed out: still at the provider after the 00:00:20 Worker:JobTimeout; cancel sent: the provider accepted the cancel");
        engine.Scripted.CancelledRequests.ShouldBe([job.RequestId!]);
    }

    [Fact]
    public async Task RunAsync_MaxInFlight_NeverMoreTasksAtTheProviderAtOnce()
    {
        await using var engine = new EngineHarness(new ScriptedProvider { PollsBeforeDone = 3 });
        engine.Account.MaxInFlight = 2;
        var batch = await engine.ImportAsync(12);

        var first = engine.Server().RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        var second = engine.Server(engine.NewStore()).RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        await engine.RunClockUntilAsync(() => Task.FromResult(first.IsCompleted && second.IsCompleted), Tick);
        await Task.WhenAll(first, second);

        engine.Scripted.MaxInFlight.ShouldBe(2);
        (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None)).ShouldAllBe(j => j.State == EditState.Succeeded);
    }

    [Fact]
    public async Task RunAsync_Throttled_WaitsWithoutSpendingAnAttempt()
    {
        await using var engine = new EngineHarness();
        engine.Scripted.FailNextSubmit(new ProviderException(ProviderErrorKind.Throttled, "allowance booked ahead", retryAfter: TimeSpan.FromSeconds(3)));
        var batch = await engine.ImportAsync(1);

        var job = (await engine.RunBatchAsync(batch))[0];

        job.State.ShouldBe(EditState.Succeeded);
        (job.UncertainSubmits, job.AcceptedSubmits).ShouldBe((0, 1));
        (await engine.Store.GetHistoryAsync(job.Id, CancellationToken.None)).ShouldNotContain(h => h.Reason != null && h.Reason.Contains("failed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_SixSecondTasksOnceLearned_AtMostThreePollsPerJobAndLittleLag()
    {
        var time = new Testing.Time.ManualTimeProvider();
        var provider = new ScriptedProvider { Clock = time, TaskLatency = TimeSpan.FromSeconds(6) };
        await using var engine = new EngineHarness(provider, time);
        engine.Options.Concurrency = 8;
        engine.Options.FirstPollDelay = TimeSpan.FromMilliseconds(500);

        // A first small batch teaches the engine how long such tasks take (it probes: ~5 polls each).
        await engine.RunBatchAsync(await engine.ImportAsync(4, "warm-up"), quiesce: true);
        var pollsBefore = provider.PollCalls;
        provider.CompletionLags.Clear();

        await engine.RunBatchAsync(await engine.ImportAsync(40, "nightly"), quiesce: true);

        // The goal is "noticed no later than 10% + 1 s after completion"; the fake clock moves in ticks, so a completion
        // can only be seen at the next tick: one tick is the measurement's resolution, not slack for the engine.
        ((provider.PollCalls - pollsBefore) / 40.0).ShouldBeLessThanOrEqualTo(3.0);
        provider.CompletionLags.Max().ShouldBeLessThanOrEqualTo(TimeSpan.FromSeconds((6 * 0.1) + 1) + Tick);
    }

    [Fact]
    public async Task RunAsync_NewProcessOnAStoreThatLearned_StartsWarmAtMostThreePollsPerJobAndLittleLag()
    {
        var time = new Testing.Time.ManualTimeProvider();
        var provider = new ScriptedProvider { Clock = time, TaskLatency = TimeSpan.FromSeconds(6) };
        await using var engine = new EngineHarness(provider, time);
        engine.Options.Concurrency = 8;
        engine.Options.FirstPollDelay = TimeSpan.FromMilliseconds(500);
        await engine.RunBatchAsync(await engine.ImportAsync(8, "yesterday"), quiesce: true);
        var pollsBefore = provider.PollCalls;
        provider.CompletionLags.Clear();

        // A process that has seen no task itself: all it knows comes from the store.
        var fresh = new LatencyModel();
        await engine.RunBatchAsync(await engine.ImportAsync(40, "tonight"), quiesce: true, latency: fresh);

        ((provider.PollCalls - pollsBefore) / 40.0).ShouldBeLessThanOrEqualTo(3.0);
        provider.CompletionLags.Max().ShouldBeLessThanOrEqualTo(TimeSpan.FromSeconds((6 * 0.1) + 1) + Tick);
        (await engine.Store.MergeLatenciesAsync([], CancellationToken.None)).ShouldHaveSingleItem().Samples.ShouldBe(48);
    }

    [Fact]
    public async Task RunAsync_LearningWorker_SavesWhatItLearnedEverySyncIntervalNotPerJob()
    {
        var time = new Testing.Time.ManualTimeProvider();
        var provider = new ScriptedProvider { Clock = time, TaskLatency = TimeSpan.FromSeconds(6) };
        await using var engine = new EngineHarness(provider, time);
        engine.Options.LatencySyncInterval = TimeSpan.FromMinutes(10);
        var batch = await engine.ImportAsync(4, "long");
        using var stopping = new CancellationTokenSource();
        var worker = engine.Server().RunAsync(ServerScope.Everything, stopping.Token);
        // Quiesced: a poll the engine answers late (a loaded machine) is rightly not learned from, and this test counts.
        await engine.RunClockUntilAsync(() => engine.SettledAsync(batch.Id), Tick, quiesce: true);

        // Every job is done and learned from, and nothing was written for any of them yet.
        engine.Latency.Expected(LatencyModel.Key(EngineHarness.Provider, 1, null)).ShouldNotBeNull();
        (await engine.Store.MergeLatenciesAsync([], CancellationToken.None)).ShouldBeEmpty();

        // At the sync interval one write carries all four completions.
        await engine.RunClockUntilAsync(async () => (await engine.Store.MergeLatenciesAsync([], CancellationToken.None)).Count == 1, TimeSpan.FromSeconds(30));
        var saved = (await engine.Store.MergeLatenciesAsync([], CancellationToken.None)).Single();
        (saved.Provider, saved.N, saved.Size, saved.Samples).ShouldBe((EngineHarness.Provider, 1, "", 4L));
        await stopping.CancelAsync();
        await engine.RunClockUntilAsync(() => Task.FromResult(worker.IsCompleted), Tick);
        await worker;
    }
}
