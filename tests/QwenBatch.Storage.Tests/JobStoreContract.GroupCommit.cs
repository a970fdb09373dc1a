using QwenBatch.Edits;
using QwenBatch.Outputs;

namespace QwenBatch.Storage.Tests;

public abstract partial class JobStoreContract
{
    [Fact]
    public async Task TransitionManyAsync_MixedGuards_EachAppliesOrMissesOnItsOwn()
    {
        var jobs = await ImportAndClaimAsync(4);
        var other = (await ImportAndClaimAsync(1, OtherWorker, name: "autumn-catalog"))[0];
        var submitting = jobs[0] with { State = EditState.Submitting, ReservedUsd = 0.04m };
        var wrongState = jobs[1] with { State = EditState.Downloading };
        var atProvider = jobs[2] with
        {
            State = EditState.AtProvider,
            RequestId = "req-9",
            AcceptedSubmits = 1,
            SubmittedAt = Now,
            DueAt = Now.AddSeconds(3),
            Outputs = [new ProviderOutput(null, "aGVsbG8=", "image/png")],
            Files = [new OutputFile("row-0003.png", new string('d', 64), 5)],
            CostUsd = 0.02m,
            Error = "kept",
        };
        var samePlace = jobs[3] with { Polls = 2 };
        var notMine = other with { State = EditState.Submitting };

        var moved = await Store.TransitionManyAsync(
        [
            new EditTransition(submitting, [EditState.Pending], Worker, KeepLease: true, Reason: null),
            new EditTransition(wrongState, [EditState.AtProvider], Worker, KeepLease: false, Reason: "should not apply"),
            new EditTransition(atProvider, [EditState.Submitting, EditState.Pending], Worker, KeepLease: false, Reason: "accepted as req-9"),
            new EditTransition(samePlace, [EditState.Pending], Worker, KeepLease: false, Reason: null),
            new EditTransition(notMine, [EditState.Pending], Worker, KeepLease: true, Reason: null),
        ], Ct);

        moved.ShouldBe([true, false, true, true, false]);
        var first = await GetAsync(jobs[0].Id);
        (first.State, first.LeaseOwner, first.ReservedUsd).ShouldBe((EditState.Submitting, Worker, 0.04m));
        ShouldBeUnchanged(await GetAsync(jobs[1].Id), jobs[1]);
        ShouldBeUnchanged(await GetAsync(other.Id), other);
        var third = await GetAsync(jobs[2].Id);
        third.ShouldSatisfyAllConditions(
            () => third.State.ShouldBe(EditState.AtProvider),
            () => third.RequestId.ShouldBe("req-9"),
            () => third.LeaseOwner.ShouldBeNull(),
            () => third.DueAt.ShouldBe(Now.AddSeconds(3)),
            () => third.Outputs.ShouldBe(atProvider.Outputs),
            () => third.Files.ShouldBe(atProvider.Files),
            () => third.CostUsd.ShouldBe(0.02m),
            () => third.Error.ShouldBe("kept"),
            () => third.SubmittedAt.ShouldBe(Now));
        var fourth = await GetAsync(jobs[3].Id);
        (fourth.State, fourth.Polls, fourth.LeaseOwner).ShouldBe((EditState.Pending, 2, null));

        // History as single writes leave it: a state change, or a reason; nothing for a same-state write without one.
        (await Store.GetHistoryAsync(jobs[0].Id, Ct)).ShouldContain(h => h.From == EditState.Pending && h.To == EditState.Submitting && h.ServerId == Worker);
        (await Store.GetHistoryAsync(jobs[1].Id, Ct)).ShouldNotContain(h => h.Reason == "should not apply");
        (await Store.GetHistoryAsync(jobs[2].Id, Ct)).ShouldContain(h => h.To == EditState.AtProvider && h.Reason == "accepted as req-9");
        (await Store.GetHistoryAsync(jobs[3].Id, Ct)).ShouldNotContain(h => h.From == EditState.Pending && h.To == EditState.Pending);

        // The money of both applied writes reached the batch, and the progress counters moved with the states.
        var batch = (await Store.GetBatchAsync(jobs[0].BatchId, Ct))!;
        (batch.SpentUsd, batch.ReservedUsd).ShouldBe((0.02m, 0.04m));
        var progress = await Store.GetProgressAsync(jobs[0].BatchId, Ct);
        (progress.Count(EditState.Pending), progress.Count(EditState.Submitting), progress.Count(EditState.AtProvider)).ShouldBe((2, 1, 1));
    }

