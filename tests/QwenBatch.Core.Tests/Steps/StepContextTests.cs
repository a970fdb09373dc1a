using QwenBatch.Core.Tests.Server;
using QwenBatch.Jobs;
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

        var moved = await context.MoveOnAsync(engine.Changer(), job with { State = JobState.Downloading, DueAt = now }, "completed", now);

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
        var changer = new JobStateChanger(engine.Store, Microsoft.Extensions.Logging.Abstractions.NullLogger<JobStateChanger>.Instance, released: due.Add);

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

        await context.MoveOnAsync(engine.Changer(), job with { State = JobState.Downloading, DueAt = now }, "completed", now);

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
        jobs.ShouldAllBe(j => j.State == JobState.Succeeded);
        foreach (var job in jobs)
        {
            // Downloading and succeeded are written by the server that saw the completion, at the same instant: no
            // release and re-claim in between.
            var history = await engine.Store.GetHistoryAsync(job.Id, CancellationToken.None);
            var completed = history.Single(h => h.To == JobState.Downloading);
            var succeeded = history.Single(h => h.To == JobState.Succeeded);
            (succeeded.At, succeeded.ServerId).ShouldBe((completed.At, completed.ServerId));
        }

        // Claims: the submits, an empty look once they are done, the polls (each followed by its download), and the
        // empty look that finds the batch settled. A download claimed on its own would make it five.
        claims.ShouldBeLessThanOrEqualTo(4);
    }

    private static async Task<JobRecord> ClaimAtProviderAsync(EngineHarness engine)
    {
        await engine.ImportAsync(1);
        var job = (await engine.Store.ClaimAsync(new ClaimRequest(Owner, 1, engine.Options.LeaseDuration), CancellationToken.None)).Single();
        var atProvider = job with { State = JobState.AtProvider, RequestId = "req-1", SubmittedAt = engine.Time.GetUtcNow() };
        var changer = engine.Changer();
        (await changer.MoveAsync(job, job with { State = JobState.Submitting }, Owner, null, keepLease: true)).ShouldNotBeNull();
        return (await changer.MoveAsync(job with { State = JobState.Submitting }, atProvider, Owner, null, keepLease: true)).ShouldNotBeNull();
    }
}
