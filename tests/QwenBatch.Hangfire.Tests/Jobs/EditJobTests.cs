using Hangfire.States;
using QwenBatch.Edits;
using QwenBatch.Hangfire.States;
using QwenBatch.Hangfire.Tests.Support;

namespace QwenBatch.Hangfire.Tests.Jobs;

/// <summary>Edits run end to end as Hangfire jobs, on each backend.</summary>
public sealed class EditJobTests
{
    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task Batch_EveryEditSucceedsWithOneSubmitAndItsJobTellsTheStory(Backend backend)
    {
        await using var engine = await TestEngine.StartAsync(new EngineSetup(backend));
        await engine.StartServerAsync();
        var batch = await engine.ImportAsync("story", 12);

        var edits = await engine.WaitSettledAsync(batch.Id);

        edits.ShouldAllBe(e => e.State == EditState.Succeeded && e.Files.Count == 1 && e.AcceptedSubmits == 1 && e.UncertainSubmits == 0);
        edits.ShouldAllBe(e => File.Exists(Path.Combine(batch.StorageDir, e.Files[0].Path)));
        (await engine.SimulatorStatsAsync()).Submits.ShouldBe(12);
        foreach (var edit in edits)
        {
            engine.JobStates(edit.HangfireJob!).ShouldBe(
                [EnqueuedState.StateName, ProcessingState.StateName, AtProviderState.StateName, EnqueuedState.StateName, ProcessingState.StateName, SucceededState.StateName],
                $"edit {edit.Id}, job {edit.HangfireJob}");
        }

        var details = engine.Storage.GetMonitoringApi().JobDetails(edits[0].HangfireJob!);
        var atProvider = details.History.Single(h => h.StateName == AtProviderState.StateName);
        atProvider.Data["RequestId"].ShouldBe(edits[0].RequestId);
        details.History.First(h => h.StateName == EnqueuedState.StateName).Reason.ShouldStartWith("download: the provider finished");
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task SubmitRejected_EditFailsAtOnceWithTheProvidersMessageAndTheJobIsNotRetried(Backend backend)
    {
        await using var engine = await TestEngine.StartAsync(new EngineSetup(backend));
        await engine.StartServerAsync();

        // Seven outputs: more than the provider allows (the manifest validator would refuse it; the store takes it as given).
        var batch = await engine.ImportAsync("rejected", 1, n: 7);

        var edit = (await engine.WaitSettledAsync(batch.Id)).Single();

        edit.State.ShouldBe(EditState.Failed);
        edit.Error.ShouldNotBeNull().ShouldContain("HTTP 400 n: an integer between 1 and 6 was expected");
        await WaitForJobStateAsync(engine, edit.HangfireJob!, FailedState.StateName);
        engine.JobStates(edit.HangfireJob!).Count(s => s == ScheduledState.StateName).ShouldBe(0);
    }

    [Fact]
    public async Task InputImageGoneBeforeItsSubmit_EditEndsFailedNamingTheFile_NothingSentAndNoEndlessRetry()
    {
        var setup = new EngineSetup(Backend.Postgres)
        {
            Hangfire = new() { WorkerCount = 2, SchedulePollingInterval = TimeSpan.FromSeconds(1) },
            Worker = new() { MaxAttempts = 2, RetryBaseDelay = TimeSpan.FromMilliseconds(100), RetryMaxDelay = TimeSpan.FromMilliseconds(200) },
        };
        await using var engine = await TestEngine.StartAsync(setup);
        await engine.StartServerAsync();

        // The manifest's validator saw the file; it was deleted before the edit's submit read it.
        var gone = Path.Combine(engine.Output, "gone", "deleted-after-import.png");
        var batch = await engine.ImportAsync("gone", 1, image: gone);

        var settled = (await engine.WaitSettledAsync(batch.Id)).Single();

        settled.State.ShouldBe(EditState.Failed);
        settled.Error.ShouldNotBeNull().ShouldContain("deleted-after-import.png");
        await WaitForJobStateAsync(engine, settled.HangfireJob!, FailedState.StateName);
        (await engine.SimulatorStatsAsync()).Submits.ShouldBe(0);
    }

    [Fact]
    public async Task ThousandEditsAtTheProviderAtOnce_EightWorkersHoldNoneOfThemAndAllSucceed()
    {
        var setup = new EngineSetup(Backend.Postgres)
        {
            // Tasks long enough that the whole batch is submitted before the first finishes, however busy the machine.
            Simulator = new() { LatencyMin = TimeSpan.FromSeconds(90), LatencyMax = TimeSpan.FromSeconds(95), MaxConcurrent = 5000 },
            Hangfire = new() { WorkerCount = 8, SchedulePollingInterval = TimeSpan.FromSeconds(1) },
            Worker = new() { FirstPollDelay = TimeSpan.FromSeconds(85), QueuedPerWorker = 100, FallbackPollInterval = TimeSpan.FromMilliseconds(500) },
        };
        await using var engine = await TestEngine.StartAsync(setup);
        await engine.StartServerAsync();
        var batch = await engine.ImportAsync("thousand", 1000);

        // Most of the batch is at the provider at once: parked, no Hangfire worker waiting on it.
        var patience = TimeSpan.FromMinutes(4);
        // The last job moves to AtProvider just after its edit does, so the two are read together until both hold.
        await engine.WaitForAsync(
            batch.Id,
            edits => edits.All(e => e.State == EditState.AtProvider) && engine.Storage.GetMonitoringApi().ProcessingCount() == 0,
            "had every edit at the provider at once with no Hangfire job processing (an edit at the provider holds no worker)",
            patience);

        var settled = await engine.WaitSettledAsync(batch.Id, patience);
        settled.Count(e => e.State == EditState.Succeeded).ShouldBe(1000);
        (await engine.SimulatorStatsAsync()).Submits.ShouldBe(1000);
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task BatchBudgetForHalf_NeverExceededTheRestHeldWithoutAHangfireJob(Backend backend)
    {
        await using var engine = await TestEngine.StartAsync(new EngineSetup(backend));
        await engine.StartServerAsync();
        var batch = await engine.ImportAsync("budget", 10, budget: 0.10m);

        var edits = await engine.WaitSettledAsync(batch.Id);

        edits.Count(e => e.State == EditState.Succeeded).ShouldBe(5);
        var held = edits.Where(e => e.State == EditState.Held).ToList();
        held.Count.ShouldBe(5);
        held.ShouldAllBe(e => e.HangfireJob == null && e.Error!.Contains("batch budget of $0.10"));
        (await engine.SimulatorStatsAsync()).ChargedUsd.ShouldBeLessThanOrEqualTo(0.10m);
    }

    [Theory]
    [InlineData(Backend.Sqlite)]
    [InlineData(Backend.Postgres)]
    public async Task LargeBacklog_PendingEditsHaveNoHangfireJobAndTheQueueStaysWithinTheWindow(Backend backend)
    {
        var setup = new EngineSetup(backend)
        {
            Simulator = new() { LatencyMin = TimeSpan.FromMilliseconds(200), LatencyMax = TimeSpan.FromMilliseconds(300), MaxConcurrent = 5000 },
            Hangfire = new() { WorkerCount = 4, SchedulePollingInterval = TimeSpan.FromSeconds(1) },
            Worker = new() { QueuedPerWorker = 2, FirstPollDelay = TimeSpan.FromMilliseconds(200), FallbackPollInterval = TimeSpan.FromMilliseconds(200) },
        };
        await using var engine = await TestEngine.StartAsync(setup);
        await engine.StartServerAsync();
        var batch = await engine.ImportAsync("backlog", 400);

        var mostQueued = 0;
        var sawBacklog = false;
        while (!(await engine.Store.GetProgressAsync(batch.Id, CancellationToken.None)).IsSettled)
        {
            var edits = await engine.Store.GetEditsAsync(batch.Id, CancellationToken.None);
            mostQueued = Math.Max(mostQueued, edits.Count(e => e.State == EditState.Queued));
            var pending = edits.Where(e => e.State == EditState.Pending).ToList();
            pending.ShouldAllBe(e => e.HangfireJob == null, "a backlog edit never fed has no Hangfire job");
            sawBacklog |= pending.Count > 100;
            await Task.Delay(50);
        }

        sawBacklog.ShouldBeTrue("the run should have been caught with a backlog in QwenBatch's tables");
        mostQueued.ShouldBeLessThanOrEqualTo(4 * 2, "the feeder keeps at most QueuedPerWorker edits queued per worker of the fleet");
        (await engine.Store.GetEditsAsync(batch.Id, CancellationToken.None)).ShouldAllBe(e => e.State == EditState.Succeeded);
    }

    private static async Task WaitForJobStateAsync(TestEngine engine, string jobId, string state)
    {
        for (var i = 0; i < 300 && engine.JobState(jobId)?.Name != state; i++)
        {
            await Task.Delay(100);
        }

        engine.JobState(jobId)?.Name.ShouldBe(state);
    }
}