    [Fact]
    public async Task TransitionManyAsync_ManyJobsOfTwoBatches_MovesEveryOneAndSettlesEachBatch()
    {
        var spring = await ImportAndClaimAsync(20);
        var autumn = await ImportAndClaimAsync(10, name: "autumn-catalog");
        var done = spring.Concat(autumn)
            .Select(j => new EditTransition(j with { State = EditState.Submitting, ReservedUsd = 0.02m }, [EditState.Pending], Worker, KeepLease: true, Reason: null))
            .ToList();

        (await Store.TransitionManyAsync(done, Ct)).ShouldAllBe(moved => moved);

        (await Store.GetBatchAsync(spring[0].BatchId, Ct))!.ReservedUsd.ShouldBe(0.40m);
        (await Store.GetBatchAsync(autumn[0].BatchId, Ct))!.ReservedUsd.ShouldBe(0.20m);
        (await Store.GetProgressAsync(autumn[0].BatchId, Ct)).Count(EditState.Submitting).ShouldBe(10);
        (await Store.GetJobsAsync(spring[0].BatchId, Ct)).ShouldAllBe(j => j.State == EditState.Submitting && j.LeaseOwner == Worker);
    }

    [Fact]
    public async Task TransitionAsync_RaisedReservationWithinBudget_ReservesInTheSameWrite()
    {
        var import = await Store.ImportBatchAsync(Batch() with { BudgetUsd = 0.05m }, NewJobs(1), Ct);
        var job = (await ClaimAsync(batchId: import.Batch.Id))[0];

        (await MoveAsync(job, job with { State = EditState.Submitting, ReservedUsd = 0.04m }, keepLease: true)).ShouldBeTrue();

        (await Store.GetBatchAsync(import.Batch.Id, Ct))!.ReservedUsd.ShouldBe(0.04m);
        (await GetAsync(job.Id)).ShouldSatisfyAllConditions(
            stored => stored.State.ShouldBe(EditState.Submitting),
            stored => stored.ReservedUsd.ShouldBe(0.04m));
    }

    [Fact]
    public async Task TransitionAsync_RaisedReservationOverBudget_MissesAndChangesNothing()
    {
        var import = await Store.ImportBatchAsync(Batch() with { BudgetUsd = 0.05m }, NewJobs(2), Ct);
        var jobs = await ClaimAsync(batchId: import.Batch.Id);
        (await Store.TryReserveBudgetAsync(jobs[0].Id, Worker, 0.04m, Ct)).ShouldBeTrue();

        (await MoveAsync(jobs[1], jobs[1] with { State = EditState.Submitting, ReservedUsd = 0.02m }, keepLease: true)).ShouldBeFalse();

        ShouldBeUnchanged(await GetAsync(jobs[1].Id), jobs[1]);
        (await Store.GetBatchAsync(import.Batch.Id, Ct))!.ReservedUsd.ShouldBe(0.04m);
        (await Store.GetHistoryAsync(jobs[1].Id, Ct)).ShouldNotContain(h => h.To == EditState.Submitting);
    }

    [Fact]
    public async Task TransitionManyAsync_RaisesOfOneBatchOverItsBudget_NeverExceedItAndOthersApply()
    {
        var tight = await Store.ImportBatchAsync(Batch() with { BudgetUsd = 0.05m }, NewJobs(3), Ct);
        var open = await Store.ImportBatchAsync(Batch("autumn-catalog"), NewJobs(1), Ct);
        var jobs = await ClaimAsync(batchId: tight.Batch.Id);
        var free = (await ClaimAsync(batchId: open.Batch.Id))[0];

        // 3 × 0.02 does not fit 0.05 together (each alone would). A store may take the raises one by one or refuse the
        // batch's raises in the group altogether; either way the budget holds and a refused move changes nothing.
        var moved = await Store.TransitionManyAsync(
            [.. jobs.Concat([free]).Select(j => new EditTransition(j with { State = EditState.Submitting, ReservedUsd = 0.02m }, [EditState.Pending], Worker, KeepLease: true, Reason: null))],
            Ct);

        moved[3].ShouldBeTrue();
        var applied = moved.Take(3).Count(m => m);
        applied.ShouldBeLessThanOrEqualTo(2);
        (await Store.GetBatchAsync(tight.Batch.Id, Ct))!.ReservedUsd.ShouldBe(0.02m * applied);
        (await Store.GetBatchAsync(open.Batch.Id, Ct))!.ReservedUsd.ShouldBe(0.02m);
        for (var i = 0; i < 3; i++)
        {
            (await GetAsync(jobs[i].Id)).State.ShouldBe(moved[i] ? EditState.Submitting : EditState.Pending);
        }

        // Raises that fit together go through together.
        var waiting = jobs.Where((_, i) => !moved[i]).Take(2 - applied).ToList();
        moved = await Store.TransitionManyAsync(
            [.. waiting.Select(j => new EditTransition(j with { State = EditState.Submitting, ReservedUsd = 0.02m }, [EditState.Pending], Worker, KeepLease: true, Reason: null))],
            Ct);

        moved.ShouldAllBe(m => m);
        (await Store.GetBatchAsync(tight.Batch.Id, Ct))!.ReservedUsd.ShouldBe(0.04m);
    }

