using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests;

/// <summary>The provider account's daily budget: decided in the reservation, across batches, workers and UTC days.</summary>
public abstract partial class JobStoreContract
{
    private const decimal Price = 0.02m;

    [Fact]
    public async Task TryReserveBudgetAsync_DailyCap_CountsTodaysSpendAndOpenReservationsOfEveryBatch()
    {
        var earlier = (await ImportAndClaimAsync(1, name: "morning"))[0];
        (await Store.TryReserveBudgetAsync(new BudgetReservation(earlier.Id, Worker, 0.04m, 0.10m), Ct)).Reserved.ShouldBeTrue();
        await SettleAsync(earlier, 0.04m);
        var jobs = await ImportAndClaimAsync(3, name: "noon");

        var first = await Store.TryReserveBudgetAsync(new BudgetReservation(jobs[0].Id, Worker, 0.04m, 0.10m), Ct);
        var second = await Store.TryReserveBudgetAsync(new BudgetReservation(jobs[1].Id, Worker, 0.04m, 0.10m), Ct);
        var third = await Store.TryReserveBudgetAsync(new BudgetReservation(jobs[2].Id, Worker, 0.02m, 0.10m), Ct);

        first.Reserved.ShouldBeTrue();
        second.ShouldBe(new BudgetVerdict(BudgetRefusal.DailyBudget, DateOnly.FromDateTime(Now.UtcDateTime), 0.04m, 0.04m));
        third.Reserved.ShouldBeTrue();
        (await GetAsync(jobs[1].Id)).ReservedUsd.ShouldBe(0m);
        (await Store.GetDailySpendAsync(Provider, Ct)).ShouldBe(new DailySpend(Provider, DateOnly.FromDateTime(Now.UtcDateTime), 0.04m, 0.06m));
    }

    [Fact]
    public async Task TryReserveBudgetAsync_DailyCapAndBatchBudget_TheBatchBudgetIsNamedWhenItIsTheOneExceeded()
    {
        var import = await Store.ImportBatchAsync(Batch() with { BudgetUsd = 0.02m }, NewJobs(1), Ct);
        var job = (await ClaimAsync(batchId: import.Batch.Id))[0];

        var verdict = await Store.TryReserveBudgetAsync(new BudgetReservation(job.Id, Worker, 0.04m, 1m), Ct);

        verdict.Refusal.ShouldBe(BudgetRefusal.BatchBudget);
        (await Store.TryReserveBudgetAsync(new BudgetReservation(job.Id, OtherWorker, 0.01m, 1m), Ct)).Refusal.ShouldBe(BudgetRefusal.NotLeased);
    }

    [Fact]
    public async Task TryReserveBudgetAsync_DailyCapFromManyWorkersAtOnce_NeverExceeded()
    {
        var jobs = (await ImportAndClaimAsync(12, name: "a")).Concat(await ImportAndClaimAsync(12, name: "b")).ToList();
        var stores = Enumerable.Range(0, 4).Select(_ => OpenStore()).ToArray();

        var verdicts = await Task.WhenAll(jobs.Select((j, i) => stores[i % stores.Length].TryReserveBudgetAsync(new BudgetReservation(j.Id, Worker, 0.02m, 0.10m), Ct)));

        verdicts.Count(v => v.Reserved).ShouldBe(5);
        verdicts.Where(v => !v.Reserved).ShouldAllBe(v => v.Refusal == BudgetRefusal.DailyBudget);
        (await Store.GetDailySpendAsync(Provider, Ct)).ReservedUsd.ShouldBe(0.10m);
    }

