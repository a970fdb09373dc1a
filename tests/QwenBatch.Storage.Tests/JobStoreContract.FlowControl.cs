using QwenBatch.Batches;
using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests;

public abstract partial class JobStoreContract
{
    private static readonly TimeSpan Quarter = TimeSpan.FromMilliseconds(250);

    [Fact]
    public async Task TransitionAsync_CostAndReservation_MoveTheBatchCountersInStep()
    {
        var job = (await ImportAndClaimAsync(1))[0];
        (await Store.TryReserveBudgetAsync(job.Id, Worker, 0.04m, Ct)).ShouldBeTrue();
        job = await GetAsync(job.Id);

        (await MoveAsync(job, job with { State = EditState.Submitting, ReservedUsd = 0.04m }, keepLease: true)).ShouldBeTrue();
        var batch = (await Store.GetBatchAsync(job.BatchId, Ct))!;
        (batch.SpentUsd, batch.ReservedUsd).ShouldBe((0m, 0.04m));

        var submitting = await GetAsync(job.Id);
        (await MoveAsync(submitting, submitting with { State = EditState.AtProvider, CostUsd = 0.02m, ReservedUsd = 0m, StartedAt = Now })).ShouldBeTrue();

        batch = (await Store.GetBatchAsync(job.BatchId, Ct))!;
        (batch.SpentUsd, batch.ReservedUsd).ShouldBe((0.02m, 0m));
        (await GetAsync(job.Id)).StartedAt.ShouldBe(Now);
    }

    [Fact]
    public async Task TryReserveBudgetAsync_WithinBudget_ReservesAndReplacesTheJobsOwnReservation()
    {
        var import = await Store.ImportBatchAsync(Batch() with { BudgetUsd = 0.10m }, NewJobs(2), Ct);
        var jobs = await ClaimAsync(batchId: import.Batch.Id);

        (await Store.TryReserveBudgetAsync(jobs[0].Id, Worker, 0.06m, Ct)).ShouldBeTrue();
        (await Store.TryReserveBudgetAsync(jobs[0].Id, Worker, 0.04m, Ct)).ShouldBeTrue();
        (await Store.TryReserveBudgetAsync(jobs[1].Id, Worker, 0.06m, Ct)).ShouldBeTrue();

        (await Store.GetBatchAsync(import.Batch.Id, Ct))!.ReservedUsd.ShouldBe(0.10m);
        (await GetAsync(jobs[0].Id)).ReservedUsd.ShouldBe(0.04m);
    }

    [Fact]
    public async Task TryReserveBudgetAsync_OverBudget_RefusesAndChangesNothing()
    {
        var import = await Store.ImportBatchAsync(Batch() with { BudgetUsd = 0.05m }, NewJobs(2), Ct);
        var jobs = await ClaimAsync(batchId: import.Batch.Id);
        (await Store.TryReserveBudgetAsync(jobs[0].Id, Worker, 0.04m, Ct)).ShouldBeTrue();

        (await Store.TryReserveBudgetAsync(jobs[1].Id, Worker, 0.02m, Ct)).ShouldBeFalse();

        (await Store.GetBatchAsync(import.Batch.Id, Ct))!.ReservedUsd.ShouldBe(0.04m);
        (await GetAsync(jobs[1].Id)).ReservedUsd.ShouldBe(0m);
    }

    [Fact]
    public async Task TryReserveBudgetAsync_ConcurrentReservations_NeverExceedTheBudget()
    {
        var import = await Store.ImportBatchAsync(Batch() with { BudgetUsd = 0.10m }, NewJobs(20), Ct);
        var jobs = await ClaimAsync(batchId: import.Batch.Id);
        var stores = Enumerable.Range(0, 4).Select(_ => OpenStore()).ToArray();

        var granted = await Task.WhenAll(jobs.Select((j, i) => stores[i % stores.Length].TryReserveBudgetAsync(j.Id, Worker, 0.02m, Ct)));

        granted.Count(g => g).ShouldBe(5);
        (await Store.GetBatchAsync(import.Batch.Id, Ct))!.ReservedUsd.ShouldBe(0.10m);
    }

