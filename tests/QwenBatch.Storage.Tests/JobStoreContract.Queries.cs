using QwenBatch.Edits;
using QwenBatch.Server;

namespace QwenBatch.Storage.Tests;

public abstract partial class JobStoreContract
{
    [Fact]
    public async Task NextDueAtAsync_NoJobs_ReturnsNull()
    {
        (await Store.NextDueAtAsync(null, Ct)).ShouldBeNull();
    }

    [Fact]
    public async Task NextDueAtAsync_EveryJobLeasedOrSettled_ReturnsNull()
    {
        var jobs = await ImportAndClaimAsync(3);
        await PutAsync(jobs[0], EditState.Succeeded, keepLease: false);
        await PutAsync(jobs[1], EditState.Held, keepLease: false);

        (await Store.NextDueAtAsync(null, Ct)).ShouldBeNull();
    }

    [Fact]
    public async Task NextDueAtAsync_UnleasedClaimableJobs_ReturnsEarliestDueAt()
    {
        var jobs = await ImportAndClaimAsync(5, owner: "setup");
        var start = Now;
        await PutAsync(jobs[0], EditState.Pending, keepLease: false, dueAt: start.AddMinutes(7), owner: "setup");
        await PutAsync(jobs[1], EditState.AtProvider, keepLease: false, dueAt: start.AddMinutes(3), owner: "setup");
        await PutAsync(jobs[2], EditState.Downloading, keepLease: true, dueAt: start.AddMinutes(1), owner: "setup");
        await PutAsync(jobs[3], EditState.Failed, keepLease: false, dueAt: start.AddMinutes(2), owner: "setup");
        await PutAsync(jobs[4], EditState.Submitting, keepLease: false, dueAt: start.AddMinutes(1), owner: "setup");

        (await Store.NextDueAtAsync(null, Ct)).ShouldBe(start.AddMinutes(3));
    }

    [Fact]
    public async Task NextDueAtAsync_WithBatchId_ConsidersOnlyThatBatch()
    {
        var spring = await ImportAsync(1, "spring");
        Time.Advance(TimeSpan.FromMinutes(1));
        var autumn = await ImportAsync(1, "autumn");
        var springDue = Now.AddMinutes(-1);

        (await Store.NextDueAtAsync(autumn.Batch.Id, Ct)).ShouldBe(Now);
        (await Store.NextDueAtAsync(spring.Batch.Id, Ct)).ShouldBe(springDue);
        (await Store.NextDueAtAsync(null, Ct)).ShouldBe(springDue);
        (await Store.NextDueAtAsync(autumn.Batch.Id + spring.Batch.Id + 1000, Ct)).ShouldBeNull();
    }

    [Fact]
    public async Task GetProgressAsync_MixedStates_CountsByStateAndSumsCost()
    {
        var jobs = await ImportAndClaimAsync(5);
        (await MoveAsync(jobs[0], jobs[0] with { State = EditState.Succeeded, CostUsd = 0.02m })).ShouldBeTrue();
        (await MoveAsync(jobs[1], jobs[1] with { State = EditState.Succeeded, CostUsd = 0.04m })).ShouldBeTrue();
        (await MoveAsync(jobs[2], jobs[2] with { State = EditState.Failed, CostUsd = 0.04m, Error = "bad image" })).ShouldBeTrue();
        (await MoveAsync(jobs[3], jobs[3] with { State = EditState.AtProvider })).ShouldBeTrue();
        var other = await ImportAndClaimAsync(1, name: "other");
        (await MoveAsync(other[0], other[0] with { State = EditState.Succeeded, CostUsd = 1.5m }, owner: Worker)).ShouldBeTrue();

        var progress = await Store.GetProgressAsync(jobs[0].BatchId, Ct);

        progress.BatchId.ShouldBe(jobs[0].BatchId);
        progress.Count(EditState.Succeeded).ShouldBe(2);
        progress.Count(EditState.Failed).ShouldBe(1);
        progress.Count(EditState.AtProvider).ShouldBe(1);
        progress.Count(EditState.Pending).ShouldBe(1);
        progress.Count(EditState.Held).ShouldBe(0);
        progress.Total.ShouldBe(5);
        progress.SpentUsd.ShouldBe(0.10m);
        progress.IsSettled.ShouldBeFalse();
    }

    [Fact]
    public async Task GetProgressAsync_SmallCosts_SumsExactly()
    {
        var jobs = await ImportAndClaimAsync(3);
        (await MoveAsync(jobs[0], jobs[0] with { State = EditState.Succeeded, CostUsd = 0.000001m })).ShouldBeTrue();
        (await MoveAsync(jobs[1], jobs[1] with { State = EditState.Succeeded, CostUsd = 0.123456m })).ShouldBeTrue();
        (await MoveAsync(jobs[2], jobs[2] with { State = EditState.Held, CostUsd = 0.02m })).ShouldBeTrue();

        var progress = await Store.GetProgressAsync(jobs[0].BatchId, Ct);

        progress.SpentUsd.ShouldBe(0.143457m);
        progress.IsSettled.ShouldBeTrue();
        (await GetAsync(jobs[1].Id)).CostUsd.ShouldBe(0.123456m);
    }