    [Fact]
    public async Task TryReserveBudgetAsync_NextUtcDay_TheCapStartsAgainButOpenReservationsStillCount()
    {
        Time.Advance(TimeSpan.FromHours(23.5));
        var jobs = await ImportAndClaimAsync(3);
        (await Store.TryReserveBudgetAsync(new BudgetReservation(jobs[0].Id, Worker, 0.06m, 0.10m), Ct)).Reserved.ShouldBeTrue();
        await SettleAsync(jobs[0], 0.06m);
        (await Store.TryReserveBudgetAsync(new BudgetReservation(jobs[1].Id, Worker, 0.04m, 0.10m), Ct)).Reserved.ShouldBeTrue();
        (await Store.TryReserveBudgetAsync(new BudgetReservation(jobs[2].Id, Worker, 0.02m, 0.10m), Ct)).Refusal.ShouldBe(BudgetRefusal.DailyBudget);

        Time.Advance(TimeSpan.FromHours(1));

        var verdict = await Store.TryReserveBudgetAsync(new BudgetReservation(jobs[2].Id, Worker, 0.02m, 0.10m), Ct);
        verdict.ShouldBe(new BudgetVerdict(BudgetRefusal.None, new DateOnly(2026, 1, 2), 0m, 0.04m));
        (await Store.GetDailySpendAsync(Provider, Ct)).ShouldBe(new DailySpend(Provider, new DateOnly(2026, 1, 2), 0m, 0.06m));
    }

    [Fact]
    public async Task ReleaseHeldWithinDailyBudgetAsync_FullToday_ReleasesNothingThenOnTheNextDayAsManyAsFit()
    {
        // n = 2 at $0.02: each job needs $0.04. Today $0.08 of $0.10 is spent.
        var jobs = await ImportAndClaimAsync(5);
        (await Store.TryReserveBudgetAsync(new BudgetReservation(jobs[0].Id, Worker, 0.08m, 0.10m), Ct)).Reserved.ShouldBeTrue();
        await SettleAsync(jobs[0], 0.08m);
        foreach (var job in jobs.Skip(1))
        {
            await PutAsync(job, EditState.Held, keepLease: false);
        }

        var release = new DailyBudgetRelease(Provider, 0.10m, Price);
        (await Store.ReleaseHeldWithinDailyBudgetAsync(release, Ct)).ShouldBe(0);

        Time.Advance(TimeSpan.FromDays(1));
        (await OpenStore().ReleaseHeldWithinDailyBudgetAsync(release, Ct)).ShouldBe(2);
        (await Store.ReleaseHeldWithinDailyBudgetAsync(release, Ct)).ShouldBe(2, "the released jobs reserve nothing until they are submitted");

        var states = new List<EditState>();
        foreach (var job in jobs.Skip(1))
        {
            states.Add((await GetAsync(job.Id)).State);
        }

        states.ShouldBe([EditState.Pending, EditState.Pending, EditState.Pending, EditState.Pending]);
        var released = await GetAsync(jobs[1].Id);
        (released.DueAt, released.Error).ShouldBe((Now, (string?)null));
        (await Store.GetHistoryAsync(jobs[1].Id, Ct))[^1].Reason.ShouldBe("released: the qwen-edit daily budget of $0.10 has room on 2026-01-02 (UTC)");
    }

    [Fact]
    public async Task ReleaseHeldWithinDailyBudgetAsync_JobHeldByItsBatchBudget_StaysHeld()
    {
        var import = await Store.ImportBatchAsync(Batch() with { BudgetUsd = 0.03m }, NewJobs(1), Ct);
        var job = (await ClaimAsync(batchId: import.Batch.Id))[0];
        await PutAsync(job, EditState.Held, keepLease: false);

        (await Store.ReleaseHeldWithinDailyBudgetAsync(new DailyBudgetRelease(Provider, 10m, Price), Ct)).ShouldBe(0);

        (await GetAsync(job.Id)).State.ShouldBe(EditState.Held);
    }

    /// <summary>As a poll that saw completion does: the reservation becomes the charge, on the clock's day.</summary>
    private async Task SettleAsync(EditRecord claimed, decimal cost)
    {
        var job = await GetAsync(claimed.Id);
        (await MoveAsync(job, job with { State = EditState.AtProvider, CostUsd = cost, ReservedUsd = 0m }, keepLease: true)).ShouldBeTrue();
    }
}