    [Fact]
    public async Task ImportBatchAsync_ResumeWithBudget_SetsItAndReleasesHeldJobs()
    {
        var import = await Store.ImportBatchAsync(Batch() with { BudgetUsd = 0.01m }, NewJobs(1), Ct);
        var job = (await ClaimAsync(batchId: import.Batch.Id))[0];
        await PutAsync(job, EditState.Held, keepLease: false);

        var resumed = await Store.ImportBatchAsync(Batch() with { BudgetUsd = 1m }, NewJobs(1), Ct);

        resumed.Batch.BudgetUsd.ShouldBe(1m);
        (await Store.GetBatchAsync(import.Batch.Id, Ct))!.BudgetUsd.ShouldBe(1m);
        var released = await GetAsync(job.Id);
        released.State.ShouldBe(EditState.Pending);
        (await Store.GetHistoryAsync(job.Id, Ct))[^1].Reason.ShouldBe("budget set to 1 USD");
    }

    [Fact]
    public async Task ReserveRequestAsync_Burst_GrantsAtOnceThenSpacesByTheInterval()
    {
        var reservation = new RequestReservation("acct", Quarter, Burst: 2, MaxWait: TimeSpan.FromSeconds(10));

        var waits = new List<TimeSpan?>();
        for (var i = 0; i < 5; i++)
        {
            waits.Add(await Store.ReserveRequestAsync(reservation, Ct));
        }

        waits.ShouldBe([TimeSpan.Zero, TimeSpan.Zero, Quarter, 2 * Quarter, 3 * Quarter]);
    }

    [Fact]
    public async Task ReserveRequestAsync_SlotBeyondMaxWait_IsNotBooked()
    {
        var reservation = new RequestReservation("acct", TimeSpan.FromSeconds(1), Burst: 1, MaxWait: TimeSpan.FromSeconds(2));
        for (var i = 0; i < 3; i++)
        {
            (await Store.ReserveRequestAsync(reservation, Ct)).ShouldNotBeNull();
        }

        (await Store.ReserveRequestAsync(reservation, Ct)).ShouldBeNull();
        Time.Advance(TimeSpan.FromSeconds(1));
        (await Store.ReserveRequestAsync(reservation, Ct)).ShouldBe(TimeSpan.FromSeconds(2));
    }

    [Fact]
    public async Task ReserveRequestAsync_ManyWorkersAtOnce_BookDistinctSlotsAtTheRate()
    {
        var reservation = new RequestReservation("acct", Quarter, Burst: 1, MaxWait: TimeSpan.FromMinutes(1));
        var stores = Enumerable.Range(0, 4).Select(_ => OpenStore()).ToArray();

        var waits = await Task.WhenAll(Enumerable.Range(0, 40).Select(i => stores[i % stores.Length].ReserveRequestAsync(reservation, Ct)));

        // Forty requests, one every 250 ms: the slots are exactly 0, 0.25 … 9.75 s, each booked once.
        waits.Select(w => w!.Value).Order().ShouldBe(Enumerable.Range(0, 40).Select(i => i * Quarter));
    }

    [Fact]
    public async Task PauseAccountAsync_After429_EveryWorkerWaitsAndTheRateSlows()
    {
        var reservation = new RequestReservation("acct", Quarter, Burst: 1, MaxWait: TimeSpan.FromMinutes(1));
        (await Store.ReserveRequestAsync(reservation, Ct)).ShouldBe(TimeSpan.Zero);

        await Store.PauseAccountAsync("acct", Now + TimeSpan.FromSeconds(3), Ct);

        (await OpenStore().ReserveRequestAsync(reservation, Ct)).ShouldBe(TimeSpan.FromSeconds(3));
        var state = (await Store.GetRateLimitAsync("acct", Ct))!;
        state.PausedUntil.ShouldBe(Now + TimeSpan.FromSeconds(3));
        state.Factor.ShouldBeLessThan(1.0);
        (state.NextSlot - (Now + TimeSpan.FromSeconds(3))).ShouldBeGreaterThan(Quarter);
    }

    [Fact]
    public async Task ClaimAsync_MaxInFlight_ClaimsPendingOnlyWithinTheCap()
    {
        var import = await ImportAsync(5);
        var first = await Store.ClaimAsync(new ClaimRequest(Worker, 10, Lease, import.Batch.Id, new Dictionary<string, int> { [Provider] = 2 }), Ct);
        first.Count.ShouldBe(2);
        await PutAsync(first[0], EditState.AtProvider, keepLease: false, dueAt: Now + TimeSpan.FromMinutes(1));

        var second = await Store.ClaimAsync(new ClaimRequest(OtherWorker, 10, Lease, import.Batch.Id, new Dictionary<string, int> { [Provider] = 2 }), Ct);

        second.ShouldBeEmpty();
    }

