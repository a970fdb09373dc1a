using QwenBatch.Edits;
using QwenBatch.Server;

namespace QwenBatch.Storage.Tests;

public abstract partial class JobStoreContract
{
    [Fact]
    public async Task HeartbeatAsync_ServerHoldsLeases_ExtendsOnlyItsLeasesToNowPlusDuration()
    {
        await ImportAsync(4);
        var mine = await ClaimAsync(Worker, limit: 2);
        var theirs = await ClaimAsync(OtherWorker, limit: 2);
        await Store.RegisterServerAsync(new ServerInfo(Worker, "host-a", 101, 4, Now, Now), Ct);
        Time.Advance(TimeSpan.FromMinutes(3));

        await Store.HeartbeatAsync(Worker, TimeSpan.FromMinutes(10), Ct);

        foreach (var job in mine)
        {
            var stored = await GetAsync(job.Id);
            stored.LeaseOwner.ShouldBe(Worker);
            stored.LeaseExpiresAt.ShouldBe(Now + TimeSpan.FromMinutes(10));
        }

        foreach (var job in theirs)
        {
            (await GetAsync(job.Id)).LeaseExpiresAt.ShouldBe(job.LeaseExpiresAt);
        }

        (await Store.GetServersAsync(Ct)).Single().HeartbeatAt.ShouldBe(Now);
    }

    [Fact]
    public async Task HeartbeatAsync_LeaseWouldHaveExpired_KeepsTheJobFromTheRescuer()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        Time.Advance(Lease - TimeSpan.FromSeconds(1));
        await Store.HeartbeatAsync(Worker, Lease, Ct);
        Time.Advance(TimeSpan.FromSeconds(2));