    [Fact]
    public async Task TransitionAsync_ConcurrentRaisesFromManyStores_NeverExceedTheBudget()
    {
        var import = await Store.ImportBatchAsync(Batch() with { BudgetUsd = 0.10m }, NewJobs(20), Ct);
        var jobs = await ClaimAsync(batchId: import.Batch.Id);
        var stores = Enumerable.Range(0, 4).Select(_ => OpenStore()).ToArray();

        var moved = await Task.WhenAll(jobs.Select((j, i) => stores[i % stores.Length].TransitionAsync(
            new EditTransition(j with { State = EditState.Submitting, ReservedUsd = 0.02m }, [EditState.Pending], Worker, KeepLease: true, Reason: null), Ct)));

        moved.Count(m => m).ShouldBe(5);
        (await Store.GetBatchAsync(import.Batch.Id, Ct))!.ReservedUsd.ShouldBe(0.10m);
        (await Store.GetProgressAsync(import.Batch.Id, Ct)).Count(EditState.Submitting).ShouldBe(5);
    }

    [Fact]
    public async Task TransitionManyAsync_ThroughAnUnwrittenState_GuardsOnTheStoredStateWritesBothHistoryEntriesAndChargesOnce()
    {
        var jobs = await ImportAndClaimAsync(3);
        var atProvider = new List<EditRecord>();
        foreach (var job in jobs)
        {
            atProvider.Add(await PutAsync(job, EditState.AtProvider, keepLease: true));
        }

        var before = (await Store.GetHistoryAsync(jobs[0].Id, Ct)).Count;
        var done = atProvider[0] with { State = EditState.Succeeded, CostUsd = 0.02m, FinishedAt = Now, Outputs = [new ProviderOutput(null, "aGVsbG8=", "image/png")] };
        var retry = atProvider[1] with { State = EditState.Downloading, CostUsd = 0.02m, Attempt = 1, Error = "disk full" };
        var notThere = atProvider[2] with { State = EditState.Succeeded, CostUsd = 0.02m };

        var moved = await Store.TransitionManyAsync(
        [
            new EditTransition(done, [EditState.AtProvider], Worker, KeepLease: false, Reason: null) { Via = EditState.Downloading, ViaReason = "completed with 1 output(s)" },
            new EditTransition(retry, [EditState.AtProvider], Worker, KeepLease: false, Reason: "attempt 1 failed: disk full") { Via = EditState.Downloading, ViaReason = "completed" },
            new EditTransition(notThere, [EditState.Downloading], Worker, KeepLease: false, Reason: null) { Via = EditState.Downloading, ViaReason = "completed" },
        ], Ct);

        moved.ShouldBe([true, true, false]);
        var first = await GetAsync(jobs[0].Id);
        (first.State, first.CostUsd, first.LeaseOwner).ShouldBe((EditState.Succeeded, 0.02m, (string?)null));
        var history = await Store.GetHistoryAsync(jobs[0].Id, Ct);
        history.Skip(before).Select(h => (h.From, h.To, h.Reason, h.ServerId)).ShouldBe(
        [
            (EditState.AtProvider, EditState.Downloading, "completed with 1 output(s)", Worker),
            (EditState.Downloading, EditState.Succeeded, (string?)null, Worker),
        ]);
        (await Store.GetHistoryAsync(jobs[1].Id, Ct)).Skip(before).Select(h => (h.From, h.To, h.Reason)).ShouldBe(
        [
            (EditState.AtProvider, EditState.Downloading, "completed"),
            (EditState.Downloading, EditState.Downloading, "attempt 1 failed: disk full"),
        ]);
        ShouldBeUnchanged(await GetAsync(jobs[2].Id), atProvider[2]);
        (await Store.GetHistoryAsync(jobs[2].Id, Ct)).Count.ShouldBe(before);

        var progress = await Store.GetProgressAsync(jobs[0].BatchId, Ct);
        (progress.Count(EditState.Succeeded), progress.Count(EditState.Downloading), progress.Count(EditState.AtProvider)).ShouldBe((1, 1, 1));
        progress.SpentUsd.ShouldBe(0.04m);
        (await Store.GetBatchAsync(jobs[0].BatchId, Ct))!.SpentUsd.ShouldBe(0.04m);
    }
}
