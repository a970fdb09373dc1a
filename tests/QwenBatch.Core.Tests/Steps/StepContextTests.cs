using QwenBatch.Core.Tests.Server;
using QwenBatch.Edits;
using QwenBatch.Server;
using QwenBatch.Storage;

namespace QwenBatch.Core.Tests.Steps;

public sealed class StepContextTests
{
    private const string Owner = "worker-a";

    [Fact]
    public async Task MoveOnAsync_NextStepDueNow_KeepsTheLeaseAndHandsTheJobOn()
    {
        await using var engine = new EngineHarness();
        var job = await ClaimAtProviderAsync(engine);
        var context = new QwenBatch.Steps.StepContext(Owner, job);
        var now = engine.Time.GetUtcNow();

        var moved = await context.MoveOnAsync(engine.Changer(), job with { State = EditState.Downloading, DueAt = now }, "completed", now);

        moved.ShouldNotBeNull();
        context.Next.ShouldBe(moved);
        context.Current.ShouldBe(moved);
        (await engine.Store.GetJobAsync(job.Id, CancellationToken.None))!.LeaseOwner.ShouldBe(Owner);
    }

    [Fact]
    public async Task MoveOnAsync_NextStepLater_GivesTheLeaseBackAndTellsWhenItIsDue()
    {
        await using var engine = new EngineHarness();
        var job = await ClaimAtProviderAsync(engine);
        var context = new QwenBatch.Steps.StepContext(Owner, job);
        var now = engine.Time.GetUtcNow();
        var due = new DueTimes();
        var changer = new EditStateChanger(engine.Store, Microsoft.Extensions.Logging.Abstractions.NullLogger<EditStateChanger>.Instance, released: due.Add);

        await context.MoveOnAsync(changer, job with { Polls = 1, DueAt = now.AddSeconds(3) }, reason: null, now);

        context.Next.ShouldBeNull();
        (await engine.Store.GetJobAsync(job.Id, CancellationToken.None))!.LeaseOwner.ShouldBeNull();
        due.Earliest.ShouldBe(now.AddSeconds(3));
    }

    [Fact]
    public async Task MoveOnAsync_ChainAtItsBound_GivesTheLeaseBack()
    {
        await using var engine = new EngineHarness();
        var job = await ClaimAtProviderAsync(engine);
        var context = new QwenBatch.Steps.StepContext(Owner, job) { Chained = QwenBatch.Steps.StepContext.MaxChainedSteps - 1 };
        var now = engine.Time.GetUtcNow();

        await context.MoveOnAsync(engine.Changer(), job with { State = EditState.Downloading, DueAt = now }, "completed", now);

        context.Next.ShouldBeNull();
        (await engine.Store.GetJobAsync(job.Id, CancellationToken.None))!.LeaseOwner.ShouldBeNull();
    }

    [Fact]
    public async Task RunAsync_TaskCompletesAtTheFirstPoll_DownloadRunsUnderThePollsClaim()
    {
        await using var engine = new EngineHarness(new ScriptedProvider { PollsBeforeDone = 0 });
        var batch = await engine.ImportAsync(3);
        var claims = 0;
        var (store, _) = FlakyStore.Wrap(engine.Store, (method, _) =>
        {
            if (method == nameof(IJobStore.ClaimAsync))
            {
                Interlocked.Increment(ref claims);
            }

            return false;
        });

        var run = engine.Server(store).RunAsync(new ServerScope(batch.Id, StopWhenSettled: true), CancellationToken.None);
        await engine.RunClockUntilAsync(() => Task.FromResult(run.IsCompleted), TimeSpan.FromMilliseconds(250), quiesce: true);
        await run;

        var jobs = await engine.Store.GetJobsAsync(batch.Id, CancellationToken.None);
        jobs.ShouldAllBe(j => j.State == EditState.Succeeded);
        foreach (var job in jobs)
        {
            // Downloading and succeeded are written by the server that saw the completion, at the same instant: no
            // release and re-claim in between.
            var history = await engine.Store.GetHistoryAsync(job.Id, CancellationToken.None);
            var completed = history.Single(h => h.To == EditState.Downloading);
            var succeeded = history.Single(h => h.To == EditState.Succeeded);
            (succeeded.At, succeeded.ServerId).ShouldBe((completed.At, completed.ServerId));
        }

        // Claims: the submits, an empty look once they are done, the polls (each followed by its download), and the
        // empty look that finds the batch settled. A download claimed on its own would make it five.
        claims.ShouldBeLessThanOrEqualTo(4);
    }