        (await Store.RescueExpiredLeasesAsync(100, Ct)).ShouldBe(0);
        (await GetAsync(job.Id)).LeaseOwner.ShouldBe(Worker);
    }

    [Fact]
    public async Task RescueExpiredLeasesAsync_LeaseExpired_ReturnsJobUnleasedAndDue()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        Time.Advance(Lease + TimeSpan.FromSeconds(1));

        var rescued = await Store.RescueExpiredLeasesAsync(100, Ct);

        rescued.ShouldBe(1);
        var stored = await GetAsync(job.Id);
        stored.State.ShouldBe(EditState.Pending);
        stored.LeaseOwner.ShouldBeNull();
        stored.LeaseExpiresAt.ShouldBeNull();
        stored.DueAt.ShouldBeLessThanOrEqualTo(Now);
        stored.UncertainSubmits.ShouldBe(0);
        (await NextDueAtOrThrowAsync()).ShouldBeLessThanOrEqualTo(Now);
        (await ClaimAsync(OtherWorker)).Select(j => j.Id).ShouldBe([job.Id]);
    }

    [Fact]
    public async Task RescueExpiredLeasesAsync_JobInSubmitting_ReturnsItToPendingAsUncertainSubmit()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        await PutAsync(job, EditState.Submitting, keepLease: true);
        Time.Advance(Lease + TimeSpan.FromSeconds(1));

        (await Store.RescueExpiredLeasesAsync(100, Ct)).ShouldBe(1);

        var stored = await GetAsync(job.Id);
        stored.State.ShouldBe(EditState.Pending);
        stored.UncertainSubmits.ShouldBe(1);
        stored.LeaseOwner.ShouldBeNull();
        var entry = (await Store.GetHistoryAsync(job.Id, Ct))[^1];
        entry.From.ShouldBe(EditState.Submitting);
        entry.To.ShouldBe(EditState.Pending);
        entry.At.ShouldBe(Now);
        entry.ServerId.ShouldBe(Worker);
        entry.Reason.ShouldNotBeNull();
        entry.Reason.ShouldContain("lease expired");
        entry.Reason.ShouldContain(Worker);
        entry.Reason.ShouldContain("submit");
    }

    [Fact]
    public async Task RescueExpiredLeasesAsync_JobAtProvider_KeepsItsStateAndMakesItDue()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        await PutAsync(job, EditState.AtProvider, keepLease: true, dueAt: Now.AddHours(1));
        Time.Advance(Lease + TimeSpan.FromSeconds(1));

        (await Store.RescueExpiredLeasesAsync(100, Ct)).ShouldBe(1);

        var stored = await GetAsync(job.Id);
        stored.State.ShouldBe(EditState.AtProvider);
        stored.UncertainSubmits.ShouldBe(0);
        stored.LeaseOwner.ShouldBeNull();
        stored.DueAt.ShouldBe(Now);
        var entry = (await Store.GetHistoryAsync(job.Id, Ct))[^1];
        (entry.From, entry.To).ShouldBe((EditState.AtProvider, EditState.AtProvider));
        entry.Reason.ShouldNotBeNull();
        entry.Reason.ShouldContain("lease expired");
    }

    [Fact]
    public async Task RescueExpiredLeasesAsync_LeaseNotExpired_LeavesTheJob()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        Time.Advance(Lease - TimeSpan.FromSeconds(1));

        (await Store.RescueExpiredLeasesAsync(100, Ct)).ShouldBe(0);

        ShouldBeUnchanged(await GetAsync(job.Id), job);
    }

    [Fact]
    public async Task RescueExpiredLeasesAsync_NothingLeased_ReturnsZero()
    {
        // Regression guard: the PostgreSQL store once computed this count as bigint and failed to read it as int, so every
        // rescue and release threw InvalidCastException (after its changes were committed).
        await ImportAsync(1);

        (await Store.RescueExpiredLeasesAsync(100, Ct)).ShouldBe(0);
        (await Store.ReleaseLeasesAsync(Worker, Ct)).ShouldBe(0);
    }

    [Fact]
    public async Task RescueExpiredLeasesAsync_MoreThanLimit_RescuesOnlyTheLimit()
    {
        await ImportAndClaimAsync(5);
        Time.Advance(Lease + TimeSpan.FromSeconds(1));

        var first = await Store.RescueExpiredLeasesAsync(2, Ct);
        var second = await Store.RescueExpiredLeasesAsync(2, Ct);
        var third = await Store.RescueExpiredLeasesAsync(2, Ct);

        (first, second, third).ShouldBe((2, 2, 1));
    }

    [Fact]
    public async Task ReleaseLeasesAsync_Server_ReturnsOnlyThatServersJobs()
    {
        await ImportAsync(4);
        var mine = await ClaimAsync(Worker, limit: 2);
        var theirs = await ClaimAsync(OtherWorker, limit: 2);
        var submitting = await PutAsync(mine[0], EditState.Submitting, keepLease: true);

        var released = await Store.ReleaseLeasesAsync(Worker, Ct);

        released.ShouldBe(2);
        foreach (var job in mine)
        {
            (await GetAsync(job.Id)).LeaseOwner.ShouldBeNull();
        }

        var wasSubmitting = await GetAsync(submitting.Id);
        wasSubmitting.State.ShouldBe(EditState.Pending);
        wasSubmitting.UncertainSubmits.ShouldBe(1);
        var entry = (await Store.GetHistoryAsync(submitting.Id, Ct))[^1];
        (entry.From, entry.To, entry.ServerId).ShouldBe((EditState.Submitting, EditState.Pending, Worker));
        entry.Reason.ShouldNotBeNull();
        entry.Reason.ShouldContain("released");
        foreach (var job in theirs)
        {
            ShouldBeUnchanged(await GetAsync(job.Id), job);
        }
    }

    [Fact]
    public async Task ReleaseLeasesAsync_ServerHoldsNothing_ReturnsZero()
    {
        await ImportAndClaimAsync(2, owner: OtherWorker);

        (await Store.ReleaseLeasesAsync(Worker, Ct)).ShouldBe(0);
    }

    private async Task<DateTimeOffset> NextDueAtOrThrowAsync() =>
        await Store.NextDueAtAsync(null, Ct) ?? throw new InvalidOperationException("Nothing is due.");
}
