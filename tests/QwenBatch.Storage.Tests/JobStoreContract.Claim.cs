using System.Collections.Concurrent;
using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests;

public abstract partial class JobStoreContract
{
    [Fact]
    public async Task ClaimAsync_MoreDueThanLimit_ClaimsOnlyTheLimit()
    {
        await ImportAsync(5);

        var claimed = await ClaimAsync(limit: 3);

        claimed.Count.ShouldBe(3);
        (await ClaimAsync(OtherWorker, limit: 10)).Count.ShouldBe(2);
    }

    [Fact]
    public async Task ClaimAsync_DueJobs_ReturnsThemByDueAtThenId()
    {
        var jobs = await ImportAndClaimAsync(4, owner: "setup");
        var start = Now;
        await PutAsync(jobs[0], EditState.Pending, keepLease: false, dueAt: start.AddSeconds(3), owner: "setup");
        await PutAsync(jobs[1], EditState.Pending, keepLease: false, dueAt: start.AddSeconds(1), owner: "setup");
        await PutAsync(jobs[2], EditState.Pending, keepLease: false, dueAt: start.AddSeconds(1), owner: "setup");
        await PutAsync(jobs[3], EditState.Pending, keepLease: false, dueAt: start.AddSeconds(2), owner: "setup");
        Time.Advance(TimeSpan.FromSeconds(10));

        var first = await ClaimAsync(limit: 3);
        var rest = await ClaimAsync(limit: 3);

        first.Select(j => j.Id).ShouldBe([jobs[1].Id, jobs[2].Id, jobs[3].Id]);
        rest.Select(j => j.Id).ShouldBe([jobs[0].Id]);
    }

    [Fact]
    public async Task ClaimAsync_JobNotYetDue_SkipsItUntilDue()
    {
        var jobs = await ImportAndClaimAsync(2, owner: "setup");
        await PutAsync(jobs[0], EditState.Pending, keepLease: false, dueAt: Now.AddSeconds(30), owner: "setup");
        await PutAsync(jobs[1], EditState.Pending, keepLease: false, dueAt: Now, owner: "setup");

        var now = await ClaimAsync();
        Time.Advance(TimeSpan.FromSeconds(29));
        var early = await ClaimAsync();
        Time.Advance(TimeSpan.FromSeconds(1));
        var due = await ClaimAsync();

        now.Select(j => j.Id).ShouldBe([jobs[1].Id]);
        early.ShouldBeEmpty();
        due.Select(j => j.Id).ShouldBe([jobs[0].Id]);
    }

    [Fact]
    public async Task ClaimAsync_JobAlreadyLeased_SkipsIt()
    {
        await ImportAsync(3);
        var mine = await ClaimAsync(limit: 2);

        var theirs = await ClaimAsync(OtherWorker);

        theirs.Count.ShouldBe(1);
        mine.Select(j => j.Id).ShouldNotContain(theirs[0].Id);
        (await ClaimAsync(OtherWorker)).ShouldBeEmpty();
    }

    [Fact]
    public async Task ClaimAsync_WithBatchId_ClaimsOnlyThatBatch()
    {
        var spring = await ImportAsync(3, "spring");
        var autumn = await ImportAsync(3, "autumn");

        var claimed = await ClaimAsync(batchId: autumn.Batch.Id);

        claimed.Count.ShouldBe(3);
        claimed.ShouldAllBe(j => j.BatchId == autumn.Batch.Id);
        (await ClaimAsync(batchId: autumn.Batch.Id)).ShouldBeEmpty();
        (await ClaimAsync(batchId: spring.Batch.Id)).Count.ShouldBe(3);
    }

    [Fact]
    public async Task ClaimAsync_DueJob_SetsLeaseOwnerAndExpiry()
    {
        await ImportAsync(1);
        var lease = TimeSpan.FromSeconds(90);

        var claimed = (await ClaimAsync(lease: lease)).Single();

        claimed.LeaseOwner.ShouldBe(Worker);
        claimed.LeaseExpiresAt.ShouldBe(Now + lease);
        claimed.State.ShouldBe(EditState.Pending);
        var stored = await GetAsync(claimed.Id);
        stored.LeaseOwner.ShouldBe(Worker);
        stored.LeaseExpiresAt.ShouldBe(Now + lease);
    }

    [Fact]
    public async Task ClaimAsync_JobsInEveryState_ClaimsOnlyClaimableStates()
    {
        var jobs = await ImportAndClaimAsync(8, owner: "setup");
        var states = Enum.GetValues<EditState>();
        states.Length.ShouldBe(8);
        for (var i = 0; i < jobs.Count; i++)
        {
            await PutAsync(jobs[i], states[i], keepLease: false, owner: "setup");
        }

        var claimed = await ClaimAsync();

        claimed.Select(j => j.State).ShouldBe([EditState.Pending, EditState.AtProvider, EditState.Downloading]);
    }

    [Fact]
    public async Task ClaimAsync_SixConcurrentClaimers_ClaimEveryJobExactlyOnce()
    {
        var import = await ImportAsync(200);
        var claims = new ConcurrentBag<(string Owner, long Id)>();
        var claimers = Enumerable.Range(1, 6).Select(i => (Owner: $"claimer-{i}", Store: OpenStore())).ToArray();

        await Task.WhenAll(claimers.Select(c => Task.Run(async () =>
        {
            while (true)
            {
                var jobs = await c.Store.ClaimAsync(new ClaimRequest(c.Owner, 7, Lease), Ct);
                if (jobs.Count == 0)
                {
                    return;
                }

                jobs.Count.ShouldBeLessThanOrEqualTo(7);
                foreach (var job in jobs)
                {
                    job.LeaseOwner.ShouldBe(c.Owner);
                    claims.Add((c.Owner, job.Id));
                }
            }
        })));

        var all = await Store.GetJobsAsync(import.Batch.Id, Ct);
        claims.Select(c => c.Id).Order().ShouldBe(all.Select(j => j.Id).Order());
        claims.Count.ShouldBe(200);
        foreach (var job in all)
        {
            job.LeaseOwner.ShouldBe(claims.Single(c => c.Id == job.Id).Owner);
        }
    }
}
