using QwenBatch.Edits;

namespace QwenBatch.Storage.Tests.Edits;

/// <summary>Bulk moves: an operator's cancel and requeue, and held edits released within a daily budget.</summary>
public abstract partial class EditStoreContract
{
    [Fact]
    public async Task RequestCancelAsync_Batch_CancelsWaitingEditsReleasingReservationsAndFlagsTheOnesUnderWay()
    {
        var edits = await QueueAsync(6);
        var pending = await PutAsync(edits[0] with { ReservedUsd = 0m }, EditState.Pending);
        var held = await PutAsync(edits[1] with { ReservedUsd = 0m }, EditState.Held);
        var submitting = await PutAsync(edits[3], EditState.Submitting);
        var atProvider = await PutAsync(edits[4] with { RequestId = "req-5" }, EditState.AtProvider, dueAt: Now.AddMinutes(5));
        var done = await PutAsync(edits[5] with { ReservedUsd = 0m, CostUsd = 0.04m }, EditState.Succeeded);
        Time.Advance(TimeSpan.FromSeconds(10));

        (await OpenStore().RequestCancelAsync(edits[0].BatchId, Ct)).ShouldBe(5);

        foreach (var id in new[] { pending.Id, held.Id, edits[2].Id })
        {
            var cancelled = await GetAsync(id);
            (cancelled.State, cancelled.ReservedUsd, cancelled.Error, cancelled.FinishedAt).ShouldBe((EditState.Cancelled, 0m, "cancelled by an operator", Now));
            (await Store.GetHistoryAsync(id, Ct))[^1].Reason.ShouldBe("cancelled by an operator");
        }

        // A submit on its way is not cancelled under it: flagged, its clock (updated_at) untouched; at the provider, due now.
        (await GetAsync(submitting.Id)).ShouldSatisfyAllConditions(
            e => e.State.ShouldBe(EditState.Submitting), e => e.CancelRequested.ShouldBeTrue(), e => e.UpdatedAt.ShouldBe(submitting.UpdatedAt));
        (await GetAsync(atProvider.Id)).ShouldSatisfyAllConditions(
            e => e.State.ShouldBe(EditState.AtProvider), e => e.CancelRequested.ShouldBeTrue(), e => e.DueAt.ShouldBe(Now));
        (await GetAsync(done.Id)).State.ShouldBe(EditState.Succeeded);
        var batch = (await Store.GetBatchAsync(edits[0].BatchId, Ct))!;
        (batch.CancelRequestedAt, batch.ReservedUsd).ShouldBe((Now, 2 * EditCost));
        await AssertReservationsMatchAsync();
        await AssertCountersMatchAsync();

        // Nothing of the batch is fed any more, and a second cancel finds nothing new.
        (await FeedAsync()).ShouldBeEmpty();
        (await Store.RequestCancelAsync(edits[0].BatchId, Ct)).ShouldBe(0);
    }

    [Fact]
    public async Task CancelEditsAsync_Selection_CancelsWaitingFlagsUnderWayAndLeavesTheRest()
    {
        var edits = await QueueAsync(5);
        var atProvider = await PutAsync(edits[0], EditState.AtProvider, dueAt: Now.AddMinutes(1));
        var done = await PutAsync(edits[2] with { ReservedUsd = 0m }, EditState.Succeeded);
        var other = (await QueueAsync(1, "other"))[0];

        var count = await Store.CancelEditsAsync([atProvider.Id, edits[1].Id, done.Id, other.Id], Ct);

        count.ShouldBe(3);
        (await GetAsync(edits[1].Id)).State.ShouldBe(EditState.Cancelled);
        (await GetAsync(other.Id)).State.ShouldBe(EditState.Cancelled);
        (await GetAsync(atProvider.Id)).ShouldSatisfyAllConditions(e => e.State.ShouldBe(EditState.AtProvider), e => e.CancelRequested.ShouldBeTrue(), e => e.DueAt.ShouldBe(Now));
        (await GetAsync(done.Id)).State.ShouldBe(EditState.Succeeded);
        (await GetAsync(edits[3].Id)).State.ShouldBe(EditState.Queued);
        (await Store.GetBatchAsync(edits[0].BatchId, Ct))!.CancelRequestedAt.ShouldBeNull();
        await AssertReservationsMatchAsync();
    }