    [Fact]
    public async Task GetFirstSubmitAsync_SubmittedJobs_IsTheEarliestOfThatBatch()
    {
        var jobs = await ImportAndClaimAsync(3);
        var other = await ImportAndClaimAsync(1, name: "other");
        (await Store.GetFirstSubmitAsync(jobs[0].BatchId, Ct)).ShouldBeNull();
        var first = Now.AddSeconds(2);
        (await MoveAsync(other[0], other[0] with { State = EditState.AtProvider, SubmittedAt = Now.AddSeconds(1) })).ShouldBeTrue();
        (await MoveAsync(jobs[1], jobs[1] with { State = EditState.AtProvider, SubmittedAt = Now.AddSeconds(5) })).ShouldBeTrue();
        (await MoveAsync(jobs[2], jobs[2] with { State = EditState.Succeeded, SubmittedAt = first })).ShouldBeTrue();

        (await Store.GetFirstSubmitAsync(jobs[0].BatchId, Ct)).ShouldBe(first);
    }

    [Fact]
    public async Task GetProgressAsync_UnknownBatch_IsEmpty()
    {
        var progress = await Store.GetProgressAsync(12345, Ct);

        progress.Total.ShouldBe(0);
        progress.SpentUsd.ShouldBe(0m);
    }

    [Fact]
    public async Task GetJobsAsync_Batch_ReturnsItsJobsInKeyOrder()
    {
        var import = await Store.ImportBatchAsync(Batch(), [NewEdit("c"), NewEdit("a"), NewEdit("d"), NewEdit("b")], Ct);
        await ImportAsync(2, "other");

        var jobs = await Store.GetJobsAsync(import.Batch.Id, Ct);

        jobs.Select(j => j.Key).ShouldBe(["a", "b", "c", "d"]);
        jobs.ShouldAllBe(j => j.BatchId == import.Batch.Id);
    }

    [Fact]
    public async Task GetJobAsync_UnknownId_ReturnsNull()
    {
        (await Store.GetJobAsync(98765, Ct)).ShouldBeNull();
    }

    [Fact]
    public async Task GetHistoryAsync_SeveralTransitions_ReturnsThemInOrder()
    {
        var job = (await ImportAndClaimAsync(1)).Single();
        var t0 = Now;
        var submitting = job with { State = EditState.Submitting };
        (await MoveAsync(job, submitting, keepLease: true)).ShouldBeTrue();
        Time.Advance(TimeSpan.FromSeconds(1));
        var atProvider = submitting with { State = EditState.AtProvider, RequestId = "req-1" };
        (await MoveAsync(submitting, atProvider, keepLease: true, reason: "accepted")).ShouldBeTrue();
        Time.Advance(TimeSpan.FromSeconds(1));
        var downloading = atProvider with { State = EditState.Downloading };
        (await MoveAsync(atProvider, downloading, keepLease: true)).ShouldBeTrue();
        Time.Advance(TimeSpan.FromSeconds(1));
        (await MoveAsync(downloading, downloading with { State = EditState.Succeeded }, reason: "2 files")).ShouldBeTrue();

        var history = await Store.GetHistoryAsync(job.Id, Ct);

        history.ShouldBe(
        [
            new EditHistoryEntry(job.Id, t0, EditState.Pending, EditState.Submitting, null, Worker),
            new EditHistoryEntry(job.Id, t0.AddSeconds(1), EditState.Submitting, EditState.AtProvider, "accepted", Worker),
            new EditHistoryEntry(job.Id, t0.AddSeconds(2), EditState.AtProvider, EditState.Downloading, null, Worker),
            new EditHistoryEntry(job.Id, t0.AddSeconds(3), EditState.Downloading, EditState.Succeeded, "2 files", Worker),
        ]);
    }

    [Fact]
    public async Task RegisterServerAsync_ThenGetServers_RoundTrips()
    {
        var a = new ServerInfo("host-a:101", "host-a", 101, 8, Now, Now);
        Time.Advance(TimeSpan.FromSeconds(1));
        var b = new ServerInfo("host-b:202", "host-b", 202, 4, Now, Now.AddSeconds(2));

        await Store.RegisterServerAsync(b, Ct);
        await Store.RegisterServerAsync(a, Ct);

        (await Store.GetServersAsync(Ct)).ShouldBe([a, b]);
    }

    [Fact]
    public async Task RemoveServersSilentSinceAsync_OldHeartbeats_RemovesOnlyThose()
    {
        await Store.RegisterServerAsync(new ServerInfo("crashed", "host-a", 1, 4, Now.AddDays(-40), Now.AddDays(-31)), Ct);
        await Store.RegisterServerAsync(new ServerInfo("alive", "host-b", 2, 4, Now.AddDays(-40), Now), Ct);

        (await Store.RemoveServersSilentSinceAsync(Now.AddDays(-30), Ct)).ShouldBe(1);

        (await Store.GetServersAsync(Ct)).Select(s => s.Id).ShouldBe(["alive"]);
    }

    [Fact]
    public async Task RegisterServerAsync_SameIdAgain_UpdatesTheHeartbeat()
    {
        var server = new ServerInfo("host-a:101", "host-a", 101, 8, Now, Now);
        await Store.RegisterServerAsync(server, Ct);

        await Store.RegisterServerAsync(server with { HeartbeatAt = Now.AddMinutes(1) }, Ct);

        (await Store.GetServersAsync(Ct)).ShouldBe([server with { HeartbeatAt = Now.AddMinutes(1) }]);
    }

    [Fact]
    public async Task RemoveServerAsync_RegisteredServer_RemovesOnlyIt()
    {
        var a = new ServerInfo("host-a:101", "host-a", 101, 8, Now, Now);
        var b = new ServerInfo("host-b:202", "host-b", 202, 4, Now, Now);
        await Store.RegisterServerAsync(a, Ct);
        await Store.RegisterServerAsync(b, Ct);

        await Store.RemoveServerAsync(a.Id, Ct);

        (await Store.GetServersAsync(Ct)).ShouldBe([b]);
    }
}