    [Fact]
    public async Task ClaimAsync_MaxInFlightFromManyWorkers_NeverExceedsTheCap()
    {
        var import = await ImportAsync(30);
        var caps = new Dictionary<string, int> { [Provider] = 7 };
        var stores = Enumerable.Range(0, 5).Select(_ => OpenStore()).ToArray();

        var claims = await Task.WhenAll(stores.Select((s, i) => s.ClaimAsync(new ClaimRequest($"w{i}", 5, Lease, import.Batch.Id, caps), Ct)));

        claims.Sum(c => c.Count).ShouldBe(7);
    }

    [Fact]
    public async Task RequestCancelAsync_Batch_CancelsWaitingJobsAndFlagsThoseAtTheProvider()
    {
        var jobs = await ImportAndClaimAsync(3);
        var atProvider = await PutAsync(jobs[0], EditState.AtProvider, keepLease: false, dueAt: Now + TimeSpan.FromMinutes(5));
        await PutAsync(jobs[1], EditState.Pending, keepLease: false);
        (await Store.TryReserveBudgetAsync(jobs[2].Id, Worker, 0.02m, Ct)).ShouldBeTrue();

        (await OpenStore().RequestCancelAsync(jobs[0].BatchId, Ct)).ShouldBe(3);

        var flagged = await GetAsync(atProvider.Id);
        (flagged.State, flagged.CancelRequested, flagged.DueAt).ShouldBe((EditState.AtProvider, true, Now));
        foreach (var id in new[] { jobs[1].Id, jobs[2].Id })
        {
            var cancelled = await GetAsync(id);
            (cancelled.State, cancelled.LeaseOwner, cancelled.ReservedUsd).ShouldBe((EditState.Cancelled, (string?)null, 0m));
        }

        var batch = (await Store.GetBatchAsync(jobs[0].BatchId, Ct))!;
        (batch.CancelRequestedAt, batch.ReservedUsd).ShouldBe((Now, 0m));

        // The worker that held job 3 can no longer submit it.
        var stale = jobs[2] with { State = EditState.Submitting };
        (await MoveAsync(jobs[2], stale, keepLease: true)).ShouldBeFalse();
    }

    [Fact]
    public async Task TransitionAsync_CancelFlaggedDuringTheStep_KeepsTheFlagAndMakesTheJobDue()
    {
        var job = (await ImportAndClaimAsync(1))[0];
        var atProvider = await PutAsync(job, EditState.AtProvider, keepLease: true);
        await Store.RequestCancelAsync(job.BatchId, Ct);

        (await MoveAsync(atProvider, atProvider with { Polls = 1, DueAt = Now + TimeSpan.FromMinutes(1) })).ShouldBeTrue();

        var after = await GetAsync(job.Id);
        (after.CancelRequested, after.DueAt).ShouldBe((true, Now));
    }

    [Fact]
    public async Task RequeueAsync_FailedAndCancelledJobs_ReturnToPendingWithFreshAttempts()
    {
        var jobs = await ImportAndClaimAsync(3);
        await PutAsync(jobs[0] with { Attempt = 4, Error = "boom", RequestId = "r1" }, EditState.Failed, keepLease: false);
        await PutAsync(jobs[1], EditState.Cancelled, keepLease: false);
        await PutAsync(jobs[2], EditState.Succeeded, keepLease: false);

        (await Store.RequeueAsync(jobs[0].BatchId, [EditState.Failed, EditState.Cancelled], Ct)).ShouldBe(2);

        var failed = await GetAsync(jobs[0].Id);
        (failed.State, failed.Attempt, failed.Error, failed.RequestId, failed.DueAt).ShouldBe((EditState.Pending, 0, (string?)null, (string?)null, Now));
        (await GetAsync(jobs[1].Id)).State.ShouldBe(EditState.Pending);
        (await GetAsync(jobs[2].Id)).State.ShouldBe(EditState.Succeeded);
        (await Store.GetHistoryAsync(jobs[0].Id, Ct))[^1].Reason.ShouldBe("requeued by an operator");
    }

    [Fact]
    public async Task GetBatchesAsync_SeveralBatches_NewestFirst()
    {
        await ImportAsync(1, "first");
        await ImportAsync(1, "second");

        (await Store.GetBatchesAsync(Ct)).Select(b => b.Name).ShouldBe(["second", "first"]);
    }
}