    [Fact]
    public async Task RequeueAsync_FailedAndCancelledEdits_ReturnToPendingFreshKeepingTheirJobs()
    {
        var edits = await QueueAsync(3);
        await Store.BindJobsAsync([new JobBinding(edits[0].Id, "hf-1")], Ct);
        await PutAsync(edits[0] with { Attempt = 4, Polls = 3, Error = "boom", RequestId = "r1", ReservedUsd = 0m, FinishedAt = Now }, EditState.Failed);
        await Store.CancelEditsAsync([edits[1].Id], Ct);
        await PutAsync(edits[2] with { ReservedUsd = 0m }, EditState.Succeeded);
        Time.Advance(TimeSpan.FromMinutes(1));

        (await Store.RequeueAsync(edits[0].BatchId, [EditState.Failed, EditState.Cancelled], Ct)).ShouldBe(2);

        var failed = await GetAsync(edits[0].Id);
        failed.ShouldSatisfyAllConditions(
            e => e.State.ShouldBe(EditState.Pending), e => e.Attempt.ShouldBe(0), e => e.Polls.ShouldBe(0), e => e.Error.ShouldBeNull(),
            e => e.RequestId.ShouldBeNull(), e => e.DueAt.ShouldBe(Now), e => e.FinishedAt.ShouldBeNull(), e => e.HangfireJob.ShouldBe("hf-1"));
        (await GetAsync(edits[1].Id)).State.ShouldBe(EditState.Pending);
        (await GetAsync(edits[2].Id)).State.ShouldBe(EditState.Succeeded);
        (await Store.GetHistoryAsync(edits[0].Id, Ct))[^1].Reason.ShouldBe("requeued by an operator");
        await AssertCountersMatchAsync();

        // The feeder hands a requeued edit to Hangfire again under the job it had.
        (await FeedAsync()).Single(e => e.Id == edits[0].Id).HangfireJob.ShouldBe("hf-1");
    }

    [Fact]
    public async Task RequeueAsync_CancelledBatch_IsNoLongerBeingCancelled()
    {
        var edits = await QueueAsync(1);
        await Store.RequestCancelAsync(edits[0].BatchId, Ct);

        (await Store.RequeueAsync(edits[0].BatchId, [EditState.Cancelled], Ct)).ShouldBe(1);

        (await Store.GetBatchAsync(edits[0].BatchId, Ct))!.CancelRequestedAt.ShouldBeNull();
    }

    [Fact]
    public async Task RequeueAsync_SupersededEdit_StaysCancelled()
    {
        var first = await Store.ImportBatchAsync(Batch(), [NewEdit("a")], Ct);
        await Store.ImportBatchAsync(Batch(), [NewEdit("a", hash: "h2")], Ct);

        (await Store.RequeueAsync(first.Batch.Id, [EditState.Cancelled], Ct)).ShouldBe(0);

        (await EditsAsync(first.Batch.Id)).Select(e => e.State).ShouldBe([EditState.Cancelled, EditState.Pending]);
    }

    [Fact]
    public async Task RequeueEditsAsync_FailedAndSucceeded_RequeuesOnlyTheFailed()
    {
        var edits = await ImportEditsAsync(2);
        var failed = await PutAsync(edits[0] with { Error = "provider failed", Attempt = 3 }, EditState.Failed);
        var done = await PutAsync(edits[1], EditState.Succeeded);

        (await Store.RequeueEditsAsync([failed.Id, done.Id], Ct)).ShouldBe(1);

        var again = await GetAsync(failed.Id);
        (again.State, again.Error, again.Attempt).ShouldBe((EditState.Pending, (string?)null, 0));
        (await GetAsync(done.Id)).State.ShouldBe(EditState.Succeeded);
    }

    [Fact]
    public async Task ReleaseHeldWithinDailyBudgetAsync_FullToday_ReleasesNothingThenOnTheNextDayAsManyAsFit()
    {
        // Each edit needs $0.04. Today $0.08 of $0.10 is spent.
        var edits = await QueueAsync(5);
        await PutAsync(edits[0] with { CostUsd = 0.08m, ReservedUsd = 0m }, EditState.Downloading);
        foreach (var edit in edits.Skip(1))
        {
            await PutAsync(edit with { ReservedUsd = 0m }, EditState.Held);
        }

        var release = new DailyBudgetRelease(Provider, 0.10m, Price);
        (await Store.ReleaseHeldWithinDailyBudgetAsync(release, Ct)).ShouldBe(0);

        Time.Advance(TimeSpan.FromDays(1));
        (await OpenStore().ReleaseHeldWithinDailyBudgetAsync(release, Ct)).ShouldBe(2);
        (await Store.ReleaseHeldWithinDailyBudgetAsync(release, Ct)).ShouldBe(2, "the released edits reserve nothing until they are fed");

        foreach (var edit in edits.Skip(1))
        {
            (await GetAsync(edit.Id)).State.ShouldBe(EditState.Pending);
        }

        var released = await GetAsync(edits[1].Id);
        (released.DueAt, released.Error).ShouldBe((Now, (string?)null));
        (await Store.GetHistoryAsync(edits[1].Id, Ct))[^1].Reason.ShouldBe("released: the qwen-edit daily budget of $0.10 has room on 2026-01-02 (UTC)");
        await AssertCountersMatchAsync();
    }

    [Fact]
    public async Task ReleaseHeldWithinDailyBudgetAsync_EditHeldByItsBatchBudget_StaysHeld()
    {
        var edit = (await ImportEditsAsync(1, budget: 0.03m))[0];
        (await FeedAsync()).ShouldBeEmpty();

        (await Store.ReleaseHeldWithinDailyBudgetAsync(new DailyBudgetRelease(Provider, 10m, Price), Ct)).ShouldBe(0);

        (await GetAsync(edit.Id)).State.ShouldBe(EditState.Held);
    }
}