    [Fact]
    public async Task MoveOnUnwrittenAsync_NextStepDueNow_WritesNothingAndHandsTheJobOn()
    {
        await using var engine = new EngineHarness();
        var job = await ClaimAtProviderAsync(engine);
        var context = new QwenBatch.Steps.StepContext(Owner, job);
        var now = engine.Time.GetUtcNow();
        var downloading = job with { State = EditState.Downloading, CostUsd = 0.02m, DueAt = now };

        var moved = await context.MoveOnUnwrittenAsync(engine.Changer(), downloading, "completed", now);

        moved.ShouldBe(downloading);
        context.Next.ShouldBe(downloading);
        context.Unwritten.ShouldBe(new UnwrittenMove(EditState.AtProvider, "completed"));
        var stored = (await engine.Store.GetJobAsync(job.Id, CancellationToken.None))!;
        (stored.State, stored.LeaseOwner, stored.CostUsd).ShouldBe((EditState.AtProvider, Owner, 0m));
    }

    [Fact]
    public async Task MoveAsync_AfterAnUnwrittenMove_WritesFromTheStoredStateWithBothHistoryEntriesAndChargesOnce()
    {
        await using var engine = new EngineHarness();
        var job = await ClaimAtProviderAsync(engine);
        var context = new QwenBatch.Steps.StepContext(Owner, job);
        var now = engine.Time.GetUtcNow();
        var changer = engine.Changer();
        await context.MoveOnUnwrittenAsync(changer, job with { State = EditState.Downloading, CostUsd = 0.02m, DueAt = now }, "completed with 1 output(s)", now);
        var download = context.ForNext();
        download.Unwritten.ShouldNotBeNull();

        var succeeded = await download.MoveAsync(changer, download.Current with { State = EditState.Succeeded, FinishedAt = now }, reason: null);

        succeeded.ShouldNotBeNull();
        download.Unwritten.ShouldBeNull();
        var stored = (await engine.Store.GetJobAsync(job.Id, CancellationToken.None))!;
        (stored.State, stored.LeaseOwner, stored.CostUsd).ShouldBe((EditState.Succeeded, (string?)null, 0.02m));
        var history = await engine.Store.GetHistoryAsync(job.Id, CancellationToken.None);
        history.TakeLast(2).Select(h => (h.From, h.To, h.Reason, h.ServerId)).ShouldBe(
        [
            (EditState.AtProvider, EditState.Downloading, "completed with 1 output(s)", Owner),
            (EditState.Downloading, EditState.Succeeded, (string?)null, Owner),
        ]);
        (await engine.Store.GetBatchAsync(job.BatchId, CancellationToken.None))!.SpentUsd.ShouldBe(0.02m);
        var progress = await engine.Store.GetProgressAsync(job.BatchId, CancellationToken.None);
        (progress.Count(EditState.Succeeded), progress.Count(EditState.AtProvider)).ShouldBe((1, 0));
    }

    [Fact]
    public async Task MoveOnUnwrittenAsync_ChainAtItsBound_WritesTheMoveAndGivesTheLeaseBack()
    {
        await using var engine = new EngineHarness();
        var job = await ClaimAtProviderAsync(engine);
        var context = new QwenBatch.Steps.StepContext(Owner, job) { Chained = QwenBatch.Steps.StepContext.MaxChainedSteps - 1 };
        var now = engine.Time.GetUtcNow();

        await context.MoveOnUnwrittenAsync(engine.Changer(), job with { State = EditState.Downloading, DueAt = now }, "completed", now);

        context.Next.ShouldBeNull();
        context.Unwritten.ShouldBeNull();
        var stored = (await engine.Store.GetJobAsync(job.Id, CancellationToken.None))!;
        (stored.State, stored.LeaseOwner).ShouldBe((EditState.Downloading, (string?)null));
    }

