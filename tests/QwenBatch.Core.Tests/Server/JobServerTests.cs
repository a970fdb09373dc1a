using QwenBatch.Edits;
using QwenBatch.Outputs;
using QwenBatch.Providers;
using QwenBatch.Server;
using QwenBatch.Storage;

namespace QwenBatch.Core.Tests.Server;

public sealed class JobServerTests
{
    private static readonly TimeSpan Tick = TimeSpan.FromMilliseconds(250);

    [Fact]
    public async Task RunAsync_Batch_EveryJobSucceedsWithItsOutput()
    {
        await using var engine = new EngineHarness(new ScriptedProvider { PollsBeforeDone = 3 });
        var batch = await engine.ImportAsync(10);
        using var stop = new CancellationTokenSource();

        var run = engine.Server().RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), stop.Token);
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;

        var jobs = await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None);
        jobs.ShouldAllBe(j => j.State == EditState.Succeeded && j.AcceptedSubmits == 1 && j.UncertainSubmits == 0);
        jobs.ShouldAllBe(j => j.Files.Count == 1 && File.Exists(Path.Combine(batch.StorageDir, j.Files[0].Path)));
        engine.Scripted.Accepted.ShouldBe(10);
        (await engine.Store.GetProgressAsync(batch.Id, CancellationToken.None)).SpentUsd.ShouldBe(0.20m);
    }

    [Fact]
    public async Task RunAsync_StepWaitingOnlyToGiveItsJobBack_ItsSlotTakesTheNextJobButNoMore()
    {
        await using var engine = new EngineHarness();
        engine.Options.Concurrency = 1;
        var batch = await engine.ImportAsync(3);
        var jobs = await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);

        // Every accepted submit's write (the request id, giving the job back until its first poll) waits at the gate.
        var (store, gated) = GatedStore.Wrap(engine.Store, t => t.Job.State == EditState.AtProvider && t.From.Contains(EditState.Submitting), gate.Task);
        var run = engine.Server(store).RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);

        // The first job waits only for its write: its slot takes the second job. That one is working (its own move to
        // 'submitting' queues behind the held write), so the one slot is busy and the third job is not taken.
        await engine.RunClockUntilAsync(() => Task.FromResult(gated.Claimed.Count >= 2), Tick);
        for (var i = 0; i < 20; i++)
        {
            engine.Time.Advance(Tick);
            await Task.Delay(5);
        }

        gated.Claimed.ShouldBe([jobs[0].Id, jobs[1].Id]);
        engine.Scripted.Accepted.ShouldBe(1);

        gate.SetResult();
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;
        (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None)).ShouldAllBe(j => j.State == EditState.Succeeded && j.AcceptedSubmits == 1);
    }

    [Fact]
    public async Task RunAsync_ClaimOnItsWay_JobsClaimedAheadStartInTheSlotsThatFree()
    {
        await using var engine = new EngineHarness();
        var batch = await engine.ImportAsync(8);
        var gate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var (store, gated) = GatedStore.Wrap(engine.Store, _ => false, Task.CompletedTask);
        gated.HoldClaimsAfter(1, gate.Task);
        var run = engine.Server(store).RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);

        // The first claim takes the 4 slots' jobs and half as many ahead. While the next claim is held, the first four give
        // their jobs back (accepted, polled later) and the two claimed ahead start in their slots; nothing more starts.
        await engine.RunClockUntilAsync(() => Task.FromResult(engine.Scripted.Accepted >= 6), Tick);
        for (var i = 0; i < 10; i++)
        {
            engine.Time.Advance(Tick);
            await Task.Delay(5);
        }

        gated.Asked[0].ShouldBe(6);
        gated.Claimed.Count.ShouldBe(6);
        gated.Asked.Count.ShouldBeGreaterThan(1, "the next claim went out while jobs claimed ahead were still waiting");
        engine.Scripted.Accepted.ShouldBe(6);

        gate.SetResult();
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;
        (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None)).ShouldAllBe(j => j.State == EditState.Succeeded && j.AcceptedSubmits == 1);
    }

    [Fact]
    public async Task RunAsync_StoppedWithJobsClaimedAhead_GivesThemBackUntouched()
    {
        await using var engine = new EngineHarness();
        engine.Scripted.SubmitGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var batch = await engine.ImportAsync(8);
        var (store, gated) = GatedStore.Wrap(engine.Store, _ => false, Task.CompletedTask);
        using var stop = new CancellationTokenSource();
        var run = engine.Server(store).RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), stop.Token);
        await engine.RunClockUntilAsync(async () =>
            (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None)).Count(j => j.State == EditState.Submitting) == 4, Tick);
        gated.Claimed.Count.ShouldBe(6);

        await stop.CancelAsync();
        engine.Scripted.SubmitGate.SetResult();
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;

        // The four submits under way were recorded; the two jobs claimed ahead never started and are free for anyone.
        var jobs = (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None)).ToDictionary(j => j.Id);
        var ahead = gated.Claimed.Skip(4).Select(id => jobs[id]).ToList();
        ahead.ShouldAllBe(j => j.State == EditState.Pending && j.Attempt == 0 && j.AcceptedSubmits == 0 && j.UncertainSubmits == 0);
        gated.Claimed.Take(4).Select(id => jobs[id]).ShouldAllBe(j => j.State == EditState.AtProvider && j.RequestId != null);
        jobs.Values.ShouldAllBe(j => j.LeaseOwner == null);
    }

    [Fact]
    public async Task RunAsync_ProviderWithMaxInFlight_ClaimsNoJobAheadOfASlot()
    {
        await using var engine = new EngineHarness();
        engine.Account.MaxInFlight = 10;
        var batch = await engine.ImportAsync(8);
        var (store, gated) = GatedStore.Wrap(engine.Store, _ => false, Task.CompletedTask);
        var jobs = await engine.RunBatchAsync(batch, store: store);

        // A job claimed ahead would be a leased pending job, which the cap counts as a task at the provider.
        gated.Asked[0].ShouldBe(4);
        gated.Asked.ShouldAllBe(asked => asked <= engine.Options.Concurrency);
        jobs.ShouldAllBe(j => j.State == EditState.Succeeded);
    }

    [Fact]
    public async Task RunAsync_DownloadLeftoversOfACrash_RemovedWithTheJobsDownloadAndTheOutputsFolderHasOnlyImages()
    {
        await using var engine = new EngineHarness(new ScriptedProvider { PollsBeforeDone = 1 });
        var batch = await engine.ImportAsync(3);
        var first = (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None))[0];
        var parts = Directory.CreateDirectory(OutputDownloader.PartsDirectory(batch.StorageDir)).FullName;
        var leftover = Path.Combine(parts, $"{OutputDownloader.TempPrefix}{first.Id}-1-crashed.part");
        var othersFile = Path.Combine(parts, ".dl-999999-1-other.part");
        await File.WriteAllTextAsync(leftover, "half an image");
        await File.WriteAllTextAsync(othersFile, "someone else's download");
        using var stop = new CancellationTokenSource();

        var run = engine.Server().RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), stop.Token);
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;

        File.Exists(leftover).ShouldBeFalse();
        File.Exists(othersFile).ShouldBeTrue();
        Directory.GetFiles(batch.StorageDir).Length.ShouldBe(3);
        Directory.GetFiles(batch.StorageDir).ShouldAllBe(f => f.EndsWith(".png"));
    }

    [Fact]
    public async Task RunAsync_SubmitNotAccepted_RetriesAfterBackoffThenSucceeds()
    {
        await using var engine = new EngineHarness();
        engine.Scripted.FailNextSubmit(new ProviderException(ProviderErrorKind.NotAccepted, "HTTP 503", 503));
        var batch = await engine.ImportAsync(1);
        var start = engine.Time.GetUtcNow();

        var run = engine.Server().RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        EditRecord? retrying = null;
        await engine.RunClockUntilAsync(async () =>
        {
            retrying = (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None))[0];
            return retrying.Attempt == 1;
        }, TimeSpan.Zero + TimeSpan.FromMilliseconds(1), maxSteps: 500);

        // Equal jitter at 0.5: half the 2 s base fixed plus a quarter = 1.5 s after the failure.
        retrying!.State.ShouldBe(EditState.Pending);
        retrying.DueAt.ShouldBe(start + Backoff.Delay(1, engine.Options.RetryBaseDelay, engine.Options.RetryMaxDelay, 0.5), TimeSpan.FromMilliseconds(5));
        retrying.Error.ShouldBe("HTTP 503");

        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;
        var job = (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None))[0];
        job.State.ShouldBe(EditState.Succeeded);
        job.UncertainSubmits.ShouldBe(0);
        var history = await engine.Store.GetHistoryAsync(job.Id, CancellationToken.None);
        history.ShouldContain(h => h.From == EditState.Submitting && h.To == EditState.Pending && h.Reason != null && h.Reason.StartsWith("attempt 1 failed", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_SubmitUncertain_CountsItBeforeRetrying()
    {
        await using var engine = new EngineHarness();
        engine.Scripted.FailNextSubmit(new ProviderException(ProviderErrorKind.Uncertain, "POST timed out"));
        var batch = await engine.ImportAsync(1);

        var job = (await engine.RunBatchAsync(batch))[0];
        job.State.ShouldBe(EditState.Succeeded);
        job.UncertainSubmits.ShouldBe(1);
        (await engine.Store.GetHistoryAsync(job.Id, CancellationToken.None))
            .ShouldContain(h => h.Reason != null && h.Reason.Contains("the provider may have accepted the submit", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_SubmitRejected_FailsAtOnceWithProviderMessage()
    {
        await using var engine = new EngineHarness();
        engine.Scripted.FailNextSubmit(new ProviderException(ProviderErrorKind.Rejected, "HTTP 400 size: expected W*H", 400));
        var batch = await engine.ImportAsync(1);

        var job = (await engine.RunBatchAsync(batch))[0];
        job.State.ShouldBe(EditState.Failed);
        job.Attempt.ShouldBe(1);
        job.Error.ShouldBe("HTTP 400 size: expected W*H");
        engine.Scripted.Accepted.ShouldBe(0);
    }

    [Fact]
    public async Task RunAsync_EveryAttemptFails_FailsAfterMaxAttempts()
    {
        await using var engine = new EngineHarness();
        for (var i = 0; i < engine.Options.MaxAttempts; i++)
        {
            engine.Scripted.FailNextSubmit(new ProviderException(ProviderErrorKind.NotAccepted, $"HTTP 429 #{i}", 429));
        }

        var batch = await engine.ImportAsync(1);
        var job = (await engine.RunBatchAsync(batch))[0];
        job.State.ShouldBe(EditState.Failed);
        job.Attempt.ShouldBe(engine.Options.MaxAttempts);
        job.Error.ShouldBe($"HTTP 429 #{engine.Options.MaxAttempts - 1}");
    }

    [Fact]
    public async Task RunAsync_ProviderTaskFails_ResubmittedUpToLimitThenFails()
    {
        await using var engine = new EngineHarness();
        engine.Scripted.FailTaskFor("prompt 1");
        engine.Scripted.FailTaskFor("prompt 1");
        var batch = await engine.ImportAsync(1);

        // MaxProviderResubmits = 1: the first failure is submitted again, the second ends the job.
        var job = (await engine.RunBatchAsync(batch))[0];
        job.State.ShouldBe(EditState.Failed);
        job.AcceptedSubmits.ShouldBe(2);
        job.Error.ShouldBe("simulated model failure");
        job.CostUsd.ShouldBe(0m);
    }

    [Fact]
    public async Task RunAsync_StepLongerThanLease_HeartbeatKeepsTheLease()
    {
        await using var engine = new EngineHarness();
        engine.Scripted.SubmitGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var batch = await engine.ImportAsync(1);
        var run = engine.Server().RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        await engine.RunClockUntilAsync(async () => (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None))[0].State == EditState.Submitting, Tick);

        // Three lease durations pass while the submit hangs; heartbeats every 10 s keep extending the 30 s lease.
        var until = engine.Time.GetUtcNow() + (3 * engine.Options.LeaseDuration);
        await engine.RunClockUntilAsync(() => Task.FromResult(engine.Time.GetUtcNow() >= until), TimeSpan.FromSeconds(1), maxSteps: 200);
        (await engine.NewStore().RescueExpiredLeasesAsync(100, CancellationToken.None)).ShouldBe(0);
        var held = (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None))[0];
        held.State.ShouldBe(EditState.Submitting);
        held.LeaseExpiresAt.ShouldNotBeNull().ShouldBeGreaterThan(engine.Time.GetUtcNow());

        engine.Scripted.SubmitGate.SetResult();
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;
        var job = (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None))[0];
        job.State.ShouldBe(EditState.Succeeded);
        engine.Scripted.Accepted.ShouldBe(1);
        (await engine.Store.GetHistoryAsync(job.Id, CancellationToken.None)).ShouldNotContain(h => h.Reason != null && h.Reason.Contains("expired", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_LeaseOfCrashedWorkerExpires_RescuedAndFinishedByAnotherServer()
    {
        await using var engine = new EngineHarness();
        var batch = await engine.ImportAsync(3);
        var crashed = await engine.Store.ClaimAsync(new ClaimRequest("crashed-worker", 3, engine.Options.LeaseDuration), CancellationToken.None);
        crashed.Count.ShouldBe(3);

        var run = engine.Server().RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;

        foreach (var job in await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None))
        {
            job.State.ShouldBe(EditState.Succeeded);
            (await engine.Store.GetHistoryAsync(job.Id, CancellationToken.None))
                .ShouldContain(h => h.Reason != null && h.Reason.Contains("lease expired (held by crashed-worker)", StringComparison.Ordinal));
        }

        // Nobody could touch the jobs before the lease ran out.
        engine.Time.GetUtcNow().ShouldBeGreaterThan(crashed[0].LeaseExpiresAt!.Value);
    }

    [Fact]
    public async Task RunAsync_CrashAfterProviderAcceptedButBeforeRequestIdStored_CountsThePossibleDuplicate()
    {
        await using var engine = new EngineHarness();
        var batch = await engine.ImportAsync(1);

        // A worker claims, moves the job to 'submitting', sends the submit (the provider accepts it) and dies before it
        // can store the request id.
        var job = (await engine.Store.ClaimAsync(new ClaimRequest("dying-worker", 1, engine.Options.LeaseDuration), CancellationToken.None))[0];
        (await engine.Changer().MoveAsync(job, job with { State = EditState.Submitting }, "dying-worker", null, keepLease: true)).ShouldNotBeNull();
        await engine.Scripted.SubmitAsync(new EditRequest(job.Spec.Prompt, job.Spec.Images, null, null, 1, null), CancellationToken.None);

        var run = engine.Server().RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;

        var done = (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None))[0];
        done.State.ShouldBe(EditState.Succeeded);
        done.UncertainSubmits.ShouldBe(1);
        done.AcceptedSubmits.ShouldBe(1);
        engine.Scripted.Accepted.ShouldBe(2);
        (await engine.Store.GetHistoryAsync(done.Id, CancellationToken.None))
            .ShouldContain(h => h.From == EditState.Submitting && h.To == EditState.Pending && h.Reason != null && h.Reason.Contains("may have reached the provider", StringComparison.Ordinal));
    }

    [Fact]
    public async Task RunAsync_TwoServersOnOneStore_NeverRunTheSameJobAtOnce()
    {
        await using var engine = new EngineHarness(new ScriptedProvider { PollsBeforeDone = 2 });
        var batch = await engine.ImportAsync(40);

        var first = engine.Server().RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        var second = engine.Server(engine.NewStore()).RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        await engine.RunClockUntilAsync(() => Task.FromResult(first.IsCompleted && second.IsCompleted), Tick);
        await Task.WhenAll(first, second);

        engine.Scripted.Overlaps.ShouldBeEmpty();
        engine.Scripted.Accepted.ShouldBe(40);
        engine.Scripted.SubmittedPrompts.Distinct().Count().ShouldBe(40);
        (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None)).ShouldAllBe(j => j.State == EditState.Succeeded);
    }

    [Fact]
    public async Task RunAsync_Stopped_InFlightStepRecordedAndLeasesReleased()
    {
        await using var engine = new EngineHarness();
        engine.Scripted.SubmitGate = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var batch = await engine.ImportAsync(2);
        using var stop = new CancellationTokenSource();
        var run = engine.Server().RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), stop.Token);
        await engine.RunClockUntilAsync(async () =>
            (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None)).All(j => j.State == EditState.Submitting), Tick);

        await stop.CancelAsync();
        engine.Scripted.SubmitGate.SetResult();
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;

        // The submits under way when the stop came were recorded, and nothing is left leased.
        var jobs = await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None);
        jobs.ShouldAllBe(j => j.State == EditState.AtProvider && j.RequestId != null && j.LeaseOwner == null);
        (await engine.Store.GetServersAsync(CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task RunAsync_StoppedWhileIdle_ReturnsWithoutError()
    {
        await using var engine = new EngineHarness();
        await engine.ImportAsync(0);
        using var stop = new CancellationTokenSource();
        var run = engine.Server().RunAsync(ServerScope.Everything, stop.Token);
        await engine.RunClockUntilAsync(async () => (await engine.Store.GetServersAsync(CancellationToken.None)).Count == 1, Tick);

        await stop.CancelAsync();
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);

        await run;
        (await engine.Store.GetServersAsync(CancellationToken.None)).ShouldBeEmpty();
    }

    [Fact]
    public async Task RunAsync_StoreUnavailableWhileLookingForWork_KeepsLookingAndFinishesTheBatch()
    {
        await using var engine = new EngineHarness();
        var batch = await engine.ImportAsync(3);
        var (store, faults) = FlakyStore.Wrap(engine.Store, (method, call) => method == nameof(IJobStore.ClaimAsync) && call <= 3);

        var run = engine.Server(store).RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;

        faults.Failures.ShouldBe(3);
        (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None)).ShouldAllBe(j => j.State == EditState.Succeeded);
    }

    [Fact]
    public async Task RunAsync_StoreAwayWhenAnAcceptedSubmitIsStored_RequestIdKeptAndNotSubmittedAgain()
    {
        await using var engine = new EngineHarness();
        var batch = await engine.ImportAsync(1);

        // Call 1 moves the job to 'submitting'; calls 2-4 would store the accepted request id.
        var (store, faults) = FlakyStore.Wrap(engine.Store, (method, call) => method == nameof(IJobStore.TransitionAsync) && call is >= 2 and <= 4);

        var run = engine.Server(store).RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;

        faults.Failures.ShouldBe(3);
        var job = (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None)).ShouldHaveSingleItem();
        job.State.ShouldBe(EditState.Succeeded);
        job.UncertainSubmits.ShouldBe(0);
        engine.Scripted.Accepted.ShouldBe(1);
    }

    [Fact]
    public async Task RunAsync_StoreAwayLongerThanTheSubmitWaits_CountedUncertainAndRecordedOnceTheStoreIsBack()
    {
        await using var engine = new EngineHarness();
        var batch = await engine.ImportAsync(1);

        // Call 1 moves the job to 'submitting'; every try to store the request id fails, then the first two tries to
        // record that failure. The job must neither stay leased to this live server nor hide the possibly paid task.
        var lastFailure = 1 + QwenBatch.Steps.SubmitStep.StoreAttempts + 2;
        var (store, faults) = FlakyStore.Wrap(engine.Store, (method, call) => method == nameof(IJobStore.TransitionAsync) && call >= 2 && call <= lastFailure);

        var run = engine.Server(store).RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), Tick);
        await run;

        faults.Failures.ShouldBe(lastFailure - 1);
        var job = (await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None)).ShouldHaveSingleItem();
        job.State.ShouldBe(EditState.Succeeded);
        job.UncertainSubmits.ShouldBe(1);
        engine.Scripted.Accepted.ShouldBe(2);
    }
}