    [Fact]
    public async Task RunAsync_StopRequestedBetweenACompletionAndItsDownload_CompletionIsWrittenAndTheJobGivenBack()
    {
        await using var engine = new EngineHarness();
        var job = await ClaimAtProviderAsync(engine);
        using var stop = new CancellationTokenSource();
        var download = new RecordingStep(EditState.Downloading, (_, _) => Task.CompletedTask);
        var poll = new RecordingStep(EditState.AtProvider, async (context, _) =>
        {
            var now = engine.Time.GetUtcNow();
            await context.MoveOnUnwrittenAsync(engine.Changer(), context.Current with { State = EditState.Downloading, CostUsd = 0.02m, DueAt = now }, "completed", now);
            await stop.CancelAsync();
        });
        var runner = new QwenBatch.Steps.JobStepRunner([poll, download], engine.Changer(), engine.Options, engine.Time, EngineHarness.Jitter,
            Microsoft.Extensions.Logging.Abstractions.NullLogger<QwenBatch.Steps.JobStepRunner>.Instance);

        await runner.RunAsync(job, Owner, stop.Token);

        download.Runs.ShouldBe(0);
        var stored = (await engine.Store.GetJobAsync(job.Id, CancellationToken.None))!;
        (stored.State, stored.LeaseOwner, stored.CostUsd).ShouldBe((EditState.Downloading, (string?)null, 0.02m));
        (await engine.Store.GetHistoryAsync(job.Id, CancellationToken.None))[^1].Reason.ShouldBe("completed");
    }

    [Fact]
    public async Task RunAsync_WorkerDiesBetweenACompletionAndItsDownload_RescuedJobIsPolledAgainAndChargedOnce()
    {
        await using var engine = new EngineHarness(new ScriptedProvider { PollsBeforeDone = 0 });
        var batch = await engine.ImportAsync(1);
        var claimed = (await engine.Store.ClaimAsync(new ClaimRequest("crashed-worker", 1, engine.Options.LeaseDuration), CancellationToken.None)).Single();
        var changer = engine.Changer();
        var accepted = await engine.Scripted.SubmitAsync(new QwenBatch.Providers.EditRequest(claimed.Spec.Prompt, claimed.Spec.Images, null, null, 1, null), CancellationToken.None);
        var submitting = (await changer.MoveAsync(claimed, claimed with { State = EditState.Submitting }, "crashed-worker", null, keepLease: true))!;
        var now = engine.Time.GetUtcNow();
        var atProvider = (await changer.MoveAsync(submitting, submitting with { State = EditState.AtProvider, RequestId = accepted.RequestId, SubmittedAt = now }, "crashed-worker", "accepted", keepLease: true))!;

        // The crashed worker's poll saw the task completed and handed the job on to its download, then died: nothing of
        // that was written.
        var context = new QwenBatch.Steps.StepContext("crashed-worker", atProvider);
        await context.MoveOnUnwrittenAsync(changer, atProvider with { State = EditState.Downloading, CostUsd = 0.02m, DueAt = now }, "completed", now);

        var jobs = await engine.RunBatchAsync(batch);

        var job = jobs.Single();
        job.State.ShouldBe(EditState.Succeeded);
        job.CostUsd.ShouldBe(0.02m);
        (await engine.Store.GetBatchAsync(batch.Id, CancellationToken.None))!.SpentUsd.ShouldBe(0.02m);
        engine.Scripted.PollCalls.ShouldBe(1);
        engine.Scripted.Accepted.ShouldBe(1);
        var history = await engine.Store.GetHistoryAsync(job.Id, CancellationToken.None);
        history.ShouldContain(h => h.Reason != null && h.Reason.Contains("lease expired (held by crashed-worker)", StringComparison.Ordinal));
        history.Count(h => h.To == EditState.Downloading).ShouldBe(1);
        File.Exists(Path.Combine(batch.StorageDir, job.Files.Single().Path)).ShouldBeTrue();
    }

    /// <summary>A step for one state that runs what the test says and counts its runs.</summary>
    private sealed class RecordingStep(EditState state, Func<QwenBatch.Steps.StepContext, CancellationToken, Task> run) : QwenBatch.Steps.IJobStep
    {
        public int Runs { get; private set; }

        public bool CanRun(EditRecord job) => job.State == state;

        public Task RunAsync(QwenBatch.Steps.StepContext context, CancellationToken ct)
        {
            Runs++;
            return run(context, ct);
        }
    }

    private static async Task<EditRecord> ClaimAtProviderAsync(EngineHarness engine)
    {
        await engine.ImportAsync(1);
        var job = (await engine.Store.ClaimAsync(new ClaimRequest(Owner, 1, engine.Options.LeaseDuration), CancellationToken.None)).Single();
        var atProvider = job with { State = EditState.AtProvider, RequestId = "req-1", SubmittedAt = engine.Time.GetUtcNow() };
        var changer = engine.Changer();
        (await changer.MoveAsync(job, job with { State = EditState.Submitting }, Owner, null, keepLease: true)).ShouldNotBeNull();
        return (await changer.MoveAsync(job with { State = EditState.Submitting }, atProvider, Owner, null, keepLease: true)).ShouldNotBeNull();
    }
}
